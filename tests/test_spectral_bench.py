"""benchmarks/spectral_tuning.py and benchmarks/srstage.py: settings, cases and tables."""

import numpy as np
import pytest

from benchmarks import datasets
from benchmarks import spectral_tuning
from benchmarks import srstage
from ike_jax import config
from ike_jax import errors
from ike_jax import kernel

BEST = config.Config.create(generator='spectral', losses=(), refine=True)


def test_settings_are_config_overrides_with_their_types():
  over = spectral_tuning.parse_setting('refine_prior=1e-4; spectral_band_hi=0.3;spectral_phases=4')
  assert over == {'refine_prior': '1e-4', 'spectral_band_hi': '0.3', 'spectral_phases': '4'}
  assert spectral_tuning.parse_setting('') == {}
  assert spectral_tuning._typed(spectral_tuning.getattr_flat(BEST, 'spectral_phases'), '4') == 4
  assert spectral_tuning._typed(BEST.estimate.spectral.spectral_band_hi, '0.3') == 0.3
  assert spectral_tuning._typed(3e-5, '1e-4') == 1e-4 and spectral_tuning._typed(100, '50') == 50
  assert spectral_tuning._typed(True, 'false') is False
  with pytest.raises(ValueError):
    spectral_tuning._typed(True, 'maybe')
  with pytest.raises(errors.UserError, match='name=value'):
    spectral_tuning.parse_setting('refine_prior')
  with pytest.raises(KeyError):
    spectral_tuning.getattr_flat(BEST, 'no_such_field')


def test_tuning_cases_are_only_tuning_images_with_three_fixed_kernels():
  tuning = datasets.indices(datasets.TUNING_IMAGES)
  report = datasets.indices(datasets.REPORT_IMAGES)
  assert not set(tuning) & set(report)  # the sets do not overlap
  assert report == list(range(4, 12)) and len(tuning) == 8
  assert sorted(tuning + report) == list(range(len(datasets.OFFLINE_IMAGES)))
  pairs = spectral_tuning.cases(2)
  names = [list(datasets.OFFLINE_IMAGES)[i] for i in tuning]
  assert len(pairs) == 3 * len(names)
  assert {n.split('/')[0] for n, *_ in pairs} == set(names)
  (_, lr, hr, k), (_, lr2, _, k2) = pairs[0], pairs[1]
  assert lr.dtype == np.uint8 and lr.shape[0] * 2 == hr.shape[0] and not np.allclose(k, k2)
  assert spectral_tuning.cases(2)[0][1].tobytes() == lr.tobytes()  # deterministic


def test_spectral_settings_reach_the_estimate_through_the_config():
  hr = np.random.default_rng(0).uniform(0, 255, (64, 64, 3))
  k = np.asarray(kernel.gaussian_kernel(np.eye(2), 11, 2))
  lr = np.clip(np.asarray(kernel.degrade(hr, k, 2)), 0, 255).astype(np.uint8)
  pairs = [('x', lr, hr.astype(np.uint8), k)]
  cfg = BEST.replace(refine_iterations=2)
  row = spectral_tuning.evaluate(cfg, pairs)
  assert set(row) == {'mean_gain', 'min_gain', 'median_kernel_error', 's_per_image'}
  wider = spectral_tuning.evaluate(cfg.replace(spectral_variance_scale=2.0), pairs)
  assert wider['median_kernel_error'] != row['median_kernel_error']


def test_srstage_table_has_a_row_per_stage_and_kernel():
  out = {'estimator': 'spectral', 'images': ['a', 'b'], 'rows': [
      {'stage': 'refine', 'kernel': k, 'gains': {'a': 1.0, 'b': 3.0}, 'mean_gain': 2.0,
       's_per_image': 1.5} for k in ('true', 'estimated')]}
  md = srstage.markdown(out)
  assert md.count('\n| refine') == 2 and '| spectral |' in md and '**+2.00**' in md
