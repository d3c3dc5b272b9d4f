"""Training: finite losses, the G step's effect, one compile, the schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ike_jax import colours
from ike_jax import config
from ike_jax import crops
from ike_jax import data
from ike_jax import estimators
from ike_jax import losses
from ike_jax import loop
from ike_jax import pipeline
from ike_jax import presets
from ike_jax import train
from ike_jax.estimators import flow

# The suite's tiny run: crop 16, one block, a 40x40 image (`synthetic_image(40)`); tests that
# share its train step share one compilation (the session's compilation cache).
TINY = config.Config.create(crop=16, blocks=1, iterations=30, metrics_every=10)


def synthetic_image(size=48, seed=0):
  """A smooth colour image with some edges, uint8 (size, size, 3)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size] / size
  img = np.stack([np.sin(6 * xx + 2 * c) * np.cos(4 * yy - c) for c in range(3)], -1)
  img += (xx > 0.5)[..., None] * 0.8 + 0.05 * rng.normal(size=img.shape)
  return np.clip((img + 1.5) / 3.5 * 255, 0, 255).astype(np.uint8)


def _fit(cfg, img, seed=0):
  plan = crops.plan_crops(img, cfg.scale, cfg.train.crop, cfg.run.iterations, seed)
  return loop.fit([data.to_model(img)], [plan], cfg.train, cfg.run, seeds=[seed],
                  log=lambda m: None)


def test_losses_finite_on_a_short_run():
  _, history, timings = _fit(TINY, synthetic_image(40))
  assert {'g_gan', 'bic', 'd', 'u', 'inter', 'csr', 'tv', 'ud'} <= set(history)
  assert history.pop('diverged').tolist() == [False]
  for name, values in history.items():
    assert values.shape == (TINY.run.iterations, 1), name
    assert np.all(np.isfinite(values)), name
  assert timings['step_s'] > 0


def test_g_step_reduces_the_bicubic_loss():
  # G starts away from bicubic (perturbed weights, no residual path); G and D
  # steps only, with the bicubic term dominating the GAN term.
  cfg = TINY.replace(losses=(), bic_mix_colours=False, bicubic_residual=False,
                     lr_g=1e-3, lambda_bic=100.0, iterations=40)
  img = synthetic_image()
  model = data.to_model(img)
  states = train.init_states(jnp.zeros((1,), jnp.int32), jnp.asarray(model)[None], cfg.train)
  leaves, tree = jax.tree.flatten(states.g)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  noisy = [l + 1.0 / np.sqrt(np.prod(l.shape[1:-1])) * jax.random.normal(k, l.shape)
           if l.ndim > 2 else l for l, k in zip(leaves, keys)]
  states = states.replace(g=jax.tree.unflatten(tree, noisy))
  c, tc = cfg.train.crop, cfg.train
  crop = jnp.asarray(model)[8:8 + c, 8:8 + c][None]

  def bic(g):
    lr, _ = flow.forward(flow.prepare(g, tc), colours.colours_to_batch(crop[0]), tc)
    return float(losses.bicubic(colours.batch_to_colours(lr)[None], crop, cfg.scale, False))

  before = bic(jax.tree.map(lambda a: a[0], states.g))
  plan = crops.plan_crops(img, cfg.scale, c, cfg.run.iterations, 0)
  states, history, _ = loop.fit([model], [plan], tc, cfg.run, log=lambda m: None, states=states)
  after = bic(jax.tree.map(lambda a: a[0], states.g))
  assert after < 0.7 * before, (before, after)
  assert np.mean(history['bic'][-10:]) < np.mean(history['bic'][:10])


def test_train_step_compiles_once():
  img = synthetic_image(40)
  before = train.train_step_batched._cache_size()  # pylint: disable=protected-access
  cfg = TINY.replace(iterations=6, metrics_every=2, seed=3)
  _fit(cfg, img, seed=3)
  after_first = train.train_step_batched._cache_size()  # pylint: disable=protected-access
  assert after_first - before <= 1
  # Another seed, more iterations, other metric spacing: the same executable.
  _fit(cfg.replace(iterations=8, metrics_every=4, seed=4), img, seed=4)
  assert train.train_step_batched._cache_size() == after_first  # pylint: disable=protected-access


def test_post_processing_neither_recompiles_nor_orphans_checkpoints():
  img = synthetic_image(40)
  cfg = TINY.replace(iterations=2, metrics_every=2)
  post = cfg.replace(zssr=True, zssr_steps=7, refine=True, refine_iterations=3,
                     refine_prior=1e-3, self_ensemble=True, lever_kernel_taps=9)
  assert post.train == cfg.train and hash(post.train) == hash(cfg.train)
  _fit(cfg, img)
  compiled = train.train_step_batched._cache_size()  # pylint: disable=protected-access
  _fit(post, img)
  assert train.train_step_batched._cache_size() == compiled  # pylint: disable=protected-access
  jobs = [pipeline.Job('a.png'), pipeline.Job('b.png')]
  assert pipeline.checkpoint_key(jobs, post) == pipeline.checkpoint_key(jobs, cfg)
  # What training computes, its seed or its length does change the key.
  for changed in (cfg.replace(crop=32), cfg.replace(lr_g=1e-3), cfg.replace(seed=1),
                  cfg.replace(iterations=3), cfg.replace(d_noise_accumulate=False)):
    assert pipeline.checkpoint_key(jobs, changed) != pipeline.checkpoint_key(jobs, cfg)


