"""Kernel math: G's learned HR-to-LR map read as a kernel, and what kernels do.

No file I/O here (`ike_jax.report` writes kernels). `cfg` is a
`config.TrainConfig` at the scale G trained at; the estimator it names
(`ike_jax.estimators`) supplies G's forward map.

With linear subnets and additive coupling, G's map from an HR-side image x to
its LR image is affine, `lr = A x + f(0)`, and (away from borders) shift
equivariant with stride s: every LR pixel (i, j) sees the same taps around its
s x s block starting at HR pixel (s*i, s*j). Row (i, j) of A is therefore the
degradation kernel; `estimate_kernel` reads it with one reverse-mode pass (the
gradient of the LR pixel at the probe centre with respect to x).

Convention (the same as `degrade` and KernelGAN): a
(k, k) correlation kernel with origin c (default `k // 2` per axis) degrades by

  LR[i, j] = sum_{a, b} k[a, b] x[s*i + a - c_row, s*j + b - c_col],

so a kernel centred on the block has its centre of mass at
`kernel_center(k, s)` (5.5 for 11 at x2, 16.5 for 31 at x4).

The bicubic residual path uses PyTorch's align-corners resizes, whose grid
step is (H-1)/(h-1) HR px (h = H/s), not s: LR pixel o samples the HR image
`(s-1) * (o/(h-1) - 1/2)` px from its block centre. That part of G is linear
but shift-variant, so the kernel moves with the LR pixel. Measured on random
linear G (x2 and x4, 1-4 blocks): the centre of mass moves 0.78-0.94 times
(s-1)/(h-1) HR px per LR px, and correlating with the kernel of the centre
pixel c misses G's LR pixel p by at most
0.24 * |p - c|_1 * (s-1)/(h-1) * max|grad x| * ||k||_1 (the tests assert 0.5).
The estimate is the kernel at the probe centre; at the centre of any image
G's kernel is the same to within the two centres' offsets, (s-1)/(2(h-1)) HR
px each (0.006 px for the default x2 probe, 0.012 for x4). Without the
residual, G is exactly shift-invariant.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

from ike_jax import estimators
from ike_jax import layers

# Kernel sides: 11 is KernelGAN's and DIV2KRK's x2 size; 31 is this project's
# x4 data kernel (`x4_from_x2` of an 11x11 x2 kernel).
DEFAULT_SIZE = {2: 11, 4: 31}
# Relative linearity residual up to which the map counts as linear; float32
# round-off of a linear G is ~1e-7 to 5e-6.
LINEAR_TOL = 1e-4


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
  k4 = signal.convolve2d(k2, dilated, mode='full')
  return k4 / k4.sum()


def default_probe_side(cfg):
  """Side of the default (square) probe: G's receptive field stays inside.

  x2 with 4 blocks: 168; x4 with 4 blocks: 496. A multiple of 2s, so the
  centre LR pixel sits at an exact block.
  """
  s = cfg.scale
  radius = max(estimators.of(cfg).receptive_radius(cfg), DEFAULT_SIZE[s] // 2)
  return 2 * s * math.ceil((radius + s) / s)


def _precise():
  # Full float32 convolutions and matmuls (no TF32/bf16 passes on GPUs); set
  # while tracing, so the compiled functions do not depend on the caller's.
  return jax.default_matmul_precision('highest')


def impulse_response(g_prepared, cfg, side):
  """Differentiable kernel of G's LR map at a zero probe: (side, side).

  Entry (a, b) is d lr[c, c] / d x[a, b] on a (side, side) probe, c = side /
  (2s), i.e. the weights of the HR pixels that make the LR pixel of the
  block starting at (side/2, side/2). Exact for a linear G; for others, its
  linearisation at 0. `side` a multiple of 2s; taps beyond the probe are
  not seen.
  """
  s = cfg.scale
  x0 = jnp.zeros((1, side, side, 1))
  lr, vjp = jax.vjp(lambda x: estimators.of(cfg).forward(g_prepared, x, cfg)[0], x0)
  c = side // s // 2
  return vjp(jnp.zeros_like(lr).at[0, c, c, 0].set(1.0))[0][0, :, :, 0]


@functools.partial(jax.jit, static_argnames=('cfg',))
def _jacobian_row(params, x0, cfg, at):
  """(N, H, W, 1) -> (N, H, W): d lr[n, at[0], at[1], 0] / d x[n] at x0."""
  with _precise():
    est = estimators.of(cfg)
    gp = est.prepare(params, cfg)  # raw params in; prepared inside the jit
    lr, vjp = jax.vjp(lambda x: est.forward(gp, x, cfg)[0], x0)
    cotangent = jnp.zeros_like(lr).at[:, at[0], at[1], 0].set(1.0)
    return vjp(cotangent)[0][..., 0]


@functools.partial(jax.jit, static_argnames=('cfg',))
def _lr(params, x, cfg):
  """G's LR image (N, H/s, W/s, 1) of x (N, H, W, 1); one compile per shape."""
  with _precise():
    est = estimators.of(cfg)
    return est.forward(est.prepare(params, cfg), x, cfg)[0]


