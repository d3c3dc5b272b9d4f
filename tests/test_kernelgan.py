"""KernelGAN's deep linear generator (`--generator=deep_linear`) as a kernel estimator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ike_jax import config
from ike_jax import crops
from ike_jax import errors
from ike_jax import estimate
from ike_jax import estimators
from ike_jax import kernel
from ike_jax import pipeline
from ike_jax import postprocess
from ike_jax import presets
from ike_jax.estimators import deep_linear
from ike_jax.estimators import readout
from tests.test_train import synthetic_image

DL = config.Config.create(generator='deep_linear', losses=(), zssr=True, crop=16, iterations=4,
                   metrics_every=2, zssr_steps=4)


def _sr_kernel(g, cfg):
  """The SR kernel of a job `cfg` from G's raw parameters (estimated once)."""
  train_cfg = estimate.training_config(cfg)
  return postprocess.sr_kernel(readout.estimate_kernel(g, train_cfg), train_cfg.scale, cfg.scale,
                               cfg.post.lever_kernel_taps)


def _stack(params, x):
  for layer in params['deep_linear']:
    x = jax.lax.conv_general_dilated(x, layer['w'], (1, 1), 'VALID',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return x


@pytest.mark.parametrize('scale', [2, 4])
def test_fused_kernel_is_the_layer_stack(scale):
  # One strided 13x13 conv with the composed kernel == the six layers, then
  # keeping every s-th pixel (zero padding of 6 on each side).
  cfg = DL.train.replace(scale=scale)
  params = deep_linear.init(jax.random.PRNGKey(scale), cfg)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 24, 24, 1))
  layered = _stack(params, jnp.pad(x, ((0, 0), (6, 6), (6, 6), (0, 0))))[:, ::scale, ::scale]
  fused, z = deep_linear.forward(deep_linear.prepare(params, cfg), x, cfg)
  assert fused.shape == (2, 24 // scale, 24 // scale, 1)
  assert z.shape == (2, 24 // scale, 24 // scale, scale * scale - 1) and not z.any()
  np.testing.assert_allclose(fused, layered, atol=1e-5)
  assert deep_linear.compose(params).shape == (deep_linear.KERNEL_SIZE,) * 2


def test_g_of_deep_linear_is_linear_and_its_kernel_is_read_out():
  cfg = DL.replace(scale=2).train
  est = estimators.of(cfg)
  assert est is deep_linear and not est.HAS_INVERSE
  params = est.init(jax.random.PRNGKey(0), cfg)
  lr, z = est.forward(est.prepare(params, cfg), jnp.zeros((3, 32, 32, 1)), cfg)
  assert lr.shape == (3, 16, 16, 1) and z.shape == (3, 16, 16, 3)
  est = readout.estimate_kernel(params, cfg)
  assert est['linear']
  # lr[i] = sum_a k13[a] x[s i + a - 6]; the estimate's tap b sits at HR
  # s i + b - origin, so it is k13[b - origin + 6]: an 11x11 window of k13.
  full = np.asarray(deep_linear.compose(params))
  padded = np.pad(full, 11)  # zero outside the 13x13 support
  top = 6 - np.asarray(est['origin']) + 11
  np.testing.assert_allclose(est['kernel'], padded[top[0]:top[0] + 11, top[1]:top[1] + 11],
                             atol=1e-6)
  assert not hasattr(deep_linear, 'inverse')  # the SR stage starts from bicubic


@pytest.mark.parametrize('kw,match', [
    (dict(zssr=False), 'no inverse'),
    (dict(losses=('tv',)), 'no up-sampler'),
    (dict(generator='other'), '--generator')])
def test_bad_deep_linear_settings_are_user_errors(kw, match):
  with pytest.raises(errors.UserError, match=match):
    estimate.check(DL.replace(**kw))


def test_best_presets_parse_and_a_tiny_deep_linear_run_writes_outputs(tmp_path):
  for name in ('kernelgan_x2', 'kernelgan_x4', 'kernelgan_x2_accel'):
    cfg = presets.config_from_flagfile(presets.preset_path(name))
    estimate.check(cfg)
    assert cfg.train.model.generator == 'deep_linear' and cfg.post.zssr
  img = synthetic_image(32)
  from ike_jax import outputs  # pylint: disable=g-import-not-at-top
  lr_path = str(tmp_path / 'in.png')
  outputs.write_png(lr_path, img)
  result = pipeline.super_resolve_files([pipeline.Job(lr_path)], DL, str(tmp_path / 'out'),
                                        log=lambda m: None)[0]
  assert result['status'] == 'ok' and result['sr_shape'] == [64, 64, 3]
  assert result['method'] == 'ZSSR (KernelGAN G kernel)'  # named after what made it
  assert (tmp_path / 'out' / 'in_x2.png').exists()


def test_x4_lever_kernel_is_the_x2_kernel_applied_twice():
  # G trains at x2 for an x4 job; the x4 kernel (31x31, origin 3 x the x2
  # origin) must degrade like the x2 kernel applied twice.
  cfg4 = DL.replace(scale=4)
  assert estimate.training_config(cfg4).scale == 2 and estimate.training_config(DL) == DL.train
  g = deep_linear.init(jax.random.PRNGKey(3), estimate.training_config(cfg4))
  k2, o2 = _sr_kernel(g, DL)
  k4, o4 = _sr_kernel(g, cfg4)
  assert k4.shape == (3, 31, 31) and o4 == (3 * o2[0], 3 * o2[1])
  np.testing.assert_allclose(np.asarray(k4).sum(axis=(1, 2)), 1.0, atol=1e-5)
  img = jax.random.uniform(jax.random.PRNGKey(4), (64, 64, 3), minval=-1, maxval=1)
  twice = kernel.degrade(kernel.degrade(img, k2, 2, o2), k2, 2, o2)
  once = kernel.degrade(img, k4, 4, o4)
  # Equal away from the borders (the two paths mirror the borders differently).
  np.testing.assert_allclose(once[4:-4, 4:-4], twice[4:-4, 4:-4], atol=1e-4)


def test_x4_tap_cut_applies_to_the_x2_kernel_before_the_x4_one_is_derived():
  # KernelGAN's order: keep the x2 kernel's N largest taps, then derive x4.
  cfg2 = DL.replace(lever_kernel_taps=9)
  cfg4 = cfg2.replace(scale=4)
  g = deep_linear.init(jax.random.PRNGKey(5), estimate.training_config(cfg4))
  k2, _ = _sr_kernel(g, cfg2)
  assert (np.count_nonzero(np.asarray(k2), axis=(1, 2)) <= 9).all()
  k4, _ = _sr_kernel(g, cfg4)
  want = np.stack([kernel.x4_from_x2(k) for k in np.asarray(k2, np.float64)])
  np.testing.assert_allclose(np.asarray(k4), want / want.sum(axis=(1, 2), keepdims=True), atol=1e-6)


def test_population_trains_in_one_step_like_single_runs_and_reports_its_consensus(tmp_path):
  # Members of a population are the single runs of their seeds, trained together.
  from ike_jax import data, loop  # pylint: disable=g-import-not-at-top
  img = synthetic_image(32)
  train_cfg = DL.train
  plan = lambda seed: crops.plan_crops(img, 2, train_cfg.crop, DL.run.iterations, seed)
  lr = data.to_model(img)
  # Three members, as the population run below (its compiled step is this one).
  together, _, _ = loop.fit([lr] * 3, [plan(0), plan(1), plan(2)], train_cfg, DL.run,
                            seeds=[0, 1, 2], log=lambda m: None)
  for m, seed in enumerate((0, 1)):
    alone, _, _ = loop.fit([lr], [plan(seed)], train_cfg, DL.run, seeds=[seed], log=lambda m: None)
    for a, b in zip(jax.tree.leaves(alone.g), jax.tree.leaves(together.g)):
      np.testing.assert_allclose(a[0], b[m], atol=2e-3)  # batched-vs-single float noise
  from ike_jax import outputs  # pylint: disable=g-import-not-at-top
  lr_path = str(tmp_path / 'in.png')
  outputs.write_png(lr_path, img)
  cfg = DL.replace(population=3, consensus='median')
  result = pipeline.super_resolve_files([pipeline.Job(lr_path)], cfg, str(tmp_path / 'out'),
                                        log=lambda m: None)[0]
  assert result['status'] == 'ok'
  pop = result['population']
  assert pop['members'] == 3 and pop['seeds'] == [0, 1, 2] and pop['seed'] in (0, 1, 2)
  assert pop['consensus'] == 'median' and pop['spread'] > 0
  assert result['method'] == 'ZSSR (median of 3 KernelGAN G kernels)'
  assert pipeline.checkpoint_key([pipeline.Job(lr_path)], cfg) != pipeline.checkpoint_key(
      [pipeline.Job(lr_path)], DL.replace(consensus='median'))
  # G trained on a photo's light is not G trained on its grey levels.
  assert pipeline.checkpoint_key([pipeline.Job(lr_path)], cfg) != pipeline.checkpoint_key(
      [pipeline.Job(lr_path, linear_light=True)], cfg)
