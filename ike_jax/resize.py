"""The three bicubic resamplers IKE needs, each a named mode (NHWC throughout).

They are not interchangeable (see STYLE 11):

* `torch_align_corners` -- PyTorch `F.interpolate(mode='bicubic',
  align_corners=True)`: source coordinate `dst * (in - 1) / (out - 1)`, Keys
  cubic with a = -0.75, border indices clamped, no antialiasing, output size
  `floor(in * scale)`. The PyTorch IKE uses it for the bicubic-residual path,
  U's first op and L_inter's target, so parity needs it.
* `matlab` -- MATLAB `imresize(..., 'bicubic')`: half-pixel grid, a = -0.5,
  kernel widened by 1/scale on downscale (antialiasing), mirrored borders,
  output size `ceil(in * scale)`. Used for baselines, benchmarks and the crop
  sampler.
* `bicubic_kernel_down` -- KernelGAN's fixed 8x8 bicubic kernel applied as a
  strided convolution (stride s, zero padding 3): the bicubic loss's target.

Separable resizes are applied as two small dense matrices built in NumPy from
static shapes, so they are exact, differentiable and jit-friendly.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

# KernelGAN's 8x8 bicubic kernel is the outer product of this 1-D filter (its
# taps sum to -1, so the 2-D kernel sums to +1).
_KERNELGAN_BICUBIC_1D = np.array(
    [0.01171875, 0.03515625, -0.11328125, -0.43359375,
     -0.43359375, -0.11328125, 0.03515625, 0.01171875], np.float64)
KERNELGAN_BICUBIC_8X8 = np.outer(_KERNELGAN_BICUBIC_1D, _KERNELGAN_BICUBIC_1D)


def cubic(x, a):
  """Keys' cubic convolution kernel with coefficient `a`, evaluated at `x`."""
  x = np.abs(np.asarray(x, np.float64))
  near = ((a + 2) * x - (a + 3)) * x * x + 1
  far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


@functools.lru_cache(maxsize=256)
def align_corners_matrix(n_in, n_out):
  """(n_out, n_in) float32 matrix of PyTorch's align_corners bicubic, 1-D."""
  a = -0.75
  step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
  mat = np.zeros((n_out, n_in), np.float64)
  for o in range(n_out):
    src = o * step
    i0 = math.floor(src)
    t = src - i0
    for k, dist in zip(range(-1, 3), (1 + t, t, 1 - t, 2 - t)):
      idx = min(max(i0 + k, 0), n_in - 1)
      mat[o, idx] += cubic(dist, a)
  return mat.astype(np.float32)


