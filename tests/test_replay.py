"""Replaying a recorded PyTorch run (benchmarks/replay.py): weight layout, the
step on given crops, and a replay of our own run reproducing it."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import replay
from ike_jax import config
from ike_jax import crops
from ike_jax import data
from ike_jax import errors
from ike_jax import layers as nn_layers
from ike_jax import train
from tests.test_train import synthetic_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = config.Config.create(crop=16, blocks=2, iterations=3, d_noise_accumulate=True)


def torch_conv_reference(x_chw, w_oihw, b):
  """PyTorch's Conv2d (stride 1, zero padding kh // 2), written out in NumPy."""
  _, kh, kw = w_oihw.shape[1:]
  ph, pw = kh // 2, kw // 2
  xp = np.pad(x_chw, ((0, 0), (ph, ph), (pw, pw)))
  h, w = x_chw.shape[1:]
  out = np.zeros((w_oihw.shape[0], h, w))
  for dy in range(kh):
    for dx in range(kw):
      out += np.einsum('oi,ihw->ohw', w_oihw[:, :, dy, dx], xp[:, dy:dy + h, dx:dx + w])
  return out + b[:, None, None]


def test_a_torch_conv_weight_computes_the_torch_conv():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 9, 7))
  w, b = rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)
  ours = nn_layers.conv(jnp.asarray(x.transpose(1, 2, 0)[None], jnp.float32),
                   replay.conv_from_torch(w), jnp.asarray(b, jnp.float32))
  np.testing.assert_allclose(np.asarray(ours[0]).transpose(2, 0, 1),
                             torch_conv_reference(x, w, b), atol=1e-4)


def _to_torch(w_hwio):
  return np.asarray(w_hwio).transpose(3, 2, 0, 1)


def torch_record_of(state):
  """`init/...` entries laid out as the PyTorch state_dicts (see replay.state_from_torch)."""
  rec = {}
  for b, block in enumerate(state.g['stages'][0]):
    for name, layers in block.items():
      for k, layer in enumerate(layers):
        rec[f'init/G/operations.{b + 1}.{name}.conv{k + 1}.weight'] = _to_torch(layer['w'])
        rec[f'init/G/operations.{b + 1}.{name}.conv{k + 1}.bias'] = np.asarray(layer['b'])
  for net, params, sn in (('D', state.d, state.d_sn), ('UD', state.ud, state.ud_sn)):
    for i, (name, layer, u) in enumerate(zip(replay.D_CONVS, params, sn)):
      rec[f'init/{net}/{name}.weight_orig'] = _to_torch(layer['w'])
      rec[f'init/{net}/{name}.bias'] = np.asarray(layer['b'])
      rec[f'init/{net}/{name}.weight_u'] = np.asarray(u)
      if i in replay.D_NORMS:
        rec[f'init/{net}/{replay.D_NORMS[i]}.weight'] = np.asarray(layer['bn_scale'])
        rec[f'init/{net}/{replay.D_NORMS[i]}.bias'] = np.asarray(layer['bn_offset'])
  for k, layer in enumerate(state.u):
    rec[f'init/U/conv{k}.weight'] = _to_torch(layer['w'])
    rec[f'init/U/conv{k}.bias'] = np.asarray(layer['b'])
  return rec


def test_state_from_torch_places_every_weight_and_names_a_missing_one():
  cfg = TINY.train
  img = data.to_model(synthetic_image(32))
  ours = train.init_state(1, img, cfg)
  other = train.init_state(2, img, cfg)
  moved = replay.state_from_torch(torch_record_of(ours), other, cfg)
  for a, b in zip(jax.tree.leaves((ours.g, ours.d, ours.d_sn, ours.ud, ours.ud_sn, ours.u)),
                  jax.tree.leaves((moved.g, moved.d, moved.d_sn, moved.ud, moved.ud_sn, moved.u))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  rec = torch_record_of(ours)
  del rec['init/UD/feature_block.13.weight']
  with pytest.raises(errors.UserError, match='feature_block.13.weight'):
    replay.state_from_torch(rec, other, cfg)
  rec = torch_record_of(ours)
  rec['init/U/conv0.weight'] = rec['init/U/conv0.weight'][:, :2]
  with pytest.raises(errors.UserError, match='shape'):
    replay.state_from_torch(rec, other, cfg)


def test_replaying_our_own_run_reproduces_it():
  # Record a run of ours the way the PyTorch wrapper records theirs (initial
  # weights, each step's crops and D fake noise, the bicubic loss), replay it.
  cfg = TINY.train
  img_u8 = synthetic_image(32)
  state = train.init_state(3, data.to_model(img_u8), cfg)
  plan = crops.plan_crops(img_u8, cfg.scale, cfg.crop, TINY.run.iterations, 3)
  plan = crops.CropPlan(jnp.asarray(plan.g_corners), jnp.asarray(plan.d_corners))
  rec = torch_record_of(state)
  step = jax.jit(train.train_step, static_argnums=2)
  crops_g, crops_d, noise, bic = [], [], [], []
  for _ in range(TINY.run.iterations):  # (the TrainConfig has no iteration count)
    k_real, k_fake = jax.random.split(jax.random.fold_in(state.rng, state.step))
    crop_g, crop_d, _ = train.take_crops(state, plan, k_real, cfg)
    crops_g.append(np.asarray(crop_g[0]).transpose(2, 0, 1))
    crops_d.append(np.asarray(crop_d[0]).transpose(2, 0, 1))
    noise.append(np.asarray(jax.random.normal(k_fake, crop_d.shape))[0].transpose(2, 0, 1))
    state, m = step(state, plan, cfg)
    bic.append(float(m['bic']))
  rec.update(crops_g=np.stack(crops_g), crops_d=np.stack(crops_d), fake_noise=np.stack(noise),
             loss_names=np.array(['loss_bicubic']), losses=np.array(bic)[:, None])

  replayed, history = replay.replay(rec, img_u8, TINY, log=lambda m: None)
  np.testing.assert_allclose(history['bic'], bic, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(state.g), jax.tree.leaves(replayed.g)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
  losses, _ = replay.compare_losses(history, rec)
  assert losses['first_step_over_1e-3'] is None
  assert losses['steps'] == [1, 2, 3]


def test_replay_refuses_a_record_of_another_crop_size():
  rec = {'crops_g': np.zeros((2, 3, 32, 32), np.float32)}
  with pytest.raises(errors.UserError, match='--crop=16'):
    replay.replay(rec, synthetic_image(32), TINY)


def test_replay_cli_gives_one_line_errors_for_a_bad_record(tmp_path):
  bad = tmp_path / 'rec.npz'
  np.savez(bad, crops_g=np.zeros((1, 3, 128, 128), np.float32))
  for path in (bad, tmp_path / 'missing.npz'):
    proc = subprocess.run(
        [sys.executable, '-m', 'benchmarks.replay', '--flagfile=flags/paper_x2.flags',
         f'--record={path}', f'--output_dir={tmp_path / "out"}'],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS='cpu'),
        check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith('error: ') and 'Traceback' not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
  assert not (tmp_path / 'out').exists()
