"""Tests for kernel.degrade, ike_jax.refine (back-projection, self-ensemble) and ike_jax.zssr."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from benchmarks import degradations
from ike_jax import ensemble
from ike_jax import kernel as kernel_lib
from ike_jax import refine
from ike_jax import resize
from ike_jax import zssr
from tests import reference


def _psnr(a, b):
  """PSNR (dB) of two [-1, 1] images."""
  mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
  return 10 * np.log10(4.0 / mse)


def _smooth_hr(shape, seed=0, sigma=2.0):
  """Smooth random (H, W, 3) image in [-0.8, 0.8]."""
  noise = np.random.default_rng(seed).normal(size=shape)
  smooth = ndimage.gaussian_filter(noise, (sigma, sigma, 0))
  return (0.8 * smooth / np.abs(smooth).max()).astype(np.float32)


@pytest.mark.parametrize('shape,ksize,scale,origin,per_colour', [
    ((23, 18, 3), 11, 2, None, False),
    ((20, 26, 3), 5, 2, (1, 3), True),
    ((17, 21, 3), 7, 4, (3, 4), False),
])
def test_degrade_matches_ndimage(shape, ksize, scale, origin, per_colour):
  rng = np.random.default_rng(0)
  img = rng.uniform(-1, 1, shape)
  k = rng.uniform(-0.2, 1, (3, ksize, ksize) if per_colour else (ksize, ksize))
  want = reference.ndimage_degrade(img, k, scale, origin)
  got = kernel_lib.degrade(jnp.asarray(img, jnp.float32), jnp.asarray(k), scale,
                       origin)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_degrade_vmaps_over_images():
  imgs = np.random.default_rng(1).uniform(-1, 1, (2, 12, 10, 3))
  k = degradations.fixed_gaussian_kernel(2.0, 1.0, 0.3, size=5)
  got = jax.vmap(lambda x: kernel_lib.degrade(x, k, 2))(jnp.asarray(imgs))
  for img, out in zip(imgs, got):
    np.testing.assert_allclose(out, reference.ndimage_degrade(img, k, 2),
                               atol=1e-5)


def test_back_project_enforces_consistency_and_helps_psnr():
  hr = _smooth_hr((48, 40, 3))
  k = degradations.fixed_gaussian_kernel(3.0, 1.2, 0.7)  # 11x11, x2-centred
  lr = jnp.asarray(kernel_lib.degrade(hr, k, 2), jnp.float32)
  bicubic = resize.matlab(lr[None], 2)[0]
  sr = refine.back_project(bicubic, lr, k, 2)
  before = float(refine.data_term(bicubic, lr, k, 2))
  after = float(refine.data_term(sr, lr, k, 2))
  # Measured: 0.029 -> 0.00022 (130x); PSNR 31.8 -> 43.2 dB.
  assert after < before / 10
  assert _psnr(sr, hr) > _psnr(bicubic, hr) + 1.0
  assert sr.shape == hr.shape and float(jnp.abs(sr).max()) <= 1.0


def test_back_project_rejects_mismatched_sizes():
  with pytest.raises(ValueError, match='not SR'):
    refine.back_project(jnp.zeros((8, 8, 3)), jnp.zeros((5, 4, 3)),
                        np.ones((3, 3)) / 9, 2)


def _up2(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=0), 2, axis=1)


def test_self_ensemble_of_equivariant_map_is_the_map():
  lr = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (5, 7, 3)))
  np.testing.assert_allclose(ensemble.self_ensemble(_up2, lr), _up2(lr),
                             atol=1e-6)


def test_self_ensemble_of_non_equivariant_map_differs():
  lr = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (5, 7, 3)))

  def ramp(x):  # adds a ramp down the rows: not flip-equivariant
    up = _up2(x)
    return up + jnp.arange(up.shape[0], dtype=up.dtype)[:, None, None]

  out = ensemble.self_ensemble(ramp, lr)
  assert out.shape == (10, 14, 3)
  assert float(jnp.abs(out - ramp(lr)).max()) > 1.0


def test_dihedral_transforms_are_distinct_and_invertible():
  x = jnp.arange(2 * 3 * 1.0).reshape(2, 3, 1)
  seen = set()
  for t in ensemble.DIHEDRAL:
    y = ensemble.dihedral(x, *t)
    seen.add((y.shape, tuple(np.asarray(y).ravel())))
    np.testing.assert_array_equal(ensemble.dihedral_inverse(y, *t), x)
  assert len(seen) == 8


def test_train_zssr_reduces_loss_and_apply_shape():
  lr = jnp.asarray(_smooth_hr((32, 28, 3), seed=4, sigma=1.0))
  k = degradations.fixed_gaussian_kernel(2.0, 1.0, 0.3, size=5)
  init = zssr.init_zssr(jax.random.PRNGKey(1), channels=8, layers=3)
  params, losses = zssr.train_zssr(
      jax.random.PRNGKey(0), lr, k, 2, steps=60, crop=16,
      learning_rate=1e-2, params=init)
  assert losses.shape == (60,) and np.isfinite(losses).all()
  # The L1 loss on the whole image's pair; measured 0.089 -> 0.073.
  son, father = kernel_lib.degrade(lr, k, 2)[None], lr[None]
  before = float(zssr.zssr_loss(init, son, father, 2))
  after = float(zssr.zssr_loss(params, son, father, 2))
  assert after < 0.9 * before
  sr = zssr.apply_zssr(params, lr, 2)
  assert sr.shape == (64, 56, 3)
  assert float(jnp.abs(sr).max()) <= 1.0
