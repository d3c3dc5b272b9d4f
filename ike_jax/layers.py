"""The building blocks the networks share: a convolution, batch norm, an init."""

import functools

import jax
import jax.numpy as jnp

# Compute each convolution by the route that is fastest for its shape (below).
# Only `benchmarks.speed` sets this False, to measure what the routes gain; it
# is read when a function is traced, so set it before the first jit.
ROUTES = True
# A kernel this large over at most this many in x out channels goes by FFT.
FFT_MIN_TAPS = 49
FFT_MAX_CHANNEL_PAIRS = 16


def conv(x, w, b=None, padding='SAME'):
  """2-D convolution (cross-correlation), NHWC x HWIO, stride 1.

  The same linear map whatever the route, up to float32 rounding:
  - a 1x1 kernel is a matrix product over channels (D's and UD's 64 -> 64
    layers; XLA's CPU convolution runs these at a fraction of its matmul rate),
    its backward pass written out (`_matmul`);
  - on the CPU, a large kernel over few channels (G's fused 11x11 subnets,
    1-2 channels in and out) is a product of FFTs;
  - anything else is `lax.conv_general_dilated`.
  """
  kh, kw, ci, co = w.shape
  if ROUTES and kh == 1 and kw == 1:
    y = _matmul(x.reshape(-1, ci), w[0, 0]).reshape(*x.shape[:-1], co)
  elif fft_pays(kh * kw, ci * co):
    y = fft_conv(x, w, padding)
  else:
    y = jax.lax.conv_general_dilated(
        x, w, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y if b is None else y + b


@jax.custom_vjp
def _matmul(x, w):
  """x @ w for x (N, ci), w (ci, co), with its backward pass written out."""
  return x @ w


def _matmul_forward(x, w):
  return x @ w, (x, w)


def _matmul_backward(saved, dy):
  """dx = dy w^T and dw = x^T dy, each a plain matrix product: left to
  autodiff, XLA's CPU backend transposes dy and contracts x over its rows,
  a form its fast matmul kernels do not take (1.3x slower on D's stack)."""
  x, w = saved
  return dy @ w.T, x.T @ dy


_matmul.defvjp(_matmul_forward, _matmul_backward)


def fft_pays(taps, channel_pairs):
  """Whether a kernel of `taps` taps over `channel_pairs` in x out channels goes by FFT."""
  return (ROUTES and taps >= FFT_MIN_TAPS and channel_pairs <= FFT_MAX_CHANNEL_PAIRS
          and jax.default_backend() == 'cpu')


def fft_conv(x, w, padding='SAME'):
  """`conv` without bias by FFT: zero padding as `padding` ('SAME' or 'VALID')."""
  kh, kw = w.shape[:2]
  x = _pad(x, kh, kw, padding)
  size = x.shape[1:3]
  fx = jnp.fft.rfft2(x, axes=(1, 2))                                 # (N, H, W', ci)
  fw = jnp.fft.rfft2(w[::-1, ::-1], s=size, axes=(0, 1))              # (H, W', ci, co)
  y = jnp.fft.irfft2(jnp.einsum('nhwc,hwcd->nhwd', fx, fw), s=size, axes=(1, 2))
  return y[:, kh - 1:, kw - 1:, :]  # the first kh-1 rows (kw-1 cols) hold the wrap-around


def fft_correlate_depthwise(x, k):
  """'VALID' correlation of each channel of x (H, W, C) with its own kernel k (kh, kw, C)."""
  kh, kw = k.shape[:2]
  size = x.shape[:2]
  fx = jnp.fft.rfft2(x, axes=(0, 1))
  fk = jnp.fft.rfft2(k[::-1, ::-1], s=size, axes=(0, 1))
  return jnp.fft.irfft2(fx * fk, s=size, axes=(0, 1))[kh - 1:, kw - 1:]


def _pad(x, kh, kw, padding):
  """x zero-padded for a 'SAME' convolution (as lax pads), unchanged for 'VALID'."""
  if padding == 'SAME':
    return jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
  if padding != 'VALID':
    raise ValueError(f'padding must be SAME or VALID, got {padding!r}')
  return x


def batch_norm(x, scale, offset, eps=1e-5):
  """Training-mode batch norm over every axis but the last (channels).

  Normalises with the statistics of this call (biased variance, as PyTorch's
  BatchNorm2d in training), then scales and offsets per channel. The same map
  as the textbook `(x - mean) * rsqrt(var + eps) * scale + offset`, computed
  with its backward pass written out (`_bn_forward` / `_bn_backward`): the
  per-channel sums are vector-matrix products, and the input gradient is one
  element-wise pass. XLA's CPU autodiff of the textbook form runs several
  column reductions per call; on D's 64-channel maps the written-out form
  halves the time of its 1x1 stack's forward+backward (docs/method.md, "Cost").
  """
  shape = x.shape
  y = _batch_norm_2d(x.reshape(-1, shape[-1]), scale, offset, eps)
  return y.reshape(shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _batch_norm_2d(x, scale, offset, eps):
  return _bn_forward(x, scale, offset, eps)[0]


def _channel_sum(weights, x):
  """sum_n weights[n] x[n, :], as a vector-matrix product in full float32.

  An accelerator's default matmul precision (TF32, bf16 passes) would round
  the statistics, so there it asks for the highest; the CPU computes float32
  products in float32 anyway, and its step was measured without the request.
  """
  precision = None if jax.default_backend() == 'cpu' else jax.lax.Precision.HIGHEST
  return jnp.matmul(weights, x, precision=precision)


def _bn_forward(x, scale, offset, eps):
  """(N, C) -> y, saving (x_hat, 1 / std, scale) for the backward pass."""
  mean_of = jnp.full((x.shape[0],), 1.0 / max(x.shape[0], 1), x.dtype)  # N = 0: empty map
  centred = x - _channel_sum(mean_of, x)
  inv_std = jax.lax.rsqrt(_channel_sum(mean_of, centred * centred) + eps)
  x_hat = centred * inv_std
  return x_hat * scale + offset, (x_hat, inv_std, scale)


def _bn_backward(eps, saved, dy):
  """d/dx, d/dscale, d/doffset of `_bn_forward` for the output gradient dy."""
  del eps
  x_hat, inv_std, scale = saved
  n = max(dy.shape[0], 1)
  ones = jnp.ones(dy.shape[:1], dy.dtype)
  d_offset = _channel_sum(ones, dy)
  d_scale = _channel_sum(ones, dy * x_hat)
  dx = (inv_std * scale) * (dy - d_offset / n - x_hat * (d_scale / n))
  return dx, d_scale, d_offset


_batch_norm_2d.defvjp(_bn_forward, _bn_backward)


def xavier_01(key, shape):
  """Xavier-normal with gain 0.1, a plain (untruncated) normal, as PyTorch."""
  return jax.nn.initializers.variance_scaling(0.01, 'fan_avg', 'normal')(key, shape)
