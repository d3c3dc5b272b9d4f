"""The two building blocks the networks share: a convolution and its init."""

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
    layers; XLA's CPU convolution runs these at a fraction of its matmul rate);
  - on the CPU, a large kernel over few channels (G's fused 11x11 subnets,
    1-2 channels in and out) is a product of FFTs;
  - anything else is `lax.conv_general_dilated`.
  """
  kh, kw, ci, co = w.shape
  if ROUTES and kh == 1 and kw == 1:
    y = jnp.einsum('nhwc,cd->nhwd', x, w[0, 0])
  elif fft_pays(kh * kw, ci * co):
    y = fft_conv(x, w, padding)
  else:
    y = jax.lax.conv_general_dilated(
        x, w, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y if b is None else y + b


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


def xavier_01(key, shape):
  """Xavier-normal with gain 0.1, a plain (untruncated) normal, as PyTorch."""
  return jax.nn.initializers.variance_scaling(0.01, 'fan_avg', 'normal')(key, shape)
