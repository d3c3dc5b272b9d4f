"""The estimate stage and the estimator protocol: a closed-form estimator is a
module and a registry line, and what it adds to its estimate reaches the outputs."""

import json
import types

import numpy as np
import pytest

from ike_jax import config
from ike_jax import errors
from ike_jax import estimate
from ike_jax import estimators
from ike_jax import kernel
from ike_jax import outputs
from ike_jax import pipeline
from ike_jax import report
from tests.test_train import synthetic_image


def _chooser():
  """A closed-form estimator that picks one of two Gaussians and says why."""
  def estimate_fn(lr, cfg):
    s = cfg.scale
    size = kernel.DEFAULT_SIZE[s]
    k = np.asarray(kernel.gaussian_kernel(np.eye(2), size, s), np.float64)
    return {'kernel': k, 'per_colour': np.stack([k] * 3), 'sum': 1.0,
            'center_of_mass': tuple(kernel.center_of_mass(k)), 'origin': (size // 2,) * 2,
            'linear': True, 'nonlinearity': 0.0, 'choice': 'narrow',
            'candidates': [{'name': 'narrow', 'score': 0.25}, {'name': 'wide', 'score': 1.5}],
            'confidence': 0.8125, 'noise_sigma': 1.5}
  return types.SimpleNamespace(NAME='chooser', LABEL='chooser', TRAINS=False, HAS_INVERSE=False,
                               MIN_SIDE=16, training_scale=lambda scale: scale,
                               estimate=estimate_fn)


@pytest.fixture
def chooser(monkeypatch):
  module = _chooser()
  monkeypatch.setitem(estimators._MODULES, 'chooser', module)  # pylint: disable=protected-access
  monkeypatch.setattr(estimators, 'NAMES', estimators.NAMES + ('chooser',))
  return module


def test_a_new_closed_form_estimator_records_its_choice_in_metrics_and_summary(tmp_path, chooser):
  cfg = config.Config.create(generator='chooser', losses=(), refine=True, refine_iterations=2)
  assert estimate.method_label(cfg) == 'bicubic + back-projection (chooser kernel)'
  assert estimate.output_kinds(cfg) == () and estimate.min_side(cfg)[0] == 16
  lr_path = str(tmp_path / 'in.png')
  outputs.write_png(lr_path, synthetic_image(24))
  result, = pipeline.super_resolve_files([pipeline.Job(lr_path)], cfg, str(tmp_path / 'out'),
                                         log=lambda m: None)
  assert result['status'] == 'ok'
  record = json.loads((tmp_path / 'out' / 'in_metrics.json').read_text())['estimate']
  assert record['choice'] == 'narrow' and record['confidence'] == 0.8125
  assert record['candidates'][1] == {'name': 'wide', 'score': 1.5}
  assert record['noise_sigma'] == 1.5 and record['scale'] == 2
  assert 'kernel' not in record and 'per_colour' not in record  # arrays are files
  assert 'kernel estimate: choice narrow, confidence 0.812 (of 1' in report.format_result(result)
  assert result['method'] == 'bicubic + back-projection (chooser: narrow kernel)'
  # A choice of no deblurring is named for what it is.
  assert estimate.method_label(cfg, {'choice': 'bicubic', 'refine': False}) == 'bicubic'
  with pytest.raises(errors.UserError, match='trains nothing'):
    estimate.check(cfg.replace(population=2))


def test_a_slow_closed_form_estimate_shows_its_progress(chooser, monkeypatch):
  clock = iter(range(0, 100, 2))  # every estimate "takes" 2 s
  fake = types.SimpleNamespace(perf_counter=lambda: float(next(clock)))
  monkeypatch.setattr(estimate, 'time', fake)  # the estimate stage's clock only
  cfg = config.Config.create(generator='chooser', losses=(), refine=True)
  lines = []
  found, timings = estimate.estimate_batch(
      [{'lr': synthetic_image(24)} for _ in range(3)], cfg, log=lines.append)
  assert sorted(found) == [0, 1, 2] and timings['estimate_s'] > 0
  assert lines[0] == 'kernel estimate (chooser): 3 image(s)'
  assert lines[1:] == ['kernel estimate 1/3: 2.0 s, ETA 8 s', 'kernel estimate 2/3: 2.0 s, ETA 4 s',
                       'kernel estimate 3/3: 2.0 s, ETA 0 s']


def test_unknown_estimator_and_a_small_image_are_one_line_errors(tmp_path, chooser):
  with pytest.raises(errors.UserError, match='--generator must be one of .*chooser'):
    estimate.check(config.Config.create(generator='nope'))
  small = str(tmp_path / 'small.png')
  outputs.write_png(small, synthetic_image(8))
  cfg = config.Config.create(generator='chooser', losses=(), refine=True)
  with pytest.raises(errors.InputError, match='--generator=chooser needs at least 16x16'):
    pipeline.super_resolve_files([pipeline.Job(small)], cfg, str(tmp_path / 'o'),
                                 log=lambda m: None)


def test_what_the_pipeline_asks_of_each_registered_estimator():
  for name in estimators.NAMES:
    cfg = config.Config.create(generator=name, losses=(), refine=True)
    est = estimators.get(name)
    assert estimate.output_kinds(cfg) == (('losses',) if est.TRAINS else ())
    side, why = estimate.min_side(cfg)
    assert side == (cfg.train.crop if est.TRAINS else est.MIN_SIDE) and str(side) in why
    assert est.LABEL in estimate.method_label(cfg)
    estimate.check(cfg)


def test_the_photos_of_one_run_share_linear_light(tmp_path):
  """A run estimates its photos with one configuration: photos said to be
  blurred in light and photos not are refused together, before any output."""
  jobs = [pipeline.Job(str(tmp_path / 'a.png')),
          pipeline.Job(str(tmp_path / 'b.png'), linear_light=True)]
  with pytest.raises(errors.UserError, match='share --linear_light'):
    pipeline.super_resolve_files(jobs, config.Config.create(generator='spectral', refine=True, losses=()),
                                 str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


def test_a_flat_photos_light_is_kept_at_bicubic():
  """The nearly flat microscope photo, unblurred: on its light the blind
  choice's second chance passes a wrong kernel (8 dB below bicubic), so the
  estimate on light runs without it (`estimate.in_light`) and gives bicubic;
  on grey levels the preset gives bicubic as it is."""
  from benchmarks import families  # pylint: disable=g-import-not-at-top
  from ike_jax import colours  # pylint: disable=g-import-not-at-top
  from ike_jax import presets  # pylint: disable=g-import-not-at-top
  from ike_jax.estimators import blind  # pylint: disable=g-import-not-at-top
  cfg = presets.config_from_flagfile(presets.preset_path('blind_x2'))
  lr, _, _, _ = families.pair(12, 'none', 2)
  light = colours.light_u8(lr)
  assert blind.estimate(light, cfg)['choice'] == 'blind'  # what the preset alone does
  assert blind.estimate(light, estimate.in_light(cfg))['choice'] == 'bicubic'
  assert blind.estimate(lr, cfg)['choice'] == 'bicubic'
