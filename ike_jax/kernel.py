"""Kernel math, no I/O: build, centre, degrade, derive x4 from x2, compare.

Pure operations on down-scaling kernels, whoever estimated them (the read-out
of a trained G's kernel is `ike_jax.estimators.readout`; `ike_jax.report`
writes kernels).

Convention (the same as KernelGAN's): a (k, k) correlation kernel with
origin c (default `k // 2` per axis) degrades an HR image x by

  LR[i, j] = sum_{a, b} k[a, b] x[s*i + a - c_row, s*j + b - c_col],

so LR pixel (i, j) is the block starting at HR pixel (s*i, s*j), and a
kernel centred on the block has its centre of mass at `kernel_center(k, s)`
(5.5 for 11 at x2, 16.5 for 31 at x4).
"""

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import layers

# Kernel sides: 11 is KernelGAN's and DIV2KRK's x2 size; 31 is this project's
# x4 data kernel (`x4_from_x2` of an 11x11 x2 kernel).
DEFAULT_SIZE = {2: 11, 4: 31}


def kernel_center(size, scale):
  """KernelGAN's wanted centre of mass (0-based index) for a size-k kernel."""
  return size // 2 + 0.5 * (scale - size % 2)


def gaussian_kernel(cov, size, scale):
  """Unit-sum exp(-z^T cov^-1 z / 2) on a size x size grid, (size, size).

  z = (col, row) from KernelGAN's wanted centre `kernel_center(size, scale)`
  on both axes, so the kernel's LR grid lines up with the bicubic one (the
  benchmarks' data kernels use the same axes). `cov` is (2, 2) in HR px^2.
  jnp, differentiable in `cov`.
  """
  centre = kernel_center(size, scale)
  rows, cols = np.indices((size, size), np.float32) - centre
  z = jnp.asarray(np.stack([cols, rows], axis=-1))
  k = jnp.exp(-0.5 * jnp.einsum('...i,ij,...j->...', z, jnp.linalg.inv(cov), z))
  return k / jnp.sum(k)


def center_of_mass(k):
  """(row, col) centre of mass of a 2-D kernel, 0-based."""
  k = np.asarray(k, np.float64)
  rows, cols = np.indices(k.shape)
  total = k.sum()
  return np.array([(rows * k).sum() / total, (cols * k).sum() / total])


