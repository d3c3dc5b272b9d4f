"""The marginal-likelihood kernel estimate (`ike_jax.marginal`)."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from ike_jax import edge_fit
from ike_jax import kernel as kernel_lib
from ike_jax import marginal
from tests import test_blind

KERNELS = test_blind.KERNELS
HALVE = lambda im, f: im[::2, ::2]  # the pyramid's down-scaler in these tests


def _start():
  return np.asarray(kernel_lib.gaussian_kernel(np.eye(2) * 1.0, 13, 1), np.float64)


def test_the_mixture_fit_finds_the_mixture_it_was_drawn_from():
  rng = np.random.default_rng(0)
  n = 200_000
  wide = rng.random(n) < 0.3
  g = np.where(wide, rng.normal(0, 0.2, n), rng.normal(0, 0.01, n))
  weights, variances = marginal.fit_mixture(g, components=2)
  order = np.argsort(variances)
  np.testing.assert_allclose(weights[order], [0.7, 0.3], atol=0.01)
  np.testing.assert_allclose(np.sqrt(variances[order]), [0.01, 0.2], rtol=0.03)


def test_the_prior_weights_are_the_precision_of_the_component_a_gradient_belongs_to():
  """A tiny gradient gets the narrowest component's precision, a large one the
  widest's: the smooth parts are held flat, the edges left free."""
  w, v = jnp.asarray(marginal.MIXTURE_WEIGHTS), jnp.asarray(marginal.MIXTURE_VARIANCES)
  second_moment = jnp.asarray([0.0, 1.0]).reshape(2, 1, 1)
  got = np.asarray(marginal.prior_weights(second_moment, w, v))
  chex.assert_shape(got, (2, 1, 1))
  assert 0.5 / float(v[0]) < got[0, 0, 0] <= 1.0 / float(v[0])  # mostly the narrowest's
  assert got[1, 0, 0] == pytest.approx(1.0 / float(v[-1]), rel=1e-3)
  assert got[0, 0, 0] > 100 * got[1, 0, 0]


@pytest.mark.parametrize('name', list(KERNELS))
def test_the_marginal_estimate_recovers_a_known_kernel(name):
  """An 8-bit scene of edges and fine texture blurred at the LR pitch by a
  known kernel: within 0.01 (kernel_error) and at least 2x closer than its
  start (measured: Gaussian 0.0055, motion 0.0004, disk 0.0006)."""
  k = KERNELS[name]()
  y = test_blind._textured_scene(k)  # pylint: disable=protected-access
  found = marginal.estimate(y, _start(), levels=2, rounds=12, resize=HALVE)
  chex.assert_shape(found, k.shape)
  assert found.min() >= 0 and abs(found.sum() - 1) < 1e-9
  err, start_err = kernel_lib.kernel_error(found, k), kernel_lib.kernel_error(_start(), k)
  assert err < 0.01 and err < start_err / 2, (err, start_err)


@pytest.mark.parametrize('name', ['motion', 'disk'])
def test_on_texture_the_marginal_estimate_keeps_the_blur_the_edge_alternation_drops(name):
  """The same scene: the edge alternation (`edge_fit.estimate`) ends towards a
  delta, the marginal estimate at least 5x closer to the true blur (measured:
  motion 0.0111 against 0.0004, disk 0.0187 against 0.0006)."""
  k = KERNELS[name]()
  y = test_blind._textured_scene(k)  # pylint: disable=protected-access
  edges = edge_fit.estimate(y, _start(), 1, levels=2, rounds_per_level=12, resize=HALVE)
  found = marginal.estimate(y, _start(), levels=2, rounds=12, resize=HALVE)
  err_edges, err = kernel_lib.kernel_error(edges, k), kernel_lib.kernel_error(found, k)
  assert err < err_edges / 5, (err, err_edges)


def test_hold_width_blends_in_just_enough_of_the_reference():
  delta = np.zeros((13, 13))
  delta[6, 6] = 1.0
  wide = KERNELS['disk']()
  held = np.asarray(edge_fit.hold_width(jnp.asarray(delta), jnp.asarray(wide), 0.5))
  assert abs(held.sum() - 1) < 1e-6 and held.min() >= 0
  assert float(edge_fit.spread(held)) == pytest.approx(0.5 * float(edge_fit.spread(wide)), rel=1e-4)
  np.testing.assert_allclose(edge_fit.hold_width(jnp.asarray(delta), jnp.asarray(wide), 0.0), delta)
  np.testing.assert_allclose(edge_fit.hold_width(jnp.asarray(wide), jnp.asarray(delta), 0.5), wide)


@pytest.mark.parametrize('name', ['motion', 'disk'])
def test_a_width_floor_keeps_the_settled_estimate_off_the_delta(name):
  """An edgeless texture, where the edge alternation collapses: its settling
  rounds held to half the marginal estimate's spread end closer to the blur
  (measured: motion 0.81 -> 0.12, disk 0.18 -> 0.10)."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  k = KERNELS[name]()
  x = ndimage.gaussian_filter(np.random.default_rng(5).normal(size=(112, 112)), 0.8, mode='wrap')
  y = test_blind._periodic_correlate(0.5 * x / np.abs(x).max(), k, (6, 6))  # pylint: disable=protected-access
  y = np.round((y + 1) * 127.5) / 127.5 - 1
  reference = marginal.estimate(y, _start(), levels=2, rounds=12, resize=HALVE)
  found = {floor: edge_fit.estimate(y, _start(), 1, levels=2, settle_rounds=24, reference=reference,
                                    floor=floor, resize=HALVE) for floor in (0.0, 0.5)}
  chex.assert_shape(found[0.5], k.shape)
  err = {f: kernel_lib.kernel_error(v, k) for f, v in found.items()}
  assert err[0.5] < 0.75 * err[0.0], err
