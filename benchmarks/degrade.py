"""Degrades one HR image deterministically; a CLI over `benchmarks.degradations`.

  python -m benchmarks.degrade --image=in.png --kind=div2krk --scale=2 \
      --seed=0 --out=dir

writes `dir/<stem>_lr_x<s>.png`, `dir/<stem>_info_x<s>.json` and, for kinds with
a kernel, `dir/<stem>_kernel_x<s>.npy`, each atomically; files already there
are never replaced (the run stops before writing any).
"""

from __future__ import annotations

import argparse
import os
import sys

import imageio.v3 as iio
import numpy as np

from benchmarks.degradations import KINDS, degrade
from ike_jax import errors
from ike_jax import outputs


def read_rgb(path: str) -> np.ndarray:
  """Reads an image as (H, W, 3) uint8; gray is repeated, alpha dropped."""
  try:
    img = np.asarray(iio.imread(path))
  except (OSError, ValueError) as e:
    raise errors.InputError(f'cannot read image {path}: {e}') from e
  if img.dtype != np.uint8:
    raise errors.InputError(f'{path}: expected 8-bit image, got {img.dtype}')
  if img.ndim == 2:
    img = np.repeat(img[..., None], 3, axis=-1)
  if img.ndim != 3 or img.shape[-1] not in (3, 4):
    raise errors.InputError(f'{path}: unsupported image shape {img.shape}')
  return img[..., :3]


def degrade_file(image: str, kind: str, scale: int, seed: int,
                 out: str) -> list[str]:
  """Degrades `image` and writes the results into `out`; returns their paths."""
  stem = os.path.splitext(os.path.basename(image))[0]
  paths = [os.path.join(out, f'{stem}_{name}_x{scale}.{ext}')
           for name, ext in (('lr', 'png'), ('info', 'json'), ('kernel', 'npy'))]
  there = [p for p in paths if os.path.lexists(p)]
  if there:  # before any work
    raise errors.OutputError(f'{there[0]} exists: give another --out, or delete it')
  hr = read_rgb(image)
  lr, kernel, info = degrade(hr, kind, scale, seed)
  if kernel is None:
    paths.pop()
  os.makedirs(out, exist_ok=True)
  outputs.write_png(paths[0], lr)
  outputs.write_json(paths[1], {**info, 'source': os.path.abspath(image)})
  if kernel is not None:
    outputs.write_npy(paths[2], np.asarray(kernel))
  return paths


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--image', required=True, help='HR image (png/jpg).')
  parser.add_argument('--kind', default='div2krk', choices=KINDS)
  parser.add_argument('--scale', type=int, default=2, choices=(2, 4))
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', required=True, help='Output folder.')
  args = parser.parse_args(argv)
  try:
    paths = degrade_file(args.image, args.kind, args.scale, args.seed, args.out)
  except errors.UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print('\n'.join(paths))
  return 0


if __name__ == '__main__':
  sys.exit(main())
