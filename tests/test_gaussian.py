"""The anisotropic Gaussian down-scaler (`--generator=gaussian`) as a kernel estimator."""

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from benchmarks import degradations
from ike_jax import config
from ike_jax import estimators
from ike_jax import kernel
from ike_jax import outputs
from ike_jax import pipeline
from ike_jax.estimators import gaussian
from ike_jax.estimators import readout
from tests.test_train import synthetic_image

GAUSS = config.Config.create(generator='gaussian', losses=(), zssr=True, crop=16, iterations=4,
                             metrics_every=2, zssr_steps=4)


def _params(variances, angle):
  return {'gaussian': {'log_var': jnp.log(jnp.asarray(variances) - gaussian.MIN_VAR) / gaussian.RATE,
                       'angle': jnp.asarray(angle) / gaussian.RATE}}


@pytest.mark.parametrize('variances,angle', [((1.0, 1.0), 0.0), ((3.4, 1.8), 0.13),
                                             ((0.7, 4.5), 2.5)])
def test_kernel_is_the_gaussian_and_estimate_kernel_reads_it_back(variances, angle):
  cfg = GAUSS.train
  params = _params(variances, angle)
  est = estimators.of(cfg)
  assert est is gaussian and not est.HAS_INVERSE
  np.testing.assert_allclose(gaussian.shape(params)[0], variances, rtol=1e-5)
  k = np.asarray(gaussian.prepare(params, cfg)['kernel'])
  assert k.shape == (gaussian.KERNEL_SIZE,) * 2 and (k >= 0).all()
  assert k.sum() == pytest.approx(1.0, abs=1e-5)
  # The benchmark's data kernel with the same shape, on the read-out grid.
  want = degradations.fixed_gaussian_kernel(*variances, angle, size=11)
  got = readout.estimate_kernel(params, cfg)
  assert got['center_of_mass'] == pytest.approx((5.5, 5.5), abs=0.05)
  assert kernel.kernel_error(got['kernel'], want) < 1e-3
  # forward is that kernel's blur-and-subsample.
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 1)), jnp.float32)
  lr, z = gaussian.forward(gaussian.prepare(params, cfg), x, cfg)
  assert lr.shape == (2, 8, 8, 1) and z.shape == (2, 8, 8, 3) and not np.any(z)
  centre = np.asarray(lr)[:, 4, 4, 0]
  probe = np.asarray(x)[:, 8 - 6:8 + 7, 8 - 6:8 + 7, 0]
  np.testing.assert_allclose(centre, (probe * k).sum((1, 2)), atol=1e-5)
  assert not hasattr(gaussian, 'inverse')  # the SR stage starts from bicubic


def test_seeds_start_from_different_kernels_and_gradients_reach_all_three_numbers():
  cfg = GAUSS.train
  a, b = (gaussian.init(jax.random.PRNGKey(s), cfg) for s in (0, 1))
  assert not np.allclose(gaussian.shape(a)[0], gaussian.shape(b)[0])
  x = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (1, 16, 16, 1)), jnp.float32)
  grads = jax.grad(lambda p: jnp.sum(gaussian.forward(gaussian.prepare(p, cfg), x, cfg)[0] ** 3))(a)
  assert all(np.all(np.asarray(g) != 0) for g in jax.tree.leaves(grads))


def test_a_tiny_gaussian_run_writes_outputs_and_a_self_check(tmp_path):
  lr_path = str(tmp_path / 'in.png')
  outputs.write_png(lr_path, synthetic_image(32))
  result = pipeline.super_resolve_files([pipeline.Job(lr_path)], GAUSS, str(tmp_path / 'out'),
                                        log=lambda m: None)[0]
  assert result['status'] == 'ok' and result['method'] == 'ZSSR (Gaussian G kernel)'
  assert result['kernel_sum'] == pytest.approx(1.0, abs=0.02)
  assert 0.0 <= result['self_check'] < 255.0
  sr = np.asarray(Image.open(tmp_path / 'out' / 'in_x2.png'))
  assert sr.shape == (64, 64, 3) and sr.dtype == np.uint8
