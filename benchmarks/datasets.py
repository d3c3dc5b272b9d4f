"""Benchmark data sets as lists of `Sample`s (paths only; nothing is read).

Real layouts, when a user has them on disk:
  div2k:    <root>/DIV2K_{train,valid}_LR_unknown/X{2,4}/NNNNx{2,4}.png and
            <root>/DIV2K_{train,valid}_HR/NNNN.png (Track 2, unknown kernels).
  div2krk:  <root>/lr_x{2,4}/*.png, <root>/gt/*.png, <root>/gt_k_x{2,4}/*.mat,
            paired by the image number in the file names.
  realsr:   *_HR.png next to *_LR2.png / *_LR4.png, searched recursively.
Offline stand-in (`docs/method.md`, "Synthetic DIV2KRK-style data"), built
on demand from scikit-image's photos:
  offline:  <cache_dir>/<kind>_x<s>_hr<hr_size>/<name>_{hr,lr_x<s>}.png,
            <name>_kernel_x<s>.npy (kernel kinds only), <name>_info_x<s>.json.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from typing import Callable

import numpy as np

from ike_jax import errors
from ike_jax import outputs

SCALES = (2, 4)
DEFAULT_CACHE_DIR = os.path.join('~', '.cache', 'ike_jax', 'offline')


@dataclasses.dataclass(frozen=True)
class Sample:
  """One LR input, its HR ground truth and true kernel where known."""
  name: str
  lr_path: str
  hr_path: str | None
  kernel_path: str | None
  scale: int


def _check_scale(scale: int) -> None:
  if scale not in SCALES:
    raise errors.UserError(f'scale must be 2 or 4, got {scale}')


def _number(path: str) -> int | None:
  """First integer in a file name: 'img_12_gt.png' -> 12, '0801x2' -> 801."""
  m = re.search(r'\d+', os.path.basename(path))
  return int(m.group()) if m else None


def _by_number(paths: list[str]) -> dict[int, str]:
  return {n: p for p in paths if (n := _number(p)) is not None}


def _require_dir(root: str | None, dataset: str) -> str:
  if not root:
    raise errors.UserError(f'data set {dataset!r} needs a root folder')
  root = os.path.expanduser(root)
  if not os.path.isdir(root):
    raise errors.UserError(f'{dataset}: folder not found: {root}')
  return root


def div2k_track2(root: str, scale: int = 2,
                 split: str = 'valid') -> list[Sample]:
  """DIV2K Track 2 (unknown degradation); `split` is 'train' or 'valid'."""
  _check_scale(scale)
  if split not in ('train', 'valid'):
    raise errors.UserError(
        f"DIV2K split must be 'train' or 'valid', got {split!r}")
  root = _require_dir(root, 'div2k')
  lr_dir = os.path.join(root, f'DIV2K_{split}_LR_unknown', f'X{scale}')
  hr_dir = os.path.join(root, f'DIV2K_{split}_HR')
  samples = []
  for lr in sorted(glob.glob(os.path.join(lr_dir, f'*x{scale}.png'))):
    stem = os.path.basename(lr)[:-len(f'x{scale}.png')]
    hr = os.path.join(hr_dir, f'{stem}.png')
    samples.append(Sample(stem, lr, hr if os.path.isfile(hr) else None, None,
                          scale))
  if not samples:
    raise errors.UserError(
        f'no DIV2K Track 2 images under {root}: expected '
        f'DIV2K_{split}_LR_unknown/X{scale}/NNNNx{scale}.png and '
        f'DIV2K_{split}_HR/NNNN.png')
  return samples


def div2krk(root: str, scale: int = 2) -> list[Sample]:
  """DIV2KRK: LR images with their ground truth and true kernels."""
  _check_scale(scale)
  root = _require_dir(root, 'div2krk')
  gts = _by_number(glob.glob(os.path.join(root, 'gt', '*.png')))
  kernels = _by_number(glob.glob(os.path.join(root, f'gt_k_x{scale}', '*.mat')))
  lrs = _by_number(glob.glob(os.path.join(root, f'lr_x{scale}', '*.png')))
  samples = [
      Sample(os.path.splitext(os.path.basename(lr))[0], lr, gts.get(n),
             kernels.get(n), scale)
      for n, lr in sorted(lrs.items())
  ]
  if not samples:
    raise errors.UserError(
        f'no DIV2KRK images under {root}: expected lr_x{scale}/*.png, gt/*.png '
        f'and gt_k_x{scale}/*.mat named by image number')
  return samples


def realsr(root: str, scale: int = 2) -> list[Sample]:
  """RealSR: every `*_LR<s>.png` with the `*_HR.png` beside it."""
  _check_scale(scale)
  root = _require_dir(root, 'realsr')
  suffix = f'_LR{scale}.png'
  samples = []
  for lr in sorted(glob.glob(os.path.join(root, '**', f'*{suffix}'),
                             recursive=True)):
    prefix = lr[:-len(suffix)]
    hr = prefix + '_HR.png'
    samples.append(Sample(os.path.relpath(prefix, root), lr,
                          hr if os.path.isfile(hr) else None, None, scale))
  if not samples:
    raise errors.UserError(
        f'no RealSR images under {root}: expected *_HR.png with *{suffix} '
        'beside it (searched recursively)')
  return samples


def _motorcycle_left():
  from skimage import data  # pylint: disable=g-import-not-at-top
  return data.stereo_motorcycle()[0]


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
  def load():
    from skimage import data  # pylint: disable=g-import-not-at-top
    return getattr(data, name)()
  return load


def _grey_as_rgb(load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
  """A greyscale photo as three equal colours (Y-PSNR is then its PSNR)."""
  return lambda: np.repeat(np.asarray(load())[..., None], 3, axis=-1)


def _grace_hopper():
  """The colour portrait bundled with Matplotlib (600x512)."""
  import matplotlib.cbook  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with matplotlib.cbook.get_sample_data('grace_hopper.jpg') as f:
    return np.asarray(Image.open(f).convert('RGB'))


# Photos that need no download, all >= 300 px a side. The order is fixed:
# image i is degraded with seed i, so appending keeps every earlier image.
# 0-7: scikit-image's colour photos. 8-11, added later by a fixed rule (the
# colour photo bundled with Matplotlib, then scikit-image's greyscale photos
# of real scenes in alphabetical order -- brick, camera, grass -- skipping
# synthetic images, documents and the motion-blurred clock). 12-15, added
# later as tuning images only: the rest of scikit-image's greyscale photos of
# real scenes of at least 300 px a side, alphabetically (cell, coins, gravel,
# moon).
# Which indices tune and which report: benchmarks/RESULTS.md, "Image sets".
OFFLINE_IMAGES: dict[str, Callable[[], np.ndarray]] = {
    'astronaut': _skimage_photo('astronaut'),
    'chelsea': _skimage_photo('chelsea'),
    'coffee': _skimage_photo('coffee'),
    'rocket': _skimage_photo('rocket'),
    'motorcycle': _motorcycle_left,
    'immunohistochemistry': _skimage_photo('immunohistochemistry'),
    'hubble_deep_field': _skimage_photo('hubble_deep_field'),
    'retina': _skimage_photo('retina'),
    'grace_hopper': _grace_hopper,
    'brick': _grey_as_rgb(_skimage_photo('brick')),
    'camera': _grey_as_rgb(_skimage_photo('camera')),
    'grass': _grey_as_rgb(_skimage_photo('grass')),
    'cell': _grey_as_rgb(_skimage_photo('cell')),
    'coins': _grey_as_rgb(_skimage_photo('coins')),
    'gravel': _grey_as_rgb(_skimage_photo('gravel')),
    'moon': _grey_as_rgb(_skimage_photo('moon')),
}
# [first, end) ranges of OFFLINE_IMAGES.
TUNING_IMAGES = ((0, 4), (12, 16))  # the images settings are chosen on
REPORT_IMAGES = ((4, 12),)          # never used to choose a setting


def indices(ranges):
  """The image indices of `TUNING_IMAGES` or `REPORT_IMAGES`, in order."""
  return [i for first, end in ranges for i in range(first, end)]


def center_crop(img: np.ndarray, size: int, multiple: int = 4) -> np.ndarray:
  """Centre square crop of side min(H, W, size) rounded down to `multiple`."""
  side = min(img.shape[0], img.shape[1], size) // multiple * multiple
  if side < multiple:
    raise errors.UserError(f'crop size {size} is too small')
  top = (img.shape[0] - side) // 2
  left = (img.shape[1] - side) // 2
  return img[top:top + side, left:left + side]


def offline(cache_dir: str | None = None, scale: int = 2,
            kind: str = 'div2krk', num_images: int | None = None,
            hr_size: int = 256) -> list[Sample]:
  """Synthetic stand-in set, built into `cache_dir` on first use.

  Image i of `OFFLINE_IMAGES` is centre-cropped (`center_crop(img, hr_size)`)
  and degraded by `benchmarks.degradations.degrade(hr, kind, scale, seed=i)`.
  Only missing files are (re)generated, each written atomically; the results
  are deterministic.

  Args:
    cache_dir: root of the cache (default ~/.cache/ike_jax/offline).
    scale: 2 or 4.
    kind: one of `degradations.KINDS`.
    num_images: how many images (default all of `OFFLINE_IMAGES`).
    hr_size: largest HR side; the HR side is a multiple of 4.
  """
  # Imported here: JAX (under `degradations`) is slow to import and only the
  # offline set needs it.
  from benchmarks import degradations  # pylint: disable=g-import-not-at-top

  _check_scale(scale)
  if kind not in degradations.KINDS:
    raise errors.UserError(f'unknown degradation {kind!r}; expected one of '
                           f'{", ".join(degradations.KINDS)}')
  names = list(OFFLINE_IMAGES)
  if num_images is None:
    num_images = len(names)
  if not 1 <= num_images <= len(names):
    raise errors.UserError(
        f'num_images must be 1..{len(names)}, got {num_images}')
  folder = os.path.join(os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR),
                        f'{kind}_x{scale}_hr{hr_size}')
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise errors.UserError(f'cannot create cache folder {folder}: {e}') from e

  samples = []
  for seed, name in enumerate(names[:num_images]):
    hr_path = os.path.join(folder, f'{name}_hr.png')
    lr_path = os.path.join(folder, f'{name}_lr_x{scale}.png')
    info_path = os.path.join(folder, f'{name}_info_x{scale}.json')
    k_path = (os.path.join(folder, f'{name}_kernel_x{scale}.npy')
              if kind == 'div2krk' else None)
    wanted = [p for p in (hr_path, lr_path, info_path, k_path) if p]
    if not all(os.path.isfile(p) for p in wanted):
      hr = center_crop(OFFLINE_IMAGES[name](), hr_size)
      lr, kernel, info = degradations.degrade(hr, kind, scale, seed)
      info = {**info, 'image': name, 'hr_shape': list(hr.shape)}
      writers = {
          hr_path: lambda p, a=hr: outputs.write_png(p, a),
          lr_path: lambda p, a=lr: outputs.write_png(p, a),
          info_path: lambda p, d=info: outputs.write_json(p, d),
      }
      if k_path:
        writers[k_path] = lambda p, k=kernel: outputs.write_npy(p, k)
      for path, write in writers.items():
        if not os.path.isfile(path):
          write(path)
    samples.append(Sample(name, lr_path, hr_path, k_path, scale))
  return samples


LOADERS: dict[str, Callable[..., list[Sample]]] = {
    'div2k': div2k_track2,
    'div2k_track2': div2k_track2,
    'div2krk': div2krk,
    'realsr': realsr,
    'offline': offline,
}


def load_dataset(name: str, root: str | None = None, scale: int = 2,
                 **kw) -> list[Sample]:
  """Samples of the named data set (see the module docstring for layouts).

  Args:
    name: 'div2k' (alias 'div2k_track2'), 'div2krk', 'realsr' or 'offline'.
    root: data set folder; for 'offline', the cache folder (optional).
    scale: 2 or 4.
    **kw: loader options: `split` for div2k; `kind`, `num_images`, `hr_size`,
      `cache_dir` for offline.

  Raises:
    errors.UserError: unknown name, or nothing in the expected layout at root.
  """
  key = name.lower().replace('-', '_')
  if key not in LOADERS:
    raise errors.UserError(f'unknown data set {name!r}; expected one of '
                           f'{", ".join(LOADERS)}')
  if key == 'offline':
    if root is not None:
      kw.setdefault('cache_dir', root)
    return offline(scale=scale, **kw)
  return LOADERS[key](root, scale=scale, **kw)
