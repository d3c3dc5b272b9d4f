"""Tests of the phase retrieval (`ike_jax.phase`): a kernel back from its magnitude."""

import chex
import numpy as np
import pytest

from ike_jax import edge_fit
from ike_jax import kernel
from ike_jax import phase


def _hook(side=13):
  """An asymmetric camera-shake-like kernel: a stroke, a fainter turn, a short hook."""
  k = np.zeros((side, side))
  k[3, 3:10] = 1.0
  k[3:10, 9] = 0.5
  k[9, 6:9] = 0.8
  return k / k.sum()


def _error_up_to_mirror(found, true):
  centre = (true.shape[0] - 1) / 2
  true = edge_fit.centre_kernel(true, centre)
  return min(kernel.kernel_error(edge_fit.centre_kernel(k, centre), true)
             for k in (found, found[::-1, ::-1]))


@pytest.mark.parametrize('seed', [0, 1])
def test_every_start_finds_the_kernel_or_its_mirror_from_its_magnitude(seed):
  k = _hook()
  found = phase.candidates(k, 4, seed=seed)
  chex.assert_shape(found, (4, 13, 13))
  assert np.all(found >= 0)
  np.testing.assert_allclose(found.sum(axis=(1, 2)), 1.0, atol=1e-9)
  # The hook's mirror image is another kernel (kernel error 0.08) with the
  # same magnitude: the magnitude pins the kernel down to one of the two.
  assert kernel.kernel_error(edge_fit.centre_kernel(k[::-1, ::-1], 6.0),
                             edge_fit.centre_kernel(k, 6.0)) > 0.05
  for candidate in found:
    assert _error_up_to_mirror(candidate, k) < 1e-4


def test_candidates_keep_the_magnitude_and_differ_from_a_flat_start():
  k = _hook()
  found = phase.candidates(k, 2)
  want = np.abs(np.fft.fft2(k, s=(48, 48)))
  for candidate in found:
    np.testing.assert_allclose(np.abs(np.fft.fft2(candidate, s=(48, 48))), want, atol=1e-5)
  flat = np.full_like(k, 1.0 / k.size)
  for candidate in found:  # not a featureless output
    assert kernel.kernel_error(candidate, flat) > 0.01
