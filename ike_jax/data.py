"""Image and kernel files in (and which files in a folder are images), and the
conversions to and from model units.

Loading is robust: every problem with a file is one `InputError` line, and
every conversion (grey, palette, 16 bit, alpha, EXIF rotation) is reported.
The crop sampler is `ike_jax.crops`.
"""

import os
from typing import Callable

import numpy as np
from PIL import Image
from PIL import ImageOps

from ike_jax.errors import InputError
from ike_jax.errors import one_line

_EXIF_ORIENTATION = 0x0112

# ----------------------------------------------------------------------------
# Loading and conversions.


def _decode(name, log):
  """Opens, fully decodes and EXIF-orients file `name`; returns a PIL image."""
  with Image.open(name) as im:
    n_frames = getattr(im, 'n_frames', 1)
    im.load()  # PIL decodes lazily; truncation only shows up here.
    if n_frames > 1:
      log(f'{name}: {n_frames} frames; using the first')
    try:
      orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
      oriented = ImageOps.exif_transpose(im)
    except Exception as err:  # pylint: disable=broad-except
      log(f'warning: {name}: unreadable EXIF orientation ignored '
          f'({one_line(err)})')
      return im.copy()
    if orientation not in (1, None):
      log(f'{name}: applied EXIF orientation {orientation} (rotated/flipped)')
    oriented.load()
    return oriented


def _sixteen_bit_to_u8(arr):
  """uint16-range integers -> uint8 by v / 257, rounded (65535 -> 255)."""
  arr = np.clip(arr.astype(np.int64), 0, 65535)
  return np.round(arr / 257.0).astype(np.uint8)


def load_image(path, *, log: Callable[[str], None] = print):
  """Reads an image file as RGB.

  Grey images are replicated to three channels, alpha is dropped, palette and
  CMYK images are converted, 16-bit grey is scaled (v / 257, rounded) and the
  EXIF orientation is applied. Each such step is reported as one line to `log`.

  Args:
    path: file path (str or os.PathLike).
    log: receives one-line notes and warnings.

  Returns:
    (H, W, 3) uint8 array.

  Raises:
    InputError: the path is missing, a directory, unreadable, or not a
      decodable image.
  """
  name = os.fspath(path)
  if not os.path.exists(name):
    raise InputError(f'{name}: no such file')
  if os.path.isdir(name):
    raise InputError(f'{name}: is a directory, not an image file')
  try:
    im = _decode(name, log)
  except Image.DecompressionBombError as err:
    raise InputError(f'{name}: image too large ({one_line(err)})') from err
  except Image.UnidentifiedImageError as err:
    raise InputError(f'{name}: not an image file PIL can read') from err
  except PermissionError as err:
    raise InputError(f'{name}: cannot read (permission denied)') from err
  except Exception as err:  # pylint: disable=broad-except
    # Corrupt files surface as OSError, SyntaxError, ValueError, zlib.error,
    # struct.error, ... depending on the codec; all are the user's input.
    raise InputError(
        f'{name}: corrupt or truncated image ({one_line(err)})') from err

  mode = im.mode
  if mode in ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I'):
    log(f'{name}: 16-bit greyscale; scaled to 8 bit and replicated to RGB')
    grey = _sixteen_bit_to_u8(np.asarray(im))
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
  if mode == 'F':
    raise InputError(f'{name}: floating-point images (mode F) are not '
                     'supported; save it as 8- or 16-bit')

  has_alpha = (mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La')
               or 'transparency' in im.info)
  if mode in ('L', 'LA', '1', 'La'):
    log(f'{name}: greyscale image; replicated to RGB')
  elif mode in ('P', 'PA'):
    log(f'{name}: palette image; converted to RGB')
  elif mode not in ('RGB', 'RGBA', 'RGBX', 'RGBa'):
    log(f'{name}: {mode} image; converted to RGB')
  if has_alpha:
    log(f'warning: {name}: alpha channel dropped (transparency ignored)')
  try:
    rgb = im if mode == 'RGB' else im.convert('RGB')
    arr = np.asarray(rgb, dtype=np.uint8)
  except Exception as err:  # pylint: disable=broad-except
    raise InputError(
        f'{name}: cannot convert mode {mode} to RGB ({one_line(err)})'
    ) from err
  if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
    raise InputError(f'{name}: unexpected decoded shape {arr.shape}')
  return np.ascontiguousarray(arr)


def to_model(img_u8):
  """(..., 3) uint8 in 0..255 -> float32 in [-1, 1] (x / 127.5 - 1)."""
  return np.asarray(img_u8, np.float32) / np.float32(127.5) - np.float32(1)


def from_model(x):
  """Float in [-1, 1] -> uint8: round((x + 1) * 127.5), clipped to 0..255.

  Rounds half to even (as np.round and torch.round do).
  """
  x = np.asarray(x, np.float32)
  return np.clip(np.round((x + 1) * np.float32(127.5)), 0, 255).astype(
      np.uint8)


# ----------------------------------------------------------------------------
# Kernel files.


def load_kernel(path):
  """Reads a kernel (.npy, or DIV2KRK's .mat) as a 2-D float64 array.

  A .mat file's 'Kernel' variable is used, else its first 2-D array.

  Raises:
    InputError: the file cannot be read, holds no 2-D kernel, or the kernel
      has a non-finite tap or does not sum to a positive number.
  """
  path = os.fspath(path)
  try:
    if path.endswith('.mat'):
      from scipy import io  # pylint: disable=g-import-not-at-top
      mat = io.loadmat(path)
      arrays = [v for k, v in mat.items()
                if not k.startswith('__') and getattr(v, 'ndim', 0) == 2]
      k = mat['Kernel'] if 'Kernel' in mat else (arrays[0] if arrays else None)
    else:
      with open(path, 'rb') as f:
        magic = f.read(6)
      if not (magic == b'\x93NUMPY' or magic.startswith(b'PK')):  # .npy, or .npz (refused below)
        raise ValueError('not a NumPy .npy file; a kernel is .npy or .mat')
      k = np.load(path, allow_pickle=False)
      if isinstance(k, np.lib.npyio.NpzFile):
        k.close()
        raise ValueError('an .npz archive; give one array as .npy')
    k = None if k is None else np.asarray(k, np.float64)
  except Exception as err:  # pylint: disable=broad-except  (any unreadable file: one line)
    raise InputError(f'{path}: cannot read a kernel ({one_line(err)})') from None
  if k is None:
    raise InputError(f'{path}: no 2-D kernel array inside')
  if k.ndim != 2:
    raise InputError(f'{path}: kernel must be 2-D, got shape {k.shape}')
  if not np.isfinite(k).all():
    raise InputError(f'{path}: kernel has non-finite taps (NaN or inf)')
  if not k.sum() > 1e-12:
    raise InputError(f'{path}: kernel sums to {k.sum():.3g}; it must sum to a positive number')
  return k


# The image files --input_dir and --hr_dir take, by extension (any case).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def image_files(folder):
  """{stem: path} of the image files in a folder, any case of the extension
  (photo.PNG too); of a stem's several files, the first in IMAGE_EXTENSIONS."""
  ext = lambda name: os.path.splitext(name)[1].lower()
  names = [n for n in os.listdir(folder)
           if ext(n) in IMAGE_EXTENSIONS and os.path.isfile(os.path.join(folder, n))]
  found = {}
  for n in sorted(names, key=lambda n: IMAGE_EXTENSIONS.index(ext(n))):
    found.setdefault(os.path.splitext(n)[0], os.path.join(folder, n))
  return found
