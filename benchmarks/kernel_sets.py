"""The published kernel sets of the report-only families, as .npy files.

`--families=levin` and `--families=usrnet` (`benchmarks/families.py`) read
(n, K, K) .npy files (`--levin_kernels`, `--usrnet_kernels`). This writes
them from the published MAT files, e.g. the `kernels/` folder of the
cszn/KAIR repository (neither set is part of this repository):

  python -m benchmarks.kernel_sets --levin=Levin09.mat --output=levin8.npy
  python -m benchmarks.kernel_sets --usrnet=kernels_12.mat --output=usrnet12.npy

Levin et al.'s eight camera-shake kernels (13-27 px) come as a MATLAB v7.3
file, which is HDF5: reading it needs h5py (`pip install h5py`; not a
dependency of the project). USRNet's twelve 25x25 kernels come as an older
MAT file, which SciPy reads. Each kernel is zero-padded centrally to the
set's largest side and checked to be a blur: non-negative, summing to 1.
"""

import os

from absl import flags
import numpy as np

from benchmarks import families
from ike_jax import cli
from ike_jax import errors
from ike_jax import outputs

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('levin', None, "Levin et al.'s Levin09.mat (MATLAB v7.3).")
  flags.DEFINE_string('usrnet', None, "USRNet's kernels_12.mat.")
  flags.DEFINE_string('output', None, 'The .npy file to write (not overwritten).')


def stack(kernels):
  """(n, K, K) float64 of 2-D kernels, each zero-padded centrally to the
  largest side K (a kernel of odd side stays centred on K's centre tap)."""
  kernels = [np.asarray(k, np.float64) for k in kernels]  # TypeError, ValueError: not numbers
  if not kernels or any(k.ndim != 2 for k in kernels):
    raise ValueError('expected a list of 2-D kernels')
  side = max(max(k.shape) for k in kernels)
  out = np.zeros((len(kernels), side, side))
  for i, k in enumerate(kernels):
    r, c = (side - k.shape[0]) // 2, (side - k.shape[1]) // 2
    out[i, r:r + k.shape[0], c:c + k.shape[1]] = k
  return out


def read_levin(path):
  """The kernels of Levin09.mat: each cell of `kernels`, transposed (HDF5
  holds MATLAB's column-major arrays transposed)."""
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.UserError(f'{path}: a MATLAB v7.3 file needs h5py (pip install h5py)') from None
  with h5py.File(path, 'r') as f:
    return [np.asarray(f[ref][()]).T for ref in np.ravel(f['kernels'][()])]


def read_usrnet(path):
  """The kernels of kernels_12.mat: the cells of `kernels`, in order."""
  from scipy import io  # pylint: disable=g-import-not-at-top
  return list(np.ravel(io.loadmat(path)['kernels']))


def checked(name, kernels):
  """`kernels` stacked (`stack`), or a one-line error unless they are the
  set's number of non-negative unit-sum kernels (`families.PUBLISHED`)."""
  try:
    out = stack(kernels)
  except (TypeError, ValueError) as e:
    raise errors.UserError(f'--{name}: its kernels are not 2-D arrays ({e})') from None
  n = families.PUBLISHED[name]
  if len(out) != n:
    raise errors.UserError(f'--{name}: expected {n} kernels, found {len(out)}')
  if out.shape[1] > families.SIZE:
    raise errors.UserError(f'--{name}: kernels of {out.shape[1]} px do not fit the families\' '
                           f'{families.SIZE} px grid')
  sums = out.sum(axis=(1, 2))
  if out.min() < 0 or not np.allclose(sums, 1.0, atol=1e-3):
    raise errors.UserError(f'--{name}: not blur kernels (least tap {out.min():.3g}, '
                           f'sums {sums.min():.4f} to {sums.max():.4f})')
  return out


def main(argv):
  del argv
  given = [(name, path) for name, path in (('levin', FLAGS.levin), ('usrnet', FLAGS.usrnet))
           if path]
  if len(given) != 1 or not FLAGS.output:
    raise errors.UserError('give one of --levin and --usrnet, and --output')
  name, path = given[0]
  if os.path.lexists(FLAGS.output):
    raise errors.UserError(f'--output={FLAGS.output} exists; give another file or delete it')
  if not os.path.isfile(path):
    raise errors.UserError(f'--{name}={path}: no such file')
  from scipy.io import matlab  # pylint: disable=g-import-not-at-top
  try:
    kernels = (read_levin if name == 'levin' else read_usrnet)(path)
  except (OSError, ValueError, KeyError, TypeError, NotImplementedError, matlab.MatReadError) as e:
    raise errors.UserError(f'--{name}={path}: cannot read its kernels ({e})') from None
  out = checked(name, kernels)
  outputs.write_npy(FLAGS.output, out)
  print(f'{FLAGS.output}: {len(out)} kernels of {out.shape[1]}x{out.shape[2]}')


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
