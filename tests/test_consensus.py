"""One kernel from a population: medoid, centre-aligned median and mean."""

import numpy as np
import pytest

from benchmarks import degradations
from ike_jax import consensus
from ike_jax import kernel


def _kernel(seed):
  return degradations.div2krk_kernel(np.random.default_rng(seed), 2)[0]


@pytest.mark.parametrize('method', consensus.METHODS)
def test_consensus_of_equal_kernels_is_that_kernel(method):
  k = _kernel(0)
  np.testing.assert_allclose(consensus.combine(np.stack([k, 2 * k, 0.5 * k]), method), k,
                             atol=1e-12)


@pytest.mark.parametrize('method', ['median', 'mean'])
def test_shifted_copies_are_aligned_before_combining(method):
  k = np.pad(_kernel(1), 3)  # room to move without losing taps
  shifted = [k, np.roll(k, (1, 0), (0, 1)), np.roll(k, (-2, 1), (0, 1))]
  np.testing.assert_allclose(consensus.combine(np.stack(shifted), method), k, atol=1e-12)


def test_medoid_and_median_resist_an_outlier_that_pulls_the_mean():
  true = _kernel(2)
  rng = np.random.default_rng(3)
  members = [np.clip(true + 0.002 * rng.normal(size=true.shape), 0, None) for _ in range(4)]
  outlier = np.zeros_like(true)
  outlier[5, 5] = 1.0  # a delta: what a collapsed estimator gives
  population = np.stack(members + [outlier])
  medoid = consensus.combine(population, 'medoid')
  assert any(np.allclose(medoid, m / m.sum()) for m in members)
  err = {m: kernel.kernel_error(consensus.combine(population, m), true) for m in consensus.METHODS}
  assert err['median'] < 0.5 * err['mean'] and err['medoid'] < 0.5 * err['mean'], err
  assert consensus.medoid_index(population) != 4


def test_distances_are_symmetric_with_a_zero_diagonal():
  d = consensus.distances(np.stack([_kernel(s) for s in range(4)]))
  np.testing.assert_array_equal(d, d.T)
  assert np.all(np.diag(d) == 0) and np.all(d[~np.eye(4, dtype=bool)] > 0)


@pytest.mark.parametrize('bad,match', [
    (np.zeros((0, 5, 5)), 'shape'), (np.zeros((5, 5)), 'shape'),
    (np.zeros((2, 5, 5)), 'non-zero sum')])
def test_bad_populations_raise(bad, match):
  with pytest.raises(ValueError, match=match):
    consensus.combine(bad)
  with pytest.raises(ValueError, match='consensus method'):
    consensus.combine(np.ones((2, 3, 3)), 'vote')