def nonlinearity(g_params, cfg, shape, seed=0):
  """Relative residual of superposition on random probes in [-1, 1].

  `||f(a x + b y) - f(0) - a (f(x) - f(0)) - b (f(y) - f(0))|| / ||a (f(x) -
  f(0)) + b (f(y) - f(0))||` (L2 over the LR image), a = 0.6, b = 0.3; exactly
  0 for an affine G up to round-off.

  Args:
    g_params: G's raw parameters.
    cfg: the `TrainConfig` G trained with.
    shape: (H, W) of the probes, multiples of s.
    seed: seed of the random probes.
  """
  a, b = 0.6, 0.3
  kx, ky = jax.random.split(jax.random.PRNGKey(seed))
  x = jax.random.uniform(kx, (1, *shape, 1), minval=-1.0, maxval=1.0)
  y = jax.random.uniform(ky, (1, *shape, 1), minval=-1.0, maxval=1.0)
  batch = jnp.concatenate([jnp.zeros_like(x), x, y, a * x + b * y])
  f0, fx, fy, fxy = np.asarray(_lr(g_params, batch, cfg), np.float64)
  superposed = a * (fx - f0) + b * (fy - f0)
  return float(np.linalg.norm(fxy - f0 - superposed) /
               max(np.linalg.norm(superposed), 1e-30))


def _probe_batch(probe, cfg):
  """(batch (C, H, W, 1) float32, colours C, uniform)."""
  if probe is None or isinstance(probe, (int, np.integer)):
    side = default_probe_side(cfg) if probe is None else int(probe)
    return jnp.zeros((1, side, side, 1)), 3, True
  img = np.asarray(probe, np.float32)
  if img.ndim == 2:
    img = img[..., None]
  if img.ndim != 3:
    raise ValueError(f'probe must be HxW or HxWxC, got shape {img.shape}')
  return estimators.colours_to_batch(jnp.asarray(img)), img.shape[-1], False