def test_lr_decay_schedule():
  cfg = config.Config.create().train
  got = [float(train.lr_factor(jnp.asarray(i), cfg)) for i in (0, 1, 750, 751, 1500, 1501, 2251)]
  np.testing.assert_allclose(got, [1, 1, 1, 0.1, 0.1, 0.01, 0.001], rtol=1e-6)


def test_lambda_bic_schedule_follows_the_learner():
  cfg = config.Config.create().train
  state = train.TrainState(
      step=jnp.asarray(0), rng=None, image=None, g=None, d=None, d_sn=None, u=None, ud=None,
      ud_sn=None, opt=None, lambda_bic=jnp.asarray(5.0), lambda_energy=jnp.asarray(0.0),
      bic_count=jnp.asarray(0), bic_ready=jnp.asarray(False))
  lams, energies, ready_at = [], [], None
  for i in range(0, 801):
    state = train._schedule(state.replace(step=jnp.asarray(i)), jnp.asarray(0.5), cfg)  # pylint: disable=protected-access
    if ready_at is None and bool(state.bic_ready):
      ready_at = i
    lams.append(float(state.lambda_bic))
    energies.append(float(state.lambda_energy))
  assert ready_at == 3  # index 0 skipped; 3rd consecutive value below 1 (indices 1, 2, 3)
  # Divided by 100 at 200, 400, 600 (the learner's choices apply afterwards).
  assert lams[199] == 5.0 and np.isclose(lams[200], 0.05) and np.isclose(lams[400], 5e-4)
  assert np.isclose(lams[600], 5e-6) and np.isclose(lams[800], 5e-6)  # floor
  assert energies[399] == 0.0 and energies[400] == 4.0  # switched at the 5e-4 step
  # A loss above the threshold resets the count.
  state = state.replace(bic_ready=jnp.asarray(False), bic_count=jnp.asarray(2))
  state = train._schedule(state.replace(step=jnp.asarray(5)), jnp.asarray(3.0), cfg)  # pylint: disable=protected-access
  assert int(state.bic_count) == 0 and not bool(state.bic_ready)


@pytest.mark.parametrize('preset', ['ablation_1_none', 'ablation_2_energy', 'ablation_3_tri',
                                    'ablation_4_residual', 'ablation_5_csr', 'ablation_6_full',
                                    'paper_x2', 'paper_x4', 'demo'])
def test_presets_change_the_losses_the_step_computes(preset):
  cfg = presets.config_from_flagfile(presets.preset_path(preset), ['--crop=16', '--blocks=1']).train
  img = jnp.zeros((48, 48, 3))
  state = jax.eval_shape(lambda: train.init_state(0, img, cfg))
  plan = crops.CropPlan(jnp.zeros((4, 2), jnp.int32), jnp.zeros((4, 2), jnp.int32))
  _, metrics = jax.eval_shape(lambda s: train.train_step(s, plan, cfg), state)
  keys = set(metrics)
  losses_ = cfg.loss.losses
  assert {'g_gan', 'bic', 'd'} <= keys
  assert ('energy' in keys) == ('energy' in losses_)
  assert ('csr' in keys) == ('ud' in keys) == ('csr' in losses_)
  assert ('inter' in keys) == ('inter' in losses_)
  assert ('tv' in keys) == ('tv' in losses_)
  # The flow's block structure follows the tri-channel switch.
  assert ('R' in state.g['stages'][0][0]) == cfg.model.tri_channel


def test_noise_accumulates_in_the_training_image_only_in_parity_mode():
  img = synthetic_image(40)
  for accumulate in (True, False):
    cfg = TINY.replace(iterations=3, d_noise_accumulate=accumulate, metrics_every=3)
    states, _, _ = _fit(cfg, img)
    changed = float(jnp.max(jnp.abs(states.image[0] - data.to_model(img))))
    assert (changed > 0) == accumulate


def test_bfloat16_nets_track_float32():
  # --compute_dtype=bfloat16 changes only D/UD/U's arithmetic: their outputs
  # stay within bf16 rounding of the float32 ones, and a short run trains.
  from ike_jax import nets  # pylint: disable=g-import-not-at-top
  key = jax.random.PRNGKey(0)
  d, sn = nets.init_discriminator(key)
  x = jax.random.uniform(key, (2, 20, 20, 3), minval=-1, maxval=1)
  f32, _ = nets.d_apply(d, sn, x)
  b16, _ = nets.d_apply(d, sn, x, jnp.bfloat16)
  assert b16.dtype == jnp.float32
  np.testing.assert_allclose(b16, f32, atol=2e-2)
  assert float(jnp.max(jnp.abs(b16 - f32))) > 0  # it did compute in bf16
  u = nets.init_upsampler(key, 2)
  z = jax.random.normal(key, (3, 8, 8, 3))
  f32 = nets.u_apply(u, z, 2)
  b16 = nets.u_apply(u, z, 2, dtype=jnp.bfloat16)
  rel = float(jnp.linalg.norm(b16 - f32) / jnp.linalg.norm(f32))
  assert 0 < rel < 2e-2, rel
  _, history, _ = _fit(TINY.replace(compute_dtype='bfloat16', iterations=10), synthetic_image())
  assert all(np.all(np.isfinite(v)) for v in history.values())
