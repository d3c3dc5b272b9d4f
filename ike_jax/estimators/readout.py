"""The kernel of a trained G, read off its forward map (math, no I/O).

`cfg` is a `config.TrainConfig` at the scale G trained at; the estimator it
names (`ike_jax.estimators`) supplies G's forward map. Kernels follow
`ike_jax.kernel`'s convention.

With linear subnets and additive coupling, G's map from an HR-side image x to
its LR image is affine, `lr = A x + f(0)`, and (away from borders) shift
equivariant with stride s: every LR pixel (i, j) sees the same taps around its
s x s block starting at HR pixel (s*i, s*j). Row (i, j) of A is therefore the
degradation kernel; `estimate_kernel` reads it with one reverse-mode pass (the
gradient of the LR pixel at the probe centre with respect to x).

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

from ike_jax import colours
from ike_jax import estimators
from ike_jax import kernel as kernel_lib

# Relative linearity residual up to which the map counts as linear; float32
# round-off of a linear G is ~1e-7 to 5e-6.
LINEAR_TOL = 1e-4


def default_probe_side(cfg):
  """Side of the default (square) probe: G's receptive field stays inside.

  x2 with 4 blocks: 168; x4 with 4 blocks: 496. A multiple of 2s, so the
  centre LR pixel sits at an exact block.
  """
  s = cfg.scale
  radius = max(estimators.of(cfg).receptive_radius(cfg), kernel_lib.DEFAULT_SIZE[s] // 2)
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
  return colours.colours_to_batch(jnp.asarray(img)), img.shape[-1], False


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
  size = kernel_lib.DEFAULT_SIZE[s] if size is None else int(size)
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
    offset = kernel_lib.center_of_mass(full) - top_left - (s - 1) / 2
    origin -= np.floor(offset + 0.5).astype(int)
  # Keep the crop inside the probe.
  origin = np.clip(origin, top_left + size - np.array([hgt, wid]), top_left)
  start = top_left - origin
  if (start < 0).any() or (start + size > np.array([hgt, wid])).any():
    raise ValueError(f'a {size}x{size} kernel does not fit in a {hgt}x{wid} probe')
  per_colour = rows[:, start[0]:start[0] + size, start[1]:start[1] + size]
  kernel = per_colour.mean(0)
  ksum = float(kernel.sum())
  com = (kernel_lib.center_of_mass(kernel) if ksum != 0
         else np.array([np.nan, np.nan]))
  nl = nonlinearity(g_params, cfg, (hgt, wid))
  return {
      'kernel': kernel, 'per_colour': per_colour, 'sum': ksum,
      'center_of_mass': (float(com[0]), float(com[1])),
      'origin': (int(origin[0]), int(origin[1])),
      'linear': nl <= LINEAR_TOL, 'nonlinearity': nl,
      'probe_shape': (hgt, wid),
  }
