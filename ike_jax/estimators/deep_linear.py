"""KernelGAN's deep linear generator as a kernel estimator (`ike_jax.estimators`).

With `--generator=deep_linear` the G of the training step is KernelGAN's
(Bell-Kligler et al., 2019) down-scaler instead of the invertible flow: six
bias-free linear convolutions (7x7, 5x5, 3x3, 1x1, 1x1, 1x1; 64 channels) on
each colour, the last one strided by s. Being linear, the stack equals one
13x13 correlation kernel; it is composed from the layer weights every step
(differentiable, so the deep-linear parameterisation and its implicit
regularisation still train) and applied as one strided convolution -- the
same fusion as the flow's linear subnets (`kernel.degrade` with zero
borders). It has no inverse and no latent: the SR image comes from the
post-processing that uses the kernel (`--zssr`, `--refine`). KernelGAN's x4
recipe: G trains at x2 and the x4 kernel is derived from the x2 one
(`training_scale`, `kernel.x4_from_x2`).
"""

import jax
import jax.numpy as jnp

from ike_jax import kernel

NAME = 'deep_linear'
TRAINS = True
HAS_INVERSE = False
LABEL = 'KernelGAN G'
SIZES = (7, 5, 3, 1, 1, 1)
CHANNELS = 64
KERNEL_SIZE = sum(SIZES) - len(SIZES) + 1  # 13


def training_scale(scale):
  """KernelGAN learns the x2 kernel also for x4 jobs."""
  del scale
  return 2


def receptive_radius(cfg):
  """One 13x13 kernel; at least the 11x11 data kernel's radius."""
  del cfg
  return KERNEL_SIZE // 2


def init(key, cfg):
  """Layer weights (k, k, in, out), PyTorch's default U(+-1/sqrt(fan_in))."""
  del cfg
  widths = [1] + [CHANNELS] * (len(SIZES) - 1) + [1]
  params = []
  for i, (k, key) in enumerate(zip(SIZES, jax.random.split(key, len(SIZES)))):
    bound = 1.0 / jnp.sqrt(k * k * widths[i])
    params.append({'w': jax.random.uniform(key, (k, k, widths[i], widths[i + 1]),
                                           minval=-bound, maxval=bound)})
  return {'deep_linear': params}


def compose(params):
  """The stack's correlation kernel, (13, 13) float32.

  `stack(x)[i, j] = sum_ab k[a, b] x[i + a, j + b]` (VALID, stride 1): read
  as the gradient of the single output pixel of a 13x13 input.
  """
  def stack(x):
    for layer in params['deep_linear']:
      x = jax.lax.conv_general_dilated(x, layer['w'], (1, 1), 'VALID',
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return x[0, 0, 0, 0]

  return jax.grad(stack)(jnp.zeros((1, KERNEL_SIZE, KERNEL_SIZE, 1)))[0, :, :, 0]


def prepare(params, cfg):
  """Composes the kernel once per step: {'kernel': (13, 13)}."""
  del cfg
  return {'kernel': compose(params)}


def forward(prepared, x, cfg):
  """(N, H, W, 1) -> (lr (N, H/s, W/s, 1), zero latent (N, H/s, W/s, s^2 - 1)).

  `lr[i, j] = sum k[a, b] x[s i + a - 6, s j + b - 6]`, zero borders: one
  strided correlation (`kernel.degrade`).
  """
  s = cfg.scale
  lr = jax.vmap(lambda v: kernel.degrade(v, prepared['kernel'], s, mode='constant', fft=False))(x)
  return lr, jnp.zeros((*lr.shape[:-1], s * s - 1), lr.dtype)
