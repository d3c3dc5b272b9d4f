"""The two building blocks the networks share: a convolution and its init."""

import jax


def conv(x, w, b=None, padding='SAME'):
  """2-D convolution (cross-correlation), NHWC x HWIO, stride 1."""
  y = jax.lax.conv_general_dilated(
      x, w, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y if b is None else y + b


def xavier_01(key, shape):
  """Xavier-normal with gain 0.1, a plain (untruncated) normal, as PyTorch."""
  return jax.nn.initializers.variance_scaling(0.01, 'fan_avg', 'normal')(key, shape)
