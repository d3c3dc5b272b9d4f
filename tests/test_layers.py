"""layers.conv: every route computes lax's convolution, values and gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ike_jax import layers


def _lax_conv(x, w, b, padding):
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + b


@pytest.mark.parametrize('shape', [
    (1, 1, 64, 64),    # D's 1x1 layers: a matrix product
    (11, 11, 2, 1),    # G's fused subnets: FFT on the CPU
    (11, 11, 1, 2),
    (7, 7, 3, 64),     # D's first layer: lax
    (3, 3, 9, 64),     # U: lax
])
@pytest.mark.parametrize('padding', ['SAME', 'VALID'])
def test_conv_routes_match_lax(shape, padding):
  kx, kw, kb = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(kx, (2, 23, 19, shape[2]))
  w = jax.random.normal(kw, shape) / np.sqrt(np.prod(shape[:3]))
  b = jax.random.normal(kb, (shape[3],))
  y = layers.conv(x, w, b, padding)
  ref = _lax_conv(x, w, b, padding)
  chex.assert_equal_shape([y, ref])
  np.testing.assert_allclose(y, ref, atol=2e-5, rtol=1e-5)
  loss = lambda f: lambda x, w, b: jnp.sum(jnp.sin(f(x, w, b, padding)))
  grads = jax.grad(loss(layers.conv), (0, 1, 2))(x, w, b)
  ref_grads = jax.grad(loss(_lax_conv), (0, 1, 2))(x, w, b)
  for g, r in zip(grads, ref_grads):
    np.testing.assert_allclose(g, r, atol=5e-5, rtol=1e-4)


def test_fft_conv_is_a_correlation_with_zero_padding():
  # A delta image returns the kernel flipped (a correlation), centred as lax's SAME.
  w = jnp.arange(49.0).reshape(7, 7, 1, 1)
  x = jnp.zeros((1, 15, 15, 1)).at[0, 7, 7, 0].set(1.0)
  y = layers.fft_conv(x, w, 'SAME')
  chex.assert_shape(y, (1, 15, 15, 1))
  np.testing.assert_allclose(y[0, 4:11, 4:11, 0], w[::-1, ::-1, 0, 0], atol=1e-4)
  np.testing.assert_allclose(y[0, :4], 0, atol=1e-4)  # nothing wraps around
  with pytest.raises(ValueError, match='padding'):
    layers.fft_conv(x, w, 'CIRCULAR')
