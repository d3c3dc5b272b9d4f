"""The post-processing levers end to end: the ZSSR and refine paths, the
lever table and the parity input."""

import json

import numpy as np
import pytest

from benchmarks import datasets
from benchmarks import levers
from benchmarks import parity
from ike_jax import config
from ike_jax import crops
from ike_jax import data
from ike_jax import kernel
from ike_jax import loop
from ike_jax import metrics
from ike_jax import postprocess
from ike_jax import refine
from ike_jax import resize
from ike_jax.estimators import readout
from tests.test_train import synthetic_image

TINY = config.Config.create(crop=16, blocks=1, iterations=8, metrics_every=4, refine_iterations=10,
                     zssr_steps=10)


def test_parity_input_and_bicubic_match_the_recorded_figure():
  hr, lr, k = parity.parity_input()
  assert hr.shape == (512, 512, 3) and lr.shape == (256, 256, 3) and lr.dtype == np.uint8
  assert k.shape == (11, 11) and k.sum() == pytest.approx(1.0)
  np.testing.assert_allclose(kernel.center_of_mass(k), (5.5, 5.5), atol=0.02)
  bic = resize.bicubic_upscale(lr, 2)
  # Recorded with the PyTorch run: bicubic 29.24 dB Y-PSNR; its re-degradation reproduces LR at 36.0 dB.
  assert metrics.compare(bic, hr, 2)['psnr_y'] == pytest.approx(parity.TORCH['bicubic_psnr_y'], abs=0.01)
  assert parity.lr_psnr(bic, lr, k) == pytest.approx(parity.TORCH['bicubic_lr_psnr'], abs=0.05)


def _trained_g(cfg):
  img = synthetic_image(40)  # the suite's tiny run: its compiled step is shared
  plan = crops.plan_crops(img, cfg.scale, cfg.train.crop, cfg.run.iterations, 0)
  states, _, _ = loop.fit([data.to_model(img)], [plan], cfg.train, cfg.run, log=lambda m: None)
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.map(lambda a: a[0], states.g), data.to_model(img)


def test_lever_kernel_is_unit_sum_and_refine_makes_sr_consistent_with_it():
  g, lr = _trained_g(TINY)
  k, origin = postprocess.sr_kernel(readout.estimate_kernel(g, TINY.train), 2, 2)
  np.testing.assert_allclose(np.asarray(k).sum(axis=(1, 2)), 1.0, atol=1e-5)
  up = np.asarray(resize.matlab(lr[None], 2)[0])
  post = TINY.replace(refine=True, refine_iterations=50).post
  refined = postprocess.apply(up, lr, k, origin, post, 2)
  before = float(refine.data_term(up, lr, k, 2, origin))
  after = float(refine.data_term(refined, lr, k, 2, origin))
  assert after < 0.5 * before, (before, after)
  sr = postprocess.apply(up, lr, k, origin, TINY.replace(zssr=True).post, 2, zssr_crop=16)
  assert sr.shape == (80, 80, 3) and np.all(np.abs(sr) <= 1)


def test_lever_table_writes_rows(tmp_path):
  samples = datasets.offline(str(tmp_path / 'cache'), scale=2, hr_size=64, num_images=1)
  rows = levers.measure(TINY, samples, [0], exact=False, ceilings=True, log=lambda m: None)
  assert {'IKE', '+ self-ensemble', '+ refine (G kernel)', '+ ZSSR (G kernel)',
          'ceiling: bicubic + refine (true kernel)', 'ceiling: ZSSR (true kernel)'} == set(rows)
  for r in rows.values():
    assert len(r['gain_y']) == 1 and np.isfinite(r['gain_y'][0]) and r['seconds'] >= 0
  # With the true kernel, back-projection must beat bicubic on a DIV2KRK-style input.
  assert rows['ceiling: bicubic + refine (true kernel)']['gain_y'][0] > 0.3
  md = levers.markdown({'scale': 2, 'num_images': 1, 'seeds': [0], 'flagfile': None,
                        'iterations': 8, 'crop': 16, 'device': 'cpu', 'rows': rows})
  assert md.count('\n| ') == 7 and json.dumps(rows)


def test_parity_scores_external_sr_images_and_marks_bad_ones(tmp_path):
  # --score_sr: an SR image made elsewhere is scored like our own; bicubic's
  # PNG must give bicubic's row, and a wrong-sized image is marked, not scored.
  hr, lr, k = parity.parity_input()
  bic = resize.bicubic_upscale(lr, 2)
  good, small = tmp_path / 'bic.png', tmp_path / 'small.png'
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  iio.imwrite(good, bic)
  iio.imwrite(small, lr)
  rows = parity.score_external([str(good), str(small), str(tmp_path / 'none.png')], hr, lr, k)
  assert [r['status'] for r in rows][0] == 'ok'
  assert rows[1]['status'].startswith('shape') and rows[2]['status'].startswith('unreadable')
  assert rows[0]['psnr_y'] == pytest.approx(parity.score_row(bic, hr, lr, k)['psnr_y'], abs=1e-6)
  assert parity.summary(rows)['psnr_y_std'] == 0.0
