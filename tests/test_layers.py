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
  if shape[:2] == (11, 11):  # the route the case is there for
    assert layers.fft_pays(121, shape[2] * shape[3])
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


def _textbook_batch_norm(x, scale, offset, eps=1e-5):
  mean = jnp.mean(x, axis=(0, 1, 2))
  var = jnp.var(x, axis=(0, 1, 2))
  return (x - mean) * jax.lax.rsqrt(var + eps) * scale + offset


@pytest.mark.parametrize('shape', [(1, 12, 9, 64), (3, 5, 7, 4)])
def test_batch_norm_and_its_backward_match_the_textbook_form(shape):
  kx, ks, ko = jax.random.split(jax.random.PRNGKey(1), 3)
  x = 3.0 * jax.random.normal(kx, shape) + 2.0
  scale = 1.0 + 0.1 * jax.random.normal(ks, shape[-1:])
  offset = jax.random.normal(ko, shape[-1:])
  y = layers.batch_norm(x, scale, offset)
  chex.assert_shape(y, shape)
  np.testing.assert_allclose(y, _textbook_batch_norm(x, scale, offset), atol=1e-5, rtol=1e-5)
  # Normalised per channel: (y - offset) / scale has mean 0 and variance 1.
  z = (y - offset) / scale
  np.testing.assert_allclose(jnp.mean(z, axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.var(z, axis=(0, 1, 2)), 1.0, atol=1e-3)
  loss = lambda f: lambda x, s, o: jnp.sum(jnp.sin(f(x, s, o)) * jnp.cos(x))
  grads = jax.jit(jax.grad(loss(layers.batch_norm), (0, 1, 2)))(x, scale, offset)
  ref = jax.grad(loss(_textbook_batch_norm), (0, 1, 2))(x, scale, offset)
  for g, r in zip(grads, ref):
    chex.assert_equal_shape([g, r])
    np.testing.assert_allclose(g, r, atol=2e-4, rtol=1e-4)


def test_batch_norm_of_an_empty_map_is_empty_with_zero_parameter_gradients():
  # D on a crop smaller than its 7x7 window sees an empty map.
  x = jnp.zeros((1, 0, 5, 4))
  loss = lambda s, o: jnp.sum(layers.batch_norm(x, s, o))
  chex.assert_shape(layers.batch_norm(x, jnp.ones(4), jnp.zeros(4)), (1, 0, 5, 4))
  for g in jax.grad(loss, (0, 1))(jnp.ones(4), jnp.zeros(4)):
    np.testing.assert_array_equal(g, 0.0)
