"""The spectral kernel estimate: `ike_jax.spectrum` and `--generator=spectral`."""

import dataclasses
import json

import numpy as np
from PIL import Image
import pytest

from ike_jax import config
from ike_jax import errors
from ike_jax import estimate
from ike_jax import kernel
from ike_jax import outputs
from ike_jax import pipeline
from ike_jax import presets
from ike_jax import spectrum
from ike_jax import whittle
from ike_jax.estimators import spectral
from tests.test_train import synthetic_image

SPECTRAL = config.Config.create(generator='spectral', losses=(), refine=True, refine_iterations=5)


def scale_invariant_image(side, seed, alpha=2.0):
  """Random field with power spectrum |f|^-alpha (the model's scene), (side, side)."""
  rng = np.random.default_rng(seed)
  fy, fx = np.meshgrid(np.fft.fftfreq(side), np.fft.fftfreq(side), indexing='ij')
  radius = np.hypot(fx, fy)
  radius[0, 0] = 1.0
  field = np.fft.ifft2(np.fft.fft2(rng.standard_normal((side, side))) * radius ** (-alpha / 2)).real
  return 128.0 + 40.0 * field / field.std()


@pytest.mark.parametrize('scale,cov', [
    (2, [[2.5, 0.8], [0.8, 1.5]]),
    (2, [[0.8, 0.0], [0.0, 0.8]]),
    (4, [[9.0, -3.0], [-3.0, 6.0]]),
])
@pytest.mark.parametrize('robust_iterations', [0, 3])
def test_recovers_the_gaussian_blur_of_a_scale_invariant_scene(scale, cov, robust_iterations):
  # The fit itself (no calibration factor) is unbiased on the model's scene.
  default = config.SpectralConfig(spectral_robust_iterations=robust_iterations)
  fit = dataclasses.replace(default, spectral_variance_scale=1.0)
  cov = np.asarray(cov)
  hr = scale_invariant_image(512, seed=scale)
  k = np.asarray(kernel.gaussian_kernel(cov, 31, scale))
  lr = np.asarray(kernel.degrade(hr, k, scale))
  est = spectrum.blur_covariance(lr, scale, fit)
  assert est.shape == (2, 2) and np.allclose(est, est.T)
  assert np.linalg.norm(est - cov) / np.linalg.norm(cov) < 0.2
  # A wrong blur (twice as wide) is told apart.
  wide = np.asarray(kernel.degrade(hr, np.asarray(kernel.gaussian_kernel(2 * cov, 31, scale)), scale))
  assert np.trace(spectrum.blur_covariance(wide, scale, fit)) > 1.5 * np.trace(est)
  # The default multiplies the fit by the calibration factor (nothing clipped here).
  np.testing.assert_allclose(spectrum.blur_covariance(lr, scale, default),
                             default.spectral_variance_scale * est, rtol=1e-9)


def test_variances_are_clipped_to_the_pixel_aperture_and_the_cap():
  # Unblurred, aliased scenes sit at or near the floor, never below it.
  for seed in range(3):
    sharp = scale_invariant_image(192, seed)[::2, ::2]
    est = np.linalg.eigvalsh(spectrum.blur_covariance(sharp, 2))
    assert spectrum.min_variance(2) - 1e-9 <= est.min() and est.max() < 1.0
  flat = np.random.default_rng(0).normal(128, 20, (96, 96))
  smooth = np.asarray(kernel.degrade(scale_invariant_image(256, 1),
                                     np.asarray(kernel.gaussian_kernel(40 * np.eye(2), 41, 2)), 2))
  assert np.linalg.eigvalsh(spectrum.blur_covariance(smooth, 2)).max() <= spectrum.MAX_VARIANCE + 1e-9
  with pytest.raises(ValueError, match='too small'):
    spectrum.blur_covariance(flat[:8, :8], 2)


