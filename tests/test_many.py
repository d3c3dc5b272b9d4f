"""Many images at once: batched == alone, one compile, tiling, sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

from ike_jax import config
from ike_jax import crops
from ike_jax import data
from ike_jax import infer
from ike_jax import loop
from ike_jax import nets
from ike_jax import train
from tests.test_flow import random_params
from tests.test_train import synthetic_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = config.Config.create(crop=16, blocks=1, iterations=4, metrics_every=2)
# Three sizes padded to 40x40: the single-image step is then the one the other
# tiny runs of the suite compile (crop 16, one block, a 40x40 image), which the
# shared compilation cache holds.
SIZES = [(40, 40), (40, 32), (32, 36)]
PAD = (40, 40)

# Batched and single-image steps run the same math, but XLA may pick other
# convolution algorithms for a vmapped (grouped) conv, so sums differ in the
# last float32 bits. Adam turns a gradient g into about lr * g / |g|: for a
# parameter whose gradient is near zero, last-bit noise can flip an update of
# size lr (2e-4) per step. After 4 steps that bounds parameter differences by
# about 1e-3; we allow 2e-3 on parameters and 1e-3 on SR pixels in [-1, 1].
PARAM_TOL, SR_TOL = 2e-3, 1e-3


def _images():
  return [synthetic_image(max(h, w), seed=k)[:h, :w] for k, (h, w) in enumerate(SIZES)]


def _fit(images, cfg=CFG, pad_shape=PAD):
  plans = [crops.plan_crops(im, cfg.scale, cfg.train.crop, cfg.run.iterations, cfg.run.seed)
           for im in images]
  states, _, _ = loop.fit([data.to_model(im) for im in images], plans, cfg.train, cfg.run,
                          log=lambda m: None, pad_shape=pad_shape)
  return states


def _sr(states, images, cfg=CFG):
  return infer.super_resolve_many(states.g, states.u, [data.to_model(im) for im in images],
                                  cfg.train)


def test_batched_training_equals_each_image_alone_and_compiles_once():
  images = _images()
  before = train.train_step_batched._cache_size()  # pylint: disable=protected-access
  together = _fit(images)
  # Three sizes, one compiled step (images are padded to a common shape).
  assert train.train_step_batched._cache_size() - before <= 1  # pylint: disable=protected-access
  sr_together = _sr(together, images)
  for k, img in enumerate(images):
    alone = _fit([img])  # padded alike: one compiled single-image step for the three
    for a, b in zip(jax.tree.leaves(alone.g), jax.tree.leaves(together.g)):
      np.testing.assert_allclose(a[0], b[k], atol=PARAM_TOL)
    for a, b in zip(jax.tree.leaves(alone.u), jax.tree.leaves(together.u)):
      np.testing.assert_allclose(a[0], b[k], atol=PARAM_TOL)
    np.testing.assert_allclose(_sr(alone, [img])[0], sr_together[k], atol=SR_TOL)
    assert sr_together[k].shape == (2 * img.shape[0], 2 * img.shape[1], 3)


def test_tiled_inference_equals_whole_image_inference():
  for scale in (2, 4):
    cfg = config.Config.create(scale=scale, blocks=1).train
    g = random_params(cfg)
    u = nets.init_upsampler(jax.random.PRNGKey(1), scale)
    lr = jax.random.uniform(jax.random.PRNGKey(2), (72, 56, 3), minval=-1, maxval=1)
    whole = np.asarray(jax.jit(lambda g, u, x: infer.super_resolve(g, u, x, cfg))(g, u, lr))
    tile = 24
    tiled = np.asarray(jax.jit(lambda g, u, x: infer.super_resolve(g, u, x, cfg, tile))(g, u, lr))
    assert tiled.shape == whole.shape == (72 * scale, 56 * scale, 3)
    diff = np.abs(tiled - whole)
    m = 8 * scale  # image-border zone, where tiles see padding
    np.testing.assert_allclose(tiled[m:-m, m:-m], whole[m:-m, m:-m], atol=1e-4)
    # No seam: on the tile boundaries the error is as small as anywhere inside.
    seams = [scale * tile * k for k in (1, 2)]
    at_seams = max(diff[s - 2:s + 2, m:-m].max() for s in seams)
    assert at_seams < 1e-4
    assert diff.max() > 0  # the image border does differ (documented)


def test_sharded_run_on_four_devices_equals_one_device(tmp_path):
  images = [synthetic_image(40, seed=k) for k in range(5)]  # 5 does not divide 4
  np.save(tmp_path / 'images.npy', np.stack(images))
  script = textwrap.dedent(f'''
      import numpy as np, jax
      from ike_jax import config, crops, data, infer, loop, train
      assert jax.device_count() == 4, jax.devices()
      cfg = config.Config.create(crop=16, blocks=1, iterations=4, metrics_every=2)
      images = list(np.load({str(tmp_path / 'images.npy')!r}))
      plans = [crops.plan_crops(im, 2, 16, 4, 0) for im in images]
      states, _, _ = loop.fit([data.to_model(im) for im in images], plans, cfg.train, cfg.run,
                              log=print)
      print('compiled steps:', train.sharded_train_step(loop.image_sharding(5)[0].mesh)._cache_size())
      srs = infer.super_resolve_many(states.g, states.u, [data.to_model(im) for im in images],
                                     cfg.train)
      leaves = jax.tree.leaves(states.g)
      np.savez({str(tmp_path / 'sharded.npz')!r}, sr=np.stack(srs), *[np.asarray(l) for l in leaves])
  ''')
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=4')
  res = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
  assert res.returncode == 0, res.stderr[-3000:]
  assert '4 devices' in res.stdout and 'compiled steps: 1' in res.stdout
  states = _fit(images)
  srs = np.stack(_sr(states, images))
  with np.load(tmp_path / 'sharded.npz') as f:
    np.testing.assert_allclose(f['sr'], srs, atol=SR_TOL)
    for k, leaf in enumerate(jax.tree.leaves(states.g)):
      np.testing.assert_allclose(f[f'arr_{k}'], leaf, atol=PARAM_TOL)