@functools.lru_cache(maxsize=256)
def matlab_matrix(n_in, n_out, scale):
  """(n_out, n_in) float32 matrix of MATLAB imresize bicubic, 1-D."""
  a = -0.5
  antialias = scale < 1
  width = 4.0 / scale if antialias else 4.0
  mat = np.zeros((n_out, n_in), np.float64)
  mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
  for o in range(n_out):
    u = (o + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based source coordinate
    left = math.floor(u - width / 2)
    taps = np.arange(left, left + math.ceil(width) + 2)
    if antialias:
      w = scale * cubic(scale * (u - taps), a)
    else:
      w = cubic(u - taps, a)
    w = w / w.sum()
    idx = mirror[np.mod(taps - 1, len(mirror))]
    np.add.at(mat[o], idx, w)
  return mat.astype(np.float32)


def _apply_separable(x, mat_h, mat_w):
  """Applies (Ho, H) and (Wo, W) matrices to the H and W axes of NHWC `x`."""
  x = jnp.einsum('oh,nhwc->nowc', mat_h, x, precision=jax.lax.Precision.HIGHEST)
  return jnp.einsum('pw,nowc->nopc', mat_w, x, precision=jax.lax.Precision.HIGHEST)


def torch_align_corners(x, scale):
  """PyTorch bicubic `align_corners=True` resize of NHWC `x` by `scale`.

  Args:
    x: (N, H, W, C) float array.
    scale: a positive factor, e.g. 2, 4, 1/2 or 1/4.
  Returns:
    (N, floor(H * scale), floor(W * scale), C).
  """
  _, h, w, _ = x.shape
  ho, wo = int(math.floor(h * scale)), int(math.floor(w * scale))
  return _apply_separable(
      x, jnp.asarray(align_corners_matrix(h, ho)),
      jnp.asarray(align_corners_matrix(w, wo)))


def matlab(x, scale):
  """MATLAB `imresize(x, scale, 'bicubic')` of NHWC `x` (antialiased down).

  Returns (N, ceil(H * scale), ceil(W * scale), C).
  """
  _, h, w, _ = x.shape
  ho, wo = int(math.ceil(h * scale - 1e-9)), int(math.ceil(w * scale - 1e-9))
  return _apply_separable(
      x, jnp.asarray(matlab_matrix(h, ho, float(scale))),
      jnp.asarray(matlab_matrix(w, wo, float(scale))))


def imresize_matlab(img, scale):
  """NumPy convenience: MATLAB bicubic resize of an (H, W[, C]) float image."""
  img = np.asarray(img, np.float32)
  squeeze = img.ndim == 2
  x = img[None, :, :, None] if squeeze else img[None]
  out = np.asarray(matlab(jnp.asarray(x), scale))[0]
  return out[..., 0] if squeeze else out


@functools.lru_cache(maxsize=8)
def matlab_phases(scale):
  """MATLAB bicubic up-scaling by an integer s as s 4-tap filters (polyphase).

  Output pixel s*i + p is `sum_t w[p, t] x[i + offset[p] + t]`: the weights
  are read off an interior row of `matlab_matrix`, so they are its numbers.
  Returns ((s,) int offsets, (s, 4) float32 weights).
  """
  n = 16
  mat = matlab_matrix(n, n * scale, float(scale))
  offsets, weights = [], []
  for p in range(scale):
    row = mat[scale * (n // 2) + p]
    first = int(np.nonzero(row)[0][0])
    offsets.append(first - n // 2)
    weights.append(row[first:first + 4])
  return np.asarray(offsets), np.asarray(weights, np.float32)


def _upscale_axis(x, axis, scale):
  """`matlab_phases` along one axis of `x` (half-sample symmetric borders, as MATLAB)."""
  offsets, weights = matlab_phases(scale)
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (2, 2)
  xp = jnp.pad(x, pad, mode='symmetric')
  take = lambda start: jax.lax.slice_in_dim(xp, start, start + n, axis=axis)
  phases = [sum(float(w) * take(2 + int(o) + t) for t, w in enumerate(weights[p]))
            for p, o in enumerate(offsets)]
  out = jnp.stack(phases, axis=axis + 1)
  return out.reshape(*x.shape[:axis], n * scale, *x.shape[axis + 1:])


@functools.partial(jax.jit, static_argnums=1)
def matlab_upscale(x, scale):
  """MATLAB `imresize(x, s, 'bicubic')` of an (H, W, C) float array, s a
  positive integer: `matlab` computed by its 4 taps per output pixel (linear
  in the pixels, where the dense matrices are quadratic), so whole photos and
  tiles of them cost little. Equal to `matlab` to float32 rounding."""
  x = jnp.asarray(x, jnp.float32)
  return _upscale_axis(_upscale_axis(x, 0, scale), 1, scale)


BAND = 256  # LR rows up-scaled at once by `bicubic_upscale` (memory: one band in float)
HALO = 4    # LR rows read beyond a band's cut on each side (the taps reach 2)


def bicubic_upscale(lr_u8, scale, band=BAND):
  """MATLAB bicubic up-scaling of a uint8 image, rounded to uint8: the
  baseline every SR image is scored against, and the SR stage's start when
  the estimator has no inverse. Made `band` LR rows at a time (each with
  `HALO` real rows around its cuts), so a whole photo never exists in float;
  the result is the same as in one piece."""
  x, s = np.asarray(lr_u8), int(scale)
  h = x.shape[0]
  out = np.empty((h * s, x.shape[1] * s) + x.shape[2:], np.uint8)
  for r0 in range(0, h, band):
    r1 = min(r0 + band, h)
    a, b = max(r0 - HALO, 0), min(r1 + HALO, h)
    up = np.asarray(matlab_upscale(np.asarray(x[a:b], np.float32), s))
    out[s * r0:s * r1] = np.clip(np.round(up[s * (r0 - a):s * (r1 - a)]), 0, 255)
  return out


def bicubic_kernel_down(x, scale, mix_colours=False):
  """KernelGAN's bicubic downscaling: 8x8 kernel, stride `scale`, pad 3.

  Args:
    x: (N, H, W, C) float array.
    scale: 2 or 4 (x4 strides the same x2 kernel by 4, as the PyTorch code).
    mix_colours: reproduce the PyTorch/KernelGAN quirk where the kernel is
      expanded to a dense C-in/C-out conv, so every output channel is the sum
      over input channels of the filtered image.
  Returns:
    (N, (H - 2) // scale + 1, (W - 2) // scale + 1, C); 64x64 for a 128 crop
    at x2.
  """
  c = x.shape[-1]
  k = jnp.asarray(KERNELGAN_BICUBIC_8X8, x.dtype)[:, :, None, None]
  if mix_colours:
    kernel, groups = jnp.tile(k, (1, 1, c, c)), 1
  else:
    kernel, groups = jnp.tile(k, (1, 1, 1, c)), c
  return jax.lax.conv_general_dilated(
      x, kernel, window_strides=(scale, scale), padding=((3, 3), (3, 3)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=groups,
      precision=jax.lax.Precision.HIGHEST)