@pytest.mark.parametrize('scale', [2, 4])
def test_estimate_is_a_centred_unit_sum_kernel_in_estimate_kernels_format(scale):
  lr = synthetic_image(48)
  est = spectral.estimate(lr, SPECTRAL.replace(scale=scale))
  size = kernel.DEFAULT_SIZE[scale]
  assert est['kernel'].shape == (size, size) and est['per_colour'].shape == (3, size, size)
  assert est['kernel'].sum() == pytest.approx(1.0) and (est['kernel'] >= 0).all()
  want = kernel.kernel_center(size, scale)
  assert est['center_of_mass'] == pytest.approx((want, want), abs=1e-3)
  assert est['origin'] == (size // 2, size // 2) and est['linear']


def test_a_run_writes_outputs_without_loss_curves_and_is_the_same_for_every_seed(tmp_path):
  lr_path = str(tmp_path / 'in.png')
  outputs.write_png(lr_path, synthetic_image(48))
  results = [pipeline.super_resolve_files([pipeline.Job(lr_path)], SPECTRAL.replace(seed=seed),
                                          str(tmp_path / f'out{seed}'), log=lambda m: None)[0]
             for seed in (0, 1)]
  for r in results:
    assert r['status'] == 'ok' and r['method'] == 'bicubic + back-projection (spectral kernel)'
    assert r['self_check'] >= 0.0 and 'timings' in r
  files = {p.name for p in (tmp_path / 'out0').iterdir()}
  assert files == {'in_x2.png', 'in_compare.png', 'in_metrics.json', 'in_kernel.npy',
                   'in_kernel.png', 'in_kernel.mat'}
  a, b = (np.asarray(Image.open(tmp_path / f'out{s}' / 'in_x2.png')) for s in (0, 1))
  np.testing.assert_array_equal(a, b)
  # Complete outputs are skipped on a second run (no loss curves expected).
  again = pipeline.super_resolve_files([pipeline.Job(lr_path)], SPECTRAL, str(tmp_path / 'out0'),
                                       log=lambda m: None)
  assert [(r['image'], r['status']) for r in again] == [(lr_path, 'skipped')]
  assert again[0]['self_check'] == pytest.approx(results[0]['self_check'])  # its record, kept
  assert again[0]['outputs'] == results[0]['outputs']
  assert json.loads((tmp_path / 'out0' / 'in_metrics.json').read_text())['self_check'] >= 0
  # A record written before a setting existed, with infinite settings as null, still matches...
  path = tmp_path / 'out0' / 'in_metrics.json'
  record = json.loads(path.read_text())
  record['config'] = outputs.jsonable(SPECTRAL.to_dict())  # inf -> null
  del record['config']['post']['refine_context']
  path.write_text(json.dumps(record))
  again = pipeline.super_resolve_files([pipeline.Job(lr_path)], SPECTRAL, str(tmp_path / 'out0'),
                                       log=lambda m: None)
  assert [(r['image'], r['status']) for r in again] == [(lr_path, 'skipped')]
  # ... but outputs made with other settings, or of another input file, are refused.
  for cfg, job, changed in ((SPECTRAL.replace(refine_prior=1e-3), pipeline.Job(lr_path),
                             '--refine_prior'),
                            (SPECTRAL, pipeline.Job(str(tmp_path / 'sub' / 'in.jpg')), '--image')):
    with pytest.raises(errors.UserError, match=f'made with other settings \\({changed}'):
      pipeline.super_resolve_files([job], cfg, str(tmp_path / 'out0'), log=lambda m: None)
  # ... as are those of another picture under the same file name.
  outputs.write_png(lr_path, synthetic_image(48)[::-1])
  with pytest.raises(errors.UserError, match='in_metrics.json: .*--image in.png: other contents'):
    pipeline.super_resolve_files([pipeline.Job(lr_path)], SPECTRAL, str(tmp_path / 'out0'),
                                 log=lambda m: None)


@pytest.mark.parametrize('content', ['null', '[1, 2]', '{"config": 3}', '{not json'])
def test_a_metrics_record_that_is_not_one_is_a_one_line_error(tmp_path, content):
  lr_path = str(tmp_path / 'in.png')
  outputs.write_png(lr_path, synthetic_image(48))
  out = tmp_path / 'out'
  pipeline.super_resolve_files([pipeline.Job(lr_path)], SPECTRAL, str(out), log=lambda m: None)
  (out / 'in_metrics.json').write_text(content)
  with pytest.raises(errors.UserError, match='in_metrics.json: cannot be read as a metrics record'):
    pipeline.super_resolve_files([pipeline.Job(lr_path)], SPECTRAL, str(out), log=lambda m: None)


def test_a_resumed_folder_run_reports_what_an_unbroken_one_does(tmp_path):
  """A folder run stopped after its first image and run again skips that
  image but reports its scores: the summary is the unbroken run's."""
  from ike_jax import report  # pylint: disable=g-import-not-at-top
  jobs = []
  for name, seed in (('a', 0), ('b', 1)):
    hr = synthetic_image(96, seed=seed)
    lr_path, hr_path = str(tmp_path / f'{name}.png'), str(tmp_path / f'{name}_hr.png')
    outputs.write_png(hr_path, hr)
    outputs.write_png(lr_path, hr[::2, ::2])
    jobs.append(pipeline.Job(lr_path, hr_path))
  quiet = lambda m: None
  whole = pipeline.super_resolve_files(jobs, SPECTRAL, str(tmp_path / 'whole'), log=quiet)
  pipeline.super_resolve_files(jobs[:1], SPECTRAL, str(tmp_path / 'cut'), log=quiet)
  resumed = pipeline.super_resolve_files(jobs, SPECTRAL, str(tmp_path / 'cut'), log=quiet)
  assert [r['status'] for r in resumed] == ['skipped', 'ok']
  table = {d: report.write_summary(str(tmp_path / d), r) for d, r in (('whole', whole),
                                                                       ('cut', resumed))}
  assert table['whole'].splitlines()[-1] == table['cut'].splitlines()[-1]  # the mean gain
  summary = json.loads((tmp_path / 'cut' / 'summary.json').read_text())
  assert summary['ok'] == 1 and summary['skipped'] == 1
  assert summary['mean_psnr_y_gain'] == pytest.approx(
      json.loads((tmp_path / 'whole' / 'summary.json').read_text())['mean_psnr_y_gain'])


def test_bad_settings_and_inputs_are_one_line_user_errors(tmp_path):
  with pytest.raises(errors.UserError, match='trains nothing'):
    estimate.check(SPECTRAL.replace(population=3))
  with pytest.raises(errors.UserError, match='no inverse'):
    estimate.check(SPECTRAL.replace(refine=False))
  small = str(tmp_path / 'small.png')
  outputs.write_png(small, synthetic_image(16))
  with pytest.raises(errors.InputError, match='needs at least 32x32'):
    pipeline.super_resolve_files([pipeline.Job(small)], SPECTRAL, str(tmp_path / 'o'),
                                 log=lambda m: None)


def test_the_fits_settings_are_flags_and_checked():
  cfg = presets.config_from_flagfile(presets.preset_path('best_x2'),
                                     ['--spectral_variance_scale=0.9', '--spectral_phases=2'])
  assert cfg.estimate.spectral == config.SpectralConfig(spectral_variance_scale=0.9,
                                                        spectral_phases=2,
                                                        spectral_whittle_cap=0.85)
  assert 'estimate' not in repr(cfg.train)  # not part of the train step's jit key
  with pytest.raises(errors.UserError, match='spectral_band_lo'):
    estimate.check(cfg.replace(spectral_band_lo=0.4, spectral_band_hi=0.3))
  with pytest.raises(errors.UserError, match='must be positive'):
    estimate.check(cfg.replace(spectral_phases=0))
  with pytest.raises(errors.UserError, match='spectral_whittle_cap'):
    estimate.check(cfg.replace(spectral_whittle_cap=-1.0))


@pytest.mark.parametrize('scale,cov', [
    (2, [[2.5, 0.8], [0.8, 1.5]]),
    (4, [[9.0, -3.0], [-3.0, 6.0]]),
])
def test_the_likeliest_gaussian_is_the_blur_of_a_scale_invariant_scene(scale, cov):
  # Started 1.5 times too wide or too narrow, the spectral likelihood's Gaussian
  # lands near the blur of the model's own scene.
  cov = np.asarray(cov)
  hr = scale_invariant_image(256 * scale, seed=scale)
  lr = np.asarray(kernel.degrade(hr, np.asarray(kernel.gaussian_kernel(cov, 31, scale)), scale))
  y2 = whittle.power(lr[:256, :256] / 127.5 - 1.0)
  for start in (1.5 * cov, cov / 1.5):
    fit = np.asarray(whittle.fit_gaussian(y2, start, scale))
    assert np.allclose(fit, fit.T, atol=1e-5) and np.all(np.linalg.eigvalsh(fit) > 0)
    assert np.linalg.norm(fit - cov) / np.linalg.norm(cov) < 0.2, (start, fit)


def test_the_whittle_cap_brings_back_a_fit_that_runs_wide():
  """Where the spectral fit reads a blur too wide (here made twice as wide by its
  calibration factor), the likelihood's Gaussian under the cap takes its place,
  near the true blur; the cap never widens a fit."""
  cov = np.array([[2.5, 0.8], [0.8, 1.5]])
  hr = scale_invariant_image(512, seed=5)
  lr = np.asarray(kernel.degrade(hr, np.asarray(kernel.gaussian_kernel(cov, 31, 2)), 2))
  lr = np.repeat(np.clip(np.round(lr), 0, 255).astype(np.uint8)[..., None], 3, -1)
  wide = SPECTRAL.replace(spectral_variance_scale=2.0)
  est = lambda c: np.asarray(spectral.estimate(lr, c)['covariance'])
  free, capped = est(wide), est(wide.replace(spectral_whittle_cap=1.0))
  assert np.trace(free) > 1.6 * np.trace(cov)
  assert np.linalg.norm(capped - cov) / np.linalg.norm(cov) < 0.25, capped
  narrow = SPECTRAL.replace(spectral_variance_scale=0.5)
  np.testing.assert_array_equal(est(narrow.replace(spectral_whittle_cap=1.0)), est(narrow))
