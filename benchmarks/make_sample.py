"""Writes the bundled samples/ images: python -m benchmarks.make_sample.

scikit-image's astronaut (public-domain NASA photo), cropped around the face and
helmet ring and degraded DIV2KRK-style with seed 0:
  x2: 256x256 HR -> astronaut_hr.png, astronaut_lr_x2.png (128x128),
      astronaut_kernel_x2.npy (11x11);
  x4: 384x384 HR -> astronaut_hr_x4.png, astronaut_lr_x4.png (96x96),
      astronaut_kernel_x4.npy (31x31).
"""

from __future__ import annotations

import argparse
import os

import imageio.v3 as iio
import numpy as np
from skimage import data

from benchmarks import degradations

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'samples')

# (scale, top, left, side, HR file name) of each crop of the 512x512 photo.
CROPS = (
    (2, 8, 96, 256, 'astronaut_hr.png'),
    (4, 0, 64, 384, 'astronaut_hr_x4.png'),
)


def make_samples(out_dir: str = SAMPLES_DIR, seed: int = 0) -> list[str]:
  """Writes the sample files into `out_dir`; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  photo = data.astronaut()
  paths = []
  for scale, top, left, side, hr_name in CROPS:
    hr = photo[top:top + side, left:left + side]
    lr, kernel, _ = degradations.degrade(hr, 'div2krk', scale, seed)
    files = {
        hr_name: hr,
        f'astronaut_lr_x{scale}.png': lr,
    }
    for name, img in files.items():
      paths.append(os.path.join(out_dir, name))
      iio.imwrite(paths[-1], img, optimize=True)
    paths.append(os.path.join(out_dir, f'astronaut_kernel_x{scale}.npy'))
    np.save(paths[-1], kernel)
  return paths


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=SAMPLES_DIR, help='Output folder.')
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  for path in make_samples(args.out, args.seed):
    print(path)


if __name__ == '__main__':
  main()