def estimate_kernel(g_params, cfg, size=None, probe=None):
  """G's effective down-scaling kernel, per colour and averaged.

  For a linear G (linear subnets, additive coupling) this is the exact
  impulse response `f(delta) - f(0)` of the LR pixel at the probe centre,
  read as one gradient. For affine coupling or non-linear subnets it is the
  Jacobian at the probe (by default a mid-grey image), i.e. the local
  linearisation there; `linear` and `nonlinearity` say how far G is from it.
  (With a single affine block the LR channel never sees exp(s), so that G is
  still linear.) A uniform probe gives three identical colours: G shares
  its parameters across colours.

  The (size, size) crop keeps the taps from HR rows/cols `s*i0 - origin ...`;
  `origin` is `size // 2`, moved by the integer nearest to the kernel's
  centre-of-mass offset from its block centre, so the crop centres on the
  kernel the way KernelGAN centres its kernels.

  Args:
    g_params: G's raw parameters for one image.
    cfg: the `TrainConfig` G trained with.
    size: kernel side; default 11 (x2) or 31 (x4).
    probe: None (mid-grey, `default_probe_side`, clear of all borders), an
      int side of a mid-grey square probe (multiple of 2s), or an (H, W[, C])
      image in [-1, 1] to linearise G at (a non-linear G then differs per
      colour). A probe smaller than the default lets zero-padded borders
      clip the kernel's far tails.

  Returns:
    dict: 'kernel' (size, size) float64, mean over colours; 'per_colour'
    (C, size, size) (C = 3 unless the probe says otherwise); 'sum' (the DC
    gain); 'center_of_mass' (row, col) of 'kernel' in crop indices; 'origin'
    (row, col) for `degrade`; 'linear' (nonlinearity <= LINEAR_TOL);
    'nonlinearity' (see `nonlinearity`); 'probe_shape' (H, W).
  """
  s = cfg.scale
  size = DEFAULT_SIZE[s] if size is None else int(size)
  x0, colours, uniform = _probe_batch(probe, cfg)
  _, hgt, wid, _ = x0.shape
  if hgt % s or wid % s:
    raise ValueError(f'probe {hgt}x{wid} is not a multiple of the scale {s}')
  centre = np.array([hgt // s // 2, wid // s // 2])
  rows = np.asarray(_jacobian_row(g_params, x0, cfg, jnp.asarray(centre)),
                    np.float64)
  if uniform:
    rows = np.repeat(rows, colours, axis=0)

  top_left = s * centre
  full = rows.mean(0)
  origin = np.array([size // 2, size // 2])
  total, mass = full.sum(), np.abs(full).sum()
  if mass > 0 and abs(total) > 1e-3 * mass:
    offset = center_of_mass(full) - top_left - (s - 1) / 2
    origin -= np.floor(offset + 0.5).astype(int)
  # Keep the crop inside the probe.
  origin = np.clip(origin, top_left + size - np.array([hgt, wid]), top_left)
  start = top_left - origin
  if (start < 0).any() or (start + size > np.array([hgt, wid])).any():
    raise ValueError(f'a {size}x{size} kernel does not fit in a {hgt}x{wid} probe')
  per_colour = rows[:, start[0]:start[0] + size, start[1]:start[1] + size]
  kernel = per_colour.mean(0)
  ksum = float(kernel.sum())
  com = (center_of_mass(kernel) if ksum != 0
         else np.array([np.nan, np.nan]))
  nl = nonlinearity(g_params, cfg, (hgt, wid))
  return {
      'kernel': kernel, 'per_colour': per_colour, 'sum': ksum,
      'center_of_mass': (float(com[0]), float(com[1])),
      'origin': (int(origin[0]), int(origin[1])),
      'linear': nl <= LINEAR_TOL, 'nonlinearity': nl,
      'probe_shape': (hgt, wid),
  }


def _unit_sum(k, name):
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
  est, true = _unit_sum(est, 'estimated'), _unit_sum(true, 'true')
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
      default `(kh // 2, kw // 2)`; pass `estimate_kernel(...)['origin']`
      for an estimated kernel.
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


def self_check(sr, lr, k, scale, origin=None):
  """How well an SR image, blurred by a kernel and subsampled, gives back the LR.

  A check that needs no ground truth: RMS over the LR pixels and colours of
  `degrade(sr, k) - lr`, in 8-bit grey levels, away from the borders (the
  kernel's reach in LR px is left out on every side, as far as the image
  allows). 0 when SR is exactly
  consistent with the LR input under `k`. benchmarks/RESULTS.md, "Kernel
  estimation", measures how well it predicts the true kernel error.

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