def as_estimate(k):
  """A (K, K) kernel in the estimate format of an estimator that trains nothing
  (`ike_jax.estimators`): unit sum, the same for every colour, linear, its
  origin the centre tap (for `degrade`)."""
  k = np.asarray(k, np.float64)
  k = k / k.sum()
  return {'kernel': k, 'per_colour': np.stack([k] * 3), 'sum': float(k.sum()),
          'center_of_mass': tuple(float(c) for c in center_of_mass(k)),
          'origin': (k.shape[0] // 2, k.shape[1] // 2), 'linear': True, 'nonlinearity': 0.0}


def x4_from_x2(k2):
  """x4 kernel equal to degrading twice with `k2` and subsampling 2.

  With correlation about the kernel's index `k // 2`, blurring by k2 and
  keeping every 2nd pixel, twice, equals blurring once by `k4 = k2 (full
  convolution) k2 dilated by 2` and keeping every 4th pixel. An 11x11 k2
  gives a 31x31 k4 whose centre of mass is 2 * com(k2) + com(k2): 16.5 on
  both axes when com(k2) = 5.5, i.e. `kernel_center(31, 4)`. (KernelGAN's x4
  recipe; the origin triples, `LR4[j] = sum k2[a] k2[b] x[4j + a + 2b - 3 o2]`.)
  """
  k2 = np.asarray(k2, np.float64)
  dilated = np.zeros((2 * k2.shape[0] - 1, 2 * k2.shape[1] - 1))
  dilated[::2, ::2] = k2
  from scipy import signal  # pylint: disable=g-import-not-at-top  (0.5 s to import; only here)
  k4 = signal.convolve2d(k2, dilated, mode='full')
  return k4 / k4.sum()


def unit_sum(k, name='the'):
  """A 2-D kernel (float64) divided by its sum.

  Raises:
    ValueError: `k` is not 2-D, or its sum is not finite or is ~0.
  """
  k = np.asarray(k, np.float64)
  if k.ndim != 2:
    raise ValueError(f'{name} kernel must be 2-D, got shape {k.shape}')
  total = k.sum()
  if not np.isfinite(total) or abs(total) < 1e-12:
    raise ValueError(f'{name} kernel sums to {total}; cannot normalise it')
  return k / total


def kernel_error(est, true):
  """Sum of squared differences of two kernels after aligning them.

  Both are normalised to sum 1. The estimate is then moved by the integer
  (row, col) shift nearest to `com(true) - com(est)` (halves round up) and
  the squared differences are summed over the union of both supports (zero
  outside each kernel). No interpolation: an integer-shifted or zero-padded
  copy scores exactly 0, and a residual sub-pixel offset counts as error.

  Args:
    est, true: 2-D kernels, any sizes.
  Returns:
    float >= 0.
  """
  est, true = unit_sum(est, 'estimated'), unit_sum(true, 'true')
  shift = np.floor(center_of_mass(true) -
                   center_of_mass(est) + 0.5).astype(int)
  lo = np.minimum(0, shift)
  hi = np.maximum(true.shape, np.array(est.shape) + shift)
  canvas_t = np.zeros(hi - lo)
  canvas_e = np.zeros(hi - lo)
  canvas_t[-lo[0]:-lo[0] + true.shape[0], -lo[1]:-lo[1] + true.shape[1]] = true
  at = shift - lo
  canvas_e[at[0]:at[0] + est.shape[0], at[1]:at[1] + est.shape[1]] = est
  return float(((canvas_e - canvas_t) ** 2).sum())


def static_origin(k, origin=None):
  """A kernel's (row, col) origin as Python ints; default `(kh // 2, kw // 2)`."""
  if origin is None:
    return k.shape[-2] // 2, k.shape[-1] // 2
  return int(origin[0]), int(origin[1])


def degrade(img, k, scale, origin=None, mode='reflect', fft=None):
  """Correlates each colour with a kernel, then keeps every s-th pixel.

  `LR[i, j] = sum_{a, b} k[a, b] x[s*i + a - origin[0], s*j + b - origin[1]]`:
  the LR grid of G (its pixel (i, j) is the block starting at (s*i, s*j)).
  The one blur-and-subsample of the project: data synthesis, the
  self-check, back-projection and ZSSR's training pairs all use it. Pure JAX
  (float32, full-precision convolution; on the CPU a kernel of 7x7 taps or
  more blurs by FFT, `layers.fft_pays`): jit-able, differentiable, vmaps over
  a leading image axis.

  Args:
    img: (H, W) or (H, W, C) float image.
    k: (kh, kw) kernel, or (C, kh, kw), one per colour.
    scale: s (static).
    origin: static (row, col) kernel index under HR pixel (s*i, s*j);
      default `(kh // 2, kw // 2)`; pass an estimate's 'origin' for an
      estimated kernel.
    mode: 'reflect' (half-sample symmetric borders, the data's) or
      'constant' (zero padding).
    fft: blur by FFT (True) or by a strided convolution (False); None picks
      by `layers.fft_pays` (FFT for 7x7 taps or more on the CPU).
  Returns:
    (ceil(H/s), ceil(W/s)[, C]) float32.
  """
  img = jnp.asarray(img, jnp.float32)
  x = img[..., None] if img.ndim == 2 else img
  h, w, c = x.shape
  k = jnp.asarray(k, jnp.float32)
  kh, kw = k.shape[-2:]
  o = static_origin(k, origin)
  if k.ndim == 3 and k.shape[0] != c:
    raise ValueError(f'{k.shape[0]} kernels for {c} channels')
  # Pad so that padded index p holds x[p - o] over the whole kernel reach.
  lo = (max(o[0], 0), max(o[1], 0))
  hi = (max(kh - 1 - o[0], 0), max(kw - 1 - o[1], 0))
  pad = ((lo[0], hi[0]), (lo[1], hi[1]), (0, 0))
  padded = jnp.pad(x, pad, mode='symmetric') if mode == 'reflect' else jnp.pad(x, pad)
  padded = padded[lo[0] - o[0]:, lo[1] - o[1]:]  # only for origins outside k
  taps = jnp.transpose(jnp.broadcast_to(k, (c, kh, kw)) if k.ndim == 2 else k, (1, 2, 0))
  if fft is None:
    fft = layers.fft_pays(kh * kw, 1)
  if fft:
    # Blur by FFT, then subsample: the same map, and far cheaper to
    # differentiate on a CPU than XLA's strided grouped convolution.
    out = layers.fft_correlate_depthwise(padded, taps)[::scale, ::scale]
  else:
    out = jax.lax.conv_general_dilated(
        padded[None], taps[:, :, None, :],
        window_strides=(scale, scale), padding='VALID',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=c,
        precision=jax.lax.Precision.HIGHEST)[0]
  out = out[:-(-h // scale), :-(-w // scale)]
  return out[..., 0] if img.ndim == 2 else out


SELF_CHECK_SIDE = 512  # LR px


def self_check(sr, lr, k, scale, origin=None):
  """How well an SR image, blurred by a kernel and subsampled, gives back the LR.

  A check that needs no ground truth: RMS over the LR pixels and colours of
  `degrade(sr, k) - lr`, in 8-bit grey levels, away from the borders (the
  kernel's reach in LR px is left out on every side, as far as the image
  allows). 0 when SR is exactly
  consistent with the LR input under `k`. benchmarks/RESULTS.md, "Kernel
  estimation", measures how well it predicts the true kernel error. On a
  photo larger than `SELF_CHECK_SIDE` LR px on a side only its central
  `SELF_CHECK_SIDE` rows or columns are checked, so the cost stays small.

  Args:
    sr: (sH, sW, C) uint8 SR image, or float in 0..255.
    lr: (H, W, C) uint8 LR image, H = ceil(sH / s).
    k: (kh, kw) or (C, kh, kw) kernel at the SR scale (summing to ~1).
    scale: s.
    origin: as `degrade`.
  Returns:
    float >= 0 (grey levels).
  """
  k = np.asarray(k, np.float32)
  for axis in (0, 1):
    n = np.shape(lr)[axis]
    if n > SELF_CHECK_SIDE and np.shape(sr)[axis] == n * scale:
      lo = (n - SELF_CHECK_SIDE) // 2
      lr = np.take(lr, np.arange(lo, lo + SELF_CHECK_SIDE), axis=axis)
      sr = np.take(sr, np.arange(scale * lo, scale * (lo + SELF_CHECK_SIDE)), axis=axis)
  back = np.asarray(degrade(np.asarray(sr, np.float32), k / k.sum(axis=(-2, -1), keepdims=True),
                            scale, origin))
  lr = np.asarray(lr, np.float32)
  if back.shape != lr.shape:
    raise ValueError(f'SR {np.shape(sr)} blurred and subsampled by {scale} is {back.shape}, '
                     f'not the LR {lr.shape}')
  m = min(-(-max(k.shape[-2:]) // scale), (min(lr.shape[:2]) - 1) // 2)
  diff = (back - lr)[m:lr.shape[0] - m, m:lr.shape[1] - m]
  return float(np.sqrt(np.mean(diff ** 2)))


def largest_taps(per_colour, n):
  """(C, k, k) kernels with all but each colour's n largest taps set to 0."""
  per_colour = np.asarray(per_colour)
  flat = per_colour.reshape(len(per_colour), -1)
  cut = -np.sort(-flat, axis=1)[:, min(n, flat.shape[1]) - 1]
  return np.where(per_colour >= cut[:, None, None], per_colour, 0.0)
