"""Image I/O, value conversions and the KernelGAN/IKE crop sampler (NumPy).

The LR image is the only training data. Each iteration G gets a
`crop` x `crop` patch and D an independently placed `crop // s` patch; their
centres are drawn from probability maps built from image gradients, exactly as
the PyTorch IKE (inherited from KernelGAN) builds them (`docs/method.md`,
"Crop sampling"). All corners for a run are drawn once, here, so the jitted step only
slices.
"""

import os
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image
from PIL import ImageOps

from ike_jax.errors import InputError
from ike_jax.errors import one_line
from ike_jax.errors import UserError

_GREY_WEIGHTS = (0.299, 0.587, 0.114)
_GRAD_WINDOW = 5  # KernelGAN's border width and box size for the loss map.
_GRAD_PERCENT = 0.97
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


def trim_to_multiple(img, s):
  """Drops bottom rows / right columns so H and W are multiples of `s`.

  Args:
    img: (H, W[, C]) array.
    s: positive integer.

  Returns:
    (trimmed image, (rows removed, columns removed)).
  """
  h, w = img.shape[:2]
  dh, dw = h % s, w % s
  return img[:h - dh, :w - dw], (dh, dw)


# ----------------------------------------------------------------------------
# Crop sampler.


def _box_same_1d(x, k, axis):
  """Sum over a length-k window along `axis`, like convolve2d 'same'.

  Output i sums x[i - k//2 .. i + (k-1)//2] with zeros outside; computed from
  cumulative sums so large windows (64 for crop 128) stay cheap.
  """
  x = np.moveaxis(x, axis, -1)
  n = x.shape[-1]
  c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, -1)], -1)
  i = np.arange(n)
  hi = np.minimum(i + (k - 1) // 2 + 1, n)
  lo = np.maximum(i - k // 2, 0)
  return np.moveaxis(c[..., hi] - c[..., lo], -1, axis)


def box_filter_same(x, k):
  """`scipy.signal.convolve2d(x, ones((k, k)), 'same')` of (H, W) `x`.

  Clamped at 0, which the exact sum of a non-negative map is; the cumulative
  sums can leave -1e-17 residue that rng.choice would reject.
  """
  out = _box_same_1d(_box_same_1d(np.asarray(x, np.float64), k, 0), k, 1)
  return np.maximum(out, 0.0)


def _zero_border(m, edge):
  """Copy of (H, W) `m` with `edge` pixels zeroed on every side.

  As KernelGAN's `pad_edges`: `m[edge:-edge]`, so edge 0 zeroes everything.
  """
  out = np.zeros_like(m)
  out[edge:-edge, edge:-edge] = m[edge:-edge, edge:-edge]
  return out


def _clip_extreme(m, percent):
  """Near-binary indicator of the top (1 - percent) of `m`'s values.

  v = sorted[int(percent * N)], v_next = sorted[that + 1] when larger, else
  v + 1e-5; returns clip(m, v, v_next) - v.
  """
  srt = np.sort(m.ravel())
  pivot = min(int(percent * srt.size), srt.size - 1)
  v = srt[pivot]
  nxt = srt[pivot + 1] if pivot + 1 < srt.size else v
  v_next = nxt if nxt > v else v + 1e-5
  return np.clip(m, v, v_next) - v


def _unit_sum(m):
  s = m.sum()
  return m / s if s > 0 else np.zeros_like(m)


def gradient_map(img01):
  """KernelGAN's gradient "loss map" of an (H, W, 3) image in [0, 1].

  Returns:
    (H, W) float64, non-negative, mean 1 (all ones for a flat image).
  """
  grey = np.asarray(img01, np.float64) @ np.asarray(_GREY_WEIGHTS)
  gx, gy = np.gradient(grey)
  mag = np.sqrt(gx**2 + gy**2)
  gx = _zero_border(np.abs(gx), _GRAD_WINDOW)
  gy = _zero_border(np.abs(gy), _GRAD_WINDOW)
  mag = _zero_border(mag, _GRAD_WINDOW)
  # Parity: the PyTorch code (utils/util.py, create_gradient_map) thresholds
  # all three maps but then sums the *unthresholded* magnitude with the two
  # thresholded |gx|, |gy| indicators; we reproduce that.
  combined = (_unit_sum(_clip_extreme(gx, _GRAD_PERCENT))
              + _unit_sum(_clip_extreme(gy, _GRAD_PERCENT))
              + _unit_sum(mag))
  loss = box_filter_same(combined, _GRAD_WINDOW) / _GRAD_WINDOW**2
  mean = loss.mean()
  return loss / mean if mean > 0 else np.ones_like(loss)


def probability_map(loss_map, crop):
  """Probability of each pixel being a crop centre.

  Box sum of side crop // 2, zeroed within crop // 2 of every border,
  normalised; uniform over all pixels if nothing is left (KernelGAN's rule).

  Args:
    loss_map: (H, W) non-negative map.
    crop: crop side in pixels.

  Returns:
    (H, W) float64 summing to 1.
  """
  half = crop // 2
  blurred = box_filter_same(loss_map, half) / max(half, 1)**2
  prob = _zero_border(blurred, half)
  total = prob.sum()
  if total > 0:
    return prob / total
  return np.full(prob.shape, 1.0 / prob.size)


def _downscale_for_map(img01, scale):
  """MATLAB-style antialiased bicubic downscale by 1 / scale, (H, W, 3)."""
  from ike_jax.resize import imresize_matlab  # pylint: disable=g-import-not-at-top
  return np.asarray(imresize_matlab(img01, 1.0 / scale), np.float64)


def crop_probability_maps(img_u8, scale, crop):
  """G's and D's crop-centre maps for an image whose sides are multiples of s.

  G's map comes from the bicubic-downscaled image, upsampled nearest-neighbour
  by `scale`; D's (crop // scale) from the full image.

  Args:
    img_u8: (H, W, 3) uint8, H and W multiples of `scale`.
    scale: integer SR factor.
    crop: G's crop side.

  Returns:
    (g_map, d_map), each (H, W) float64 summing to 1.
  """
  img01 = np.asarray(img_u8, np.float64) / 255.0
  h, w = img01.shape[:2]
  small = gradient_map(_downscale_for_map(img01, scale))
  big = np.repeat(np.repeat(small, scale, axis=0), scale, axis=1)
  # Sides are multiples of s here, so `big` is (H, W); fit it regardless.
  fitted = np.zeros((h, w))
  fh, fw = min(h, big.shape[0]), min(w, big.shape[1])
  fitted[:fh, :fw] = big[:fh, :fw]
  g_map = probability_map(fitted, crop)
  d_map = probability_map(gradient_map(img01), crop // scale)
  return g_map, d_map


def sample_crop_corners(prob_map, crop, n, rng):
  """Draws `n` crop corners from a centre-probability map.

  corner = centre - crop // 2, clamped into the image, then rounded down to
  even numbers (as the PyTorch code does, also for x4).

  Args:
    prob_map: (H, W) probabilities summing to 1, H, W >= crop.
    crop: crop side.
    n: number of corners.
    rng: np.random.Generator.

  Returns:
    (n, 2) int32 [top, left].
  """
  h, w = prob_map.shape
  centres = rng.choice(h * w, size=n, p=prob_map.ravel())
  rows, cols = np.divmod(centres, w)
  top = np.clip(rows - crop // 2, 0, h - crop)
  left = np.clip(cols - crop // 2, 0, w - crop)
  corners = np.stack([top - top % 2, left - left % 2], axis=1)
  return corners.astype(np.int32)


class CropPlan(NamedTuple):
  """Precomputed crop corners, [top, left] per iteration.

  g_corners: (n, 2) int32 for G's `crop` x `crop` crops.
  d_corners: (n, 2) int32 for D's (crop // s) x (crop // s) crops.
  """
  g_corners: np.ndarray
  d_corners: np.ndarray


def plan_crops(img_u8, scale, crop, iterations, seed):
  """Draws every crop corner of a run.

  The image is trimmed to a multiple of `scale` first (as training does);
  corners refer to that trimmed image. G's corners are drawn before D's from
  one `np.random.default_rng(seed)`.

  Args:
    img_u8: (H, W, 3) uint8 LR image.
    scale: integer SR factor (2 or 4).
    crop: G's crop side (`--crop`); D's is crop // scale.
    iterations: number of corners per network.
    seed: integer seed.

  Returns:
    CropPlan.

  Raises:
    InputError: the (trimmed) image is smaller than `crop` in a dimension.
    UserError: `crop` is too small for `scale`.
  """
  if crop // scale < 2:
    raise UserError(f'--crop {crop} is too small for scale x{scale} '
                    f'(need at least {2 * scale})')
  img, _ = trim_to_multiple(np.asarray(img_u8), scale)
  h, w = img.shape[:2]
  if h < crop or w < crop:
    raise InputError(
        f'image is {img_u8.shape[1]}x{img_u8.shape[0]} (WxH); --crop {crop} '
        f'needs at least {crop}x{crop} pixels: lower --crop or use a larger '
        'image')
  g_map, d_map = crop_probability_maps(img, scale, crop)
  rng = np.random.default_rng(seed)
  g = sample_crop_corners(g_map, crop, iterations, rng)
  d = sample_crop_corners(d_map, crop // scale, iterations, rng)
  return CropPlan(g_corners=g, d_corners=d)


# ----------------------------------------------------------------------------
# Kernel files.


def load_kernel(path):
  """Reads a kernel (.npy, or DIV2KRK's .mat) as a 2-D float64 array.

  A .mat file's 'Kernel' variable is used, else its first 2-D array.

  Raises:
    InputError: no 2-D kernel in the file.
  """
  path = os.fspath(path)
  if path.endswith('.mat'):
    from scipy import io  # pylint: disable=g-import-not-at-top
    mat = io.loadmat(path)
    arrays = [v for k, v in mat.items()
              if not k.startswith('__') and getattr(v, 'ndim', 0) == 2]
    k = mat['Kernel'] if 'Kernel' in mat else (arrays[0] if arrays else None)
    if k is None:
      raise InputError(f'{path}: no 2-D kernel array inside')
  else:
    k = np.load(path)
  k = np.asarray(k, np.float64)
  if k.ndim != 2:
    raise InputError(f'{path}: kernel must be 2-D, got shape {k.shape}')
  return k
