"""The Fourier-domain SR solver, the non-parametric kernel, the noise level, the blind choice."""

import dataclasses
import os

import chex
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from scipy import ndimage

from ike_jax import edge_fit
from ike_jax import kernel as kernel_lib
from ike_jax import noise
from ike_jax import presets
from ike_jax import solve
from ike_jax.estimators import blind as blind_estimator
from ike_jax.estimators import blind_rule


def _shapes(side, seed=0, n=40):
  """A piecewise-constant test scene: random rectangles and discs on grey, in [-1, 1]."""
  rng = np.random.default_rng(seed)
  img = np.zeros((side, side))
  rows, cols = np.indices((side, side))
  for _ in range(n):
    r, c = rng.integers(0, side, 2)
    a, b = rng.integers(3, side // 4, 2)
    value = rng.uniform(-0.9, 0.9)
    if rng.random() < 0.5:
      img[r:r + a, c:c + b] = value
    else:
      img[(rows - r) ** 2 + (cols - c) ** 2 <= a * a] = value
  return img


def _periodic_correlate(x, k, origin):
  out = np.zeros_like(x)
  for a in range(k.shape[0]):
    for b in range(k.shape[1]):
      out += k[a, b] * np.roll(x, (-(a - origin[0]), -(b - origin[1])), axis=(0, 1))
  return out


@pytest.mark.parametrize('origin', [(2, 2), (1, 3)])
def test_transfer_is_degrade_correlation_on_a_periodic_grid(origin):
  rng = np.random.default_rng(0)
  x, k = rng.normal(size=(12, 16)), rng.random((5, 5))
  p = np.asarray(solve.transfer(k, x.shape, origin))
  got = np.real(np.fft.ifft2(np.fft.fft2(x) * p))
  np.testing.assert_allclose(got, _periodic_correlate(x, k, origin), atol=1e-5)


@pytest.mark.parametrize('s', [2, 4])
def test_closed_form_solves_the_normal_equations(s):
  """The Sherman-Morrison solve equals a dense solve of (A^T A + Psi) x = A^T y + b."""
  rng = np.random.default_rng(1)
  hh = ww = 4 * s
  k = rng.random((5, 5))
  k /= k.sum()
  n = hh * ww
  eye = np.eye(n).reshape(n, hh, ww)
  blur = np.stack([_periodic_correlate(e, k, (2, 2)) for e in eye]).reshape(n, n).T
  sub = np.zeros((n // s ** 2, n))
  for i, (r, c) in enumerate((r, c) for r in range(0, hh, s) for c in range(0, ww, s)):
    sub[i, r * ww + c] = 1.0
  grad_r = np.stack([(np.roll(e, -1, 0) - e).ravel() for e in eye]).T
  grad_c = np.stack([(np.roll(e, -1, 1) - e).ravel() for e in eye]).T
  mu, lam = 0.05, 0.3
  a = sub @ blur
  y, x0 = rng.normal(size=n // s ** 2), rng.normal(size=n)
  dense = np.linalg.solve(a.T @ a + mu * np.eye(n) + lam * (grad_r.T @ grad_r + grad_c.T @ grad_c),
                          a.T @ y + mu * x0)
  psi = mu + lam * np.asarray(solve.gradient_transfer((hh, ww)))
  x_hat = solve.solve_normal(np.fft.fft2(y.reshape(hh // s, ww // s)),
                             solve.transfer(k, (hh, ww), (2, 2)), psi,
                             mu * np.fft.fft2(x0.reshape(hh, ww)), s)
  np.testing.assert_allclose(np.real(np.fft.ifft2(x_hat)).ravel(), dense, atol=2e-4)


def test_solve_fits_the_lr_image_it_was_given():
  """With a weak prior the SR image, blurred and subsampled, gives back the LR."""
  rng = np.random.default_rng(2)
  x = np.stack([_shapes(64, seed=c) for c in range(3)], -1).astype(np.float32)
  k = np.asarray(kernel_lib.gaussian_kernel(np.diag([1.5, 0.8]), 11, 2))
  lr = np.asarray(kernel_lib.degrade(x, k, 2))
  start = np.repeat(np.repeat(lr, 2, 0), 2, 1) + 0.01 * rng.normal(size=x.shape)
  sr = np.asarray(solve.solve(lr, k, start, scale=2, anchor=1e-5))
  chex.assert_shape(sr, x.shape)
  back = np.asarray(kernel_lib.degrade(sr, k, 2))
  assert np.abs(back - lr)[4:-4, 4:-4].max() < 0.02


def _arc(side, radius):
  """A camera-shake-like kernel: a three-quarter arc, softened, not symmetric about its centre."""
  k = np.zeros((side, side))
  c = side // 2 - radius / 2
  for t in np.linspace(0, 0.75 * np.pi, 200):
    k[int(round(c + radius * np.sin(t) / 2)), int(round(c + radius * (1 - np.cos(t)) / 2))] += 1
  k = ndimage.gaussian_filter(k, 0.5)
  return k / k.sum()


def test_unknown_borders_restore_an_asymmetric_blur_better_than_mirrored_ones():
  """A crop of a larger photo blurred by a long arc: its LR borders hold blur from
  outside the crop, which the mirrored margin contradicts. With no data asked of
  the margin the SR image is much nearer the truth (the mirrored margin's misfit
  streaks the whole image), and still gives the LR image back."""
  scale, pad = 2, 32
  photo = np.asarray(Image.open(os.path.join(presets.ROOT, 'samples', 'astronaut_hr.png')))
  scene = (photo[..., :3].astype(np.float32) / 127.5 - 1.0)
  k = _arc(21, 16)
  lr = np.asarray(kernel_lib.degrade(scene, k, scale))
  lr = (np.round((lr + 1) * 127.5) / 127.5 - 1)[pad // scale:-pad // scale, pad // scale:-pad // scale]
  truth = scene[pad:-pad, pad:-pad]
  start = np.repeat(np.repeat(lr, scale, 0), scale, 1)
  rmse = {}
  for boundary in ('mirror', 'unknown'):
    sr = np.asarray(solve.solve(lr, k, start, scale=scale, anchor=1e-4, tv=1e-4,
                                tv_iterations=8, boundary=boundary))
    chex.assert_shape(sr, truth.shape)
    rmse[boundary] = np.sqrt(np.mean((sr - truth) ** 2))
  # measured 0.116 and 0.074 (the start, pixel repetition, 0.221)
  assert rmse['unknown'] < 0.75 * rmse['mirror'], rmse
  back = np.asarray(kernel_lib.degrade(sr, k, scale))
  assert np.abs(back - lr)[8:-8, 8:-8].mean() < 0.01


def test_unknown_borders_ignore_what_valid_marks_as_no_data():
  """LR pixels marked invalid are not data: the SR image does not depend on them."""
  rng = np.random.default_rng(3)
  x = np.stack([_shapes(48, seed=c) for c in range(3)], -1).astype(np.float32)
  k = _arc(9, 6)
  lr = np.asarray(kernel_lib.degrade(x, k, 2))
  valid = np.ones(lr.shape[:2], np.float32)
  valid[:, :6] = 0.0
  spoiled = lr.copy()
  spoiled[:, :6] = rng.uniform(-1, 1, spoiled[:, :6].shape)
  start = np.repeat(np.repeat(lr, 2, 0), 2, 1)
  solve_with = lambda y: np.asarray(solve.solve(y, k, start, scale=2, anchor=1e-4, tv=1e-4,
                                                tv_iterations=8, boundary='unknown',
                                                valid=valid))
  np.testing.assert_allclose(solve_with(spoiled), solve_with(lr), atol=1e-6)


def test_project_simplex():
  v = np.array([0.5, -0.2, 0.9, 0.1], np.float32)
  p = np.asarray(edge_fit.project_simplex(v))
  np.testing.assert_allclose(p, [0.3, 0.0, 0.7, 0.0], atol=1e-6)  # v - 0.2, clipped at 0
  np.testing.assert_allclose(np.asarray(edge_fit.project_simplex(p)), p, atol=1e-6)


def _motion(size, length, angle):
  k = np.zeros((size, size))
  c = (size - 1) / 2
  for t in np.linspace(-length / 2, length / 2, 200):
    k[int(round(c + t * np.sin(angle))), int(round(c + t * np.cos(angle)))] += 1
  return k / k.sum()


def _disk(size, radius):
  rows, cols = np.indices((size, size)) - (size - 1) / 2
  k = (rows ** 2 + cols ** 2 <= radius ** 2).astype(float)
  return k / k.sum()


# Kernels at the LR pitch: an anisotropic Gaussian, a motion trajectory, a disk.
KERNELS = {
    'gaussian': lambda: np.asarray(kernel_lib.gaussian_kernel(np.array([[2.5, 1.0], [1.0, 1.2]]),
                                                              13, 1), np.float64),
    'motion': lambda: _motion(13, 8, 0.6),
    'disk': lambda: _disk(13, 2.5),
}


def test_the_k_step_finds_the_kernel_of_a_known_sharp_image():
  """Given the sharp image, the k-step (real FFTs) fits the blur that made the
  blurred one: an asymmetric kernel (an L-shaped stroke, heavier at one end),
  neither flipped nor shifted."""
  k = np.zeros((9, 9))
  for tap, weight in zip([(4, 4), (4, 5), (4, 6), (5, 6), (6, 6), (7, 6)], [6, 5, 4, 3, 2, 1]):
    k[tap] = weight
  k /= k.sum()
  x = _shapes(96, seed=5, n=50)
  y = _periodic_correlate(x, k, (4, 4))
  flat = np.full(k.shape, 1.0 / k.size)
  found = np.asarray(edge_fit.kernel_step(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                                          jnp.asarray(flat, jnp.float32), 1, 0.0, iterations=400,
                                          border=6), np.float64)
  chex.assert_shape(found, k.shape)
  sq = lambda a: float(np.sum((a - k) ** 2))
  assert sq(found) < 0.01 * sq(flat), (sq(found), sq(flat))
  assert sq(found) < 0.01 * sq(found[::-1, ::-1])


@pytest.mark.parametrize('name', list(KERNELS))
def test_blind_recovers_a_known_kernel(name):
  """Deblurring at the LR pitch finds the blur of a synthetic scene within 0.03
  (kernel_error, sum of squares) and at least 3x closer than a Gaussian guess."""
  k = KERNELS[name]()
  x = _shapes(112, seed=3, n=60)
  y = _periodic_correlate(x, k, (6, 6))
  y = np.round((y + 1) * 127.5) / 127.5 - 1  # 8-bit
  k0 = np.asarray(kernel_lib.gaussian_kernel(np.eye(2) * 1.0, 13, 1), np.float64)
  found = edge_fit.estimate(y, k0, 1, levels=2, resize=lambda im, f: im[::2, ::2])
  err, start_err = kernel_lib.kernel_error(found, k), kernel_lib.kernel_error(k0, k)
  assert err < 0.03 and err < start_err / 3, (err, start_err)


def test_a_delta_kernel_predicts_the_sharp_photos_autocorrelation():
  """No blur: the predicted gradient autocorrelation is the sharp prior itself."""
  delta = np.zeros((13, 13))
  delta[6, 6] = 1.0
  got = np.asarray(edge_fit.kernel_autocorrelation(delta, 6))
  chex.assert_shape(got, (13, 13))
  want = np.zeros((13, 13))
  want[3:10, 3:10] = edge_fit.SHARP_AUTOCORR
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_gradient_autocorrelation_is_normalised_and_symmetric():
  rng = np.random.default_rng(4)
  r = edge_fit.gradient_autocorrelation(rng.normal(size=(40, 48)), 5)
  chex.assert_shape(r, (11, 11))
  assert r[5, 5] == pytest.approx(1.0)
  np.testing.assert_allclose(r, r[::-1, ::-1], atol=1e-6)


def _texture_estimate_errors(name, **variants):
  """{variant: kernel error} of the 2-level estimate of an edgeless 8-bit
  texture (filtered noise) blurred by KERNELS[name], one `edge_fit.estimate`
  keyword per variant ({name: (keyword, value)})."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  k = KERNELS[name]()
  x = ndimage.gaussian_filter(np.random.default_rng(5).normal(size=(112, 112)), 0.8, mode='wrap')
  y = _periodic_correlate(0.5 * x / np.abs(x).max(), k, (6, 6))
  y = np.round((y + 1) * 127.5) / 127.5 - 1  # 8-bit
  k0 = np.asarray(kernel_lib.gaussian_kernel(np.eye(2) * 1.0, 13, 1), np.float64)
  return {v: kernel_lib.kernel_error(
      edge_fit.estimate(y, k0, 1, levels=2, resize=lambda im, f: im[::2, ::2], **{kw: value}), k)
          for v, (kw, value) in variants.items()}


@pytest.mark.parametrize('name', list(KERNELS))
def test_the_autocorrelation_fit_keeps_a_texture_from_collapsing_to_a_delta(name):
  """A texture with no salient edges: the edge fit alone collapses to a near
  delta; fitting the gradient autocorrelation too at least halves the error."""
  err = _texture_estimate_errors(name, edges=('autocorr', 0.0), fit=('autocorr', 0.03))
  assert err['fit'] < err['edges'] / 2, err


@pytest.mark.parametrize('name', list(KERNELS))
def test_the_kernel_l2_weight_keeps_a_texture_from_collapsing_to_a_delta(name):
  """The same texture: the pyramid's L2 weight on the kernel (`gamma`, per
  pixel) keeps the estimate off the delta the edge fit alone falls to."""
  err = _texture_estimate_errors(name, edges=('gamma', 0.0), weighted=('gamma', 2e-3))
  assert err['weighted'] < err['edges'] / 10, err  # measured: 0.81-0.86 -> 0.008-0.024


def _textured_scene(k):
  """An 8-bit 112x112 scene of edges (60 shapes) and fine texture, blurred by k."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  texture = ndimage.gaussian_filter(np.random.default_rng(6).normal(size=(112, 112)), 0.8,
                                    mode='wrap')
  x = 0.7 * _shapes(112, seed=3, n=60) + 0.3 * texture / np.abs(texture).max()
  y = _periodic_correlate(x, k, (6, 6))
  return np.round((y + 1) * 127.5) / 127.5 - 1


@pytest.mark.parametrize('name', ['motion', 'disk'])
def test_the_tv_latent_keeps_a_true_kernel_where_the_l0_latent_moves_it(name):
  """Started at the true kernel of a scene with edges and texture, k-steps on the
  TV latent image (`polish`) stay near it; the L0 alternation drifts further."""
  k = KERNELS[name]()
  y = _textured_scene(k)
  kept = np.asarray(edge_fit.polish(y, k, 1e-3, rounds=3), np.float64)
  chex.assert_shape(kept, k.shape)
  assert kept.min() >= 0 and abs(kept.sum() - 1) < 1e-5
  lams = np.geomspace(1.6e-2, 4e-3, 12).astype(np.float32)
  moved = np.asarray(edge_fit.estimate_level(y.astype(np.float32), k.astype(np.float32), lams, 0.0,
                                             scale=1), np.float64)
  err_kept, err_moved = kernel_lib.kernel_error(kept, k), kernel_lib.kernel_error(moved, k)
  assert err_kept < 0.01 and err_kept < err_moved / 3, (err_kept, err_moved)  # measured: 0.003, 0.2


@pytest.mark.parametrize('name', ['motion', 'disk'])
def test_settling_at_a_low_threshold_brings_the_estimate_closer(name):
  """On a scene with edges and texture, the settling alternations after the
  pyramid (`settle_rounds` at the low threshold) bring the estimate closer to
  the true blur than the pyramid alone leaves it."""
  k = KERNELS[name]()
  y = _textured_scene(k)
  k0 = np.asarray(kernel_lib.gaussian_kernel(np.eye(2) * 1.0, 13, 1), np.float64)
  found = {rounds: edge_fit.estimate(y, k0, 1, levels=2, rounds_per_level=12, settle_rounds=rounds,
                                     resize=lambda im, f: im[::2, ::2]) for rounds in (0, 24)}
  chex.assert_shape(found[24], k.shape)
  assert found[24].min() >= 0 and abs(found[24].sum() - 1) < 1e-9
  pyramid, settled = (kernel_lib.kernel_error(found[r], k) for r in (0, 24))
  # measured: motion 0.0106 -> 0.0056, disk 0.0187 -> 0.0018
  assert settled < 0.01 and settled < 0.7 * pyramid, (settled, pyramid)


def test_settling_in_runs_is_settling_at_once():
  """The settling rounds run in runs of the pyramid's length (to reuse its
  compiled program) give the kernel one scan over all of them gives, to the bit."""
  k = KERNELS['motion']()
  y = _textured_scene(k)[:64, :64]
  k0 = np.asarray(kernel_lib.gaussian_kernel(np.eye(2) * 1.0, 13, 1), np.float64)
  at_once = edge_fit.settle(y, k0, 4, 5e-4, scale=1, rounds=4, run=3)   # 4 % 3: one scan of 4
  in_runs = edge_fit.settle(y, k0, 4, 5e-4, scale=1, rounds=4, run=2)   # two scans of 2
  chex.assert_shape(in_runs, k0.shape)
  assert np.abs(in_runs - k0).max() > 1e-3  # the rounds moved the kernel
  np.testing.assert_array_equal(in_runs, at_once)


def test_shrink_makes_a_kernel_milder_not_a_delta():
  """From the true HR kernel of a synthetic scene (motion, x2), the SR-pitch
  alternation returns a unit-sum, non-negative kernel centred where the LR grid
  wants it, narrower than its start but not collapsed to a delta."""
  size, s = 15, 2
  centre = kernel_lib.kernel_center(size, s)
  k = edge_fit.centre_kernel(_motion(size, 9, 0.6), centre)
  x = _shapes(192, seed=3, n=60).astype(np.float32)
  y = np.asarray(kernel_lib.degrade(x, k.astype(np.float32), s), np.float64)
  y = np.round((y + 1) * 127.5) / 127.5 - 1  # 8-bit
  milder = edge_fit.shrink(y, k, s, 1e-3)
  chex.assert_shape(milder, (size, size))
  assert milder.min() >= 0 and abs(milder.sum() - 1) < 1e-6
  np.testing.assert_allclose(kernel_lib.center_of_mass(milder), [centre, centre], atol=0.5)
  widest = lambda kk: np.linalg.eigvalsh(blind_estimator.second_moments(kk)).max()
  assert 0.3 * widest(k) < widest(milder) < 0.9 * widest(k), (widest(milder), widest(k))


def test_lr_kernel_to_hr_keeps_a_unit_sum_and_centre():
  k = edge_fit.lr_to_hr_kernel(KERNELS['motion'](), 2, 31, 1 / 12)
  chex.assert_shape(k, (31, 31))
  assert abs(k.sum() - 1) < 1e-9
  np.testing.assert_allclose(kernel_lib.center_of_mass(k), [15, 15], atol=0.6)


@pytest.mark.parametrize('sigma', [2.0, 5.0])
def test_noise_level_within_20_percent(sigma):
  rng = np.random.default_rng(4)
  clean = (_shapes(128, seed=5) + 1) * 100 + 20
  img = np.stack([clean + rng.normal(0, sigma, clean.shape)] * 3, -1)
  assert abs(noise.sigma(img) - sigma) < 0.2 * sigma


def test_blockiness_sees_a_jpeg_round_trip():
  """A photo's steps are as large across 8x8 block borders as elsewhere (about
  1); stored as JPEG at quality 75 they jump there."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  img = ndimage.gaussian_filter(skdata.astronaut()[64:192, 96:224].astype(float), (1.0, 1.0, 0))
  img = np.clip(np.round(img), 0, 255).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(img).save(buf, format='JPEG', quality=70)
  stored = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert('RGB'))
  assert abs(noise.blockiness(img) - 1.0) < 0.1
  assert noise.blockiness(stored) > 1.15


def test_the_sr_prior_follows_the_noise_and_the_jpeg_blocks():
  """The SR prior follows the rule: on a clean image the blind kernel's prior
  and the preset's for the Gaussian, on a noisy or blocky one the blind
  kernel's times its factor and the Gaussian's noisy prior; and the photo's
  block grid is found on the crop the estimate measures (its corner on the
  grid)."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  cfg = config_lib.Config().replace(scale=2, refine_prior=1e-4, blind_clean_max=2.0,
                                    blind_prior=3e-4, blind_noisy_factor=10.0,
                                    blind_noisy_prior=1e-3)
  c = cfg.estimate.blind
  clean, noisy = {'noise': 1.0, 'blockiness': 1.0}, {'noise': 3.0, 'blockiness': 1.0}
  blocky = {'noise': 1.0, 'blockiness': c.blind_blocky_min}
  assert blind_rule.sr_prior(cfg, 'blind', clean) == 3e-4
  assert blind_rule.sr_prior(cfg, 'gaussian', clean) == 1e-4
  for f in (noisy, blocky):
    assert blind_rule.sr_prior(cfg, 'blind', f) == pytest.approx(3e-3)
    assert blind_rule.sr_prior(cfg, 'gaussian', f) == 1e-3
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  smooth = ndimage.gaussian_filter(skdata.astronaut()[:420, :420].astype(float), (1.0, 1.0, 0))
  buf = io.BytesIO()
  Image.fromarray(np.clip(np.round(smooth), 0, 255).astype(np.uint8)).save(buf, format='JPEG',
                                                                           quality=70)
  stored = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert('RGB'))
  crop = blind_estimator._block_aligned_crop(stored, 128)  # pylint: disable=protected-access
  chex.assert_shape(crop, (128, 128, 3))
  assert noise.blockiness(crop) > 1.12
  assert noise.blockiness(stored[146:274, 146:274]) < noise.blockiness(crop) - 0.05  # off the grid


@pytest.mark.parametrize('second_wide_min,second,companion,evidence_min', [
    (np.inf, 'autocorr', 0.0, np.inf), (20.0, 'autocorr', 0.25, 0.5),
    (20.0, 'marginal', 0.0, np.inf)])
def test_choice_is_bicubic_for_an_unblurred_input(second_wide_min, second, companion,
                                                  evidence_min):
  """A scene only subsampled (no blur) gets the bicubic-like output, with its
  record (and no companion kernel); with the second chance on as well, by
  either second estimate, and with the last chance (the spectrum sees no blur)."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  hr = skdata.astronaut()[100:356, 100:356]
  lr = hr[::2, ::2]
  est = blind_estimator.estimate(lr, config_lib.Config().replace(
      scale=2, blind_second_wide_min=second_wide_min, blind_second_estimator=second,
      blind_companion=companion, blind_evidence_min=evidence_min))
  assert est['choice'] == 'bicubic' and not est['refine'] and 'companion_kernel' not in est
  assert 0.0 <= est['confidence'] <= 1.0
  assert set(est['candidates']) == {'blind', 'gaussian', 'second', 'bicubic'}


def test_an_estimate_sets_the_sr_stage_it_asks_for():
  """The choice's record drives post-processing: bicubic turns refinement off,
  the blind kernel brings its prior, the Gaussian its solver, an estimate without
  requests changes nothing."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from ike_jax import postprocess  # pylint: disable=g-import-not-at-top
  post = config_lib.Config().replace(refine=True, refine_prior=1e-4).post
  assert not postprocess.for_estimate(post, {'refine': False}).refine
  assert postprocess.for_estimate(post, {'refine': True, 'sr_prior': 3e-3}).refine_prior == 3e-3
  assert postprocess.for_estimate(post, {'kernel': None}) == post
  gaussian = postprocess.for_estimate(post.__class__(refine_solver='gradient'),
                                      {'refine': True, 'sr_solver': 'fourier'})
  assert gaussian.refine_solver == 'fourier'


def test_the_companion_blend_is_the_weighted_mean_of_the_two_sr_images(monkeypatch):
  """`postprocess.with_companion`: no companion, the SR image as it was; a
  companion equal to the kernel, the same image; otherwise the rounded
  weighted mean of the two kernels' SR images (weight 1: the companion's),
  band by band (bands of 24 rows here, the last one short)."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from ike_jax import postprocess  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  lr = skdata.astronaut()[200:232, 150:182]
  post = config_lib.Config().replace(refine=True, refine_solver='fourier', refine_prior=1e-3).post
  size, origin = blind_estimator.SIZE, (blind_estimator.SIZE // 2,) * 2
  narrow = np.asarray(kernel_lib.gaussian_kernel(np.eye(2) * 1.0, size, 2), np.float32)
  wide = np.asarray(kernel_lib.gaussian_kernel(np.diag([6.0, 2.0]), size, 2), np.float32)
  monkeypatch.setattr(postprocess, 'BLEND_ROWS', 24)
  sr_of = lambda k: postprocess.final(None, lr, jnp.asarray(np.stack([k] * 3)), origin, post, 2)
  sr = sr_of(narrow)
  est = {'origin': origin}
  assert postprocess.with_companion(sr, lr, est, post, 2) is sr
  same = postprocess.with_companion(sr, lr, dict(est, companion_kernel=np.stack([narrow] * 3),
                                                 companion_weight=0.5), post, 2)
  assert np.abs(same.astype(int) - sr).max() <= 1  # float32 re-normalisation: a grey level
  other = sr_of(wide)
  assert np.abs(other.astype(int) - sr).max() > 10  # the two deblurrings differ
  for w in (0.25, 1.0):
    got = postprocess.with_companion(sr, lr, dict(est, companion_kernel=np.stack([wide] * 3),
                                                  companion_weight=w), post, 2)
    chex.assert_shape(got, sr.shape)
    want = (1 - w) * sr.astype(np.float64) + w * other
    assert got.dtype == np.uint8 and np.abs(got - want).max() <= 1.0  # rounding, re-normalising


@pytest.mark.parametrize('weight', [0.0, 0.25])
def test_a_chosen_blind_kernel_brings_its_companion_only_when_asked(weight):
  """A photo blurred by a motion streak gets the blind kernel; with
  --blind_companion it also carries the marginal kernel (unit sum, per
  colour) and the weight, and records the weight; without, neither."""
  from benchmarks import degradations  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  k = np.zeros((31, 31))
  k[15, 10:22], k[14, 12:16] = 1.0, 0.5
  hr = skdata.astronaut()[100:356, 100:356]
  lr = degradations.to_uint8(degradations.blur_subsample(hr, k / k.sum(), 2))
  est = blind_estimator.estimate(lr, config_lib.Config().replace(scale=2, blind_companion=weight))
  assert est['choice'] == 'blind'
  if weight == 0:
    assert 'companion_kernel' not in est and 'companion_weight' not in est
    return
  chex.assert_shape(est['companion_kernel'], (3, blind_estimator.SIZE, blind_estimator.SIZE))
  np.testing.assert_allclose(est['companion_kernel'].sum(axis=(1, 2)), 1.0, atol=1e-6)
  assert est['companion_weight'] == weight


@pytest.mark.parametrize('shape,waive', [((blind_estimator.MIN_SIDE,) * 2, 0.0), ((130, 48), 0.0),
                                         ((blind_estimator.MIN_SIDE,) * 2, 0.4)])
def test_blind_choice_on_the_smallest_and_tall_images(shape, waive):
  """Down to MIN_SIDE, and split across the longer side, the choice returns a
  finite unit-sum kernel (no empty pyramid level); with the spectral
  likelihood's waiver on, a finite gap."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  lr = skdata.astronaut()[200:200 + shape[0], 150:150 + shape[1]]
  cfg = config_lib.Config().replace(scale=2)
  cfg = dataclasses.replace(cfg, estimate=dataclasses.replace(
      cfg.estimate, blind=dataclasses.replace(cfg.estimate.blind, blind_whittle_waive=waive)))
  est = blind_estimator.estimate(lr, cfg)
  assert np.isfinite(est['kernel']).all() and abs(est['kernel'].sum() - 1) < 1e-6
  assert est['choice'] in ('blind', 'gaussian', 'bicubic')
  gap = est['candidates']['blind']['spectral_likelihood_gap']
  assert (gap is None) == (waive == 0.0) and (gap is None or np.isfinite(gap))


def _one_edge(side=64):
  """A vertical edge across the middle of a flat image: each half is flat."""
  img = np.full((side, side, 3), 80, np.uint8)
  img[:, side // 2:] = 170
  return img


@pytest.mark.parametrize('scale', [2, 4])
@pytest.mark.parametrize('name,lr', [
    ('flat', np.full((64, 64, 3), 128, np.uint8)), ('black', np.zeros((48, 60, 3), np.uint8)),
    ('one edge', _one_edge())])
def test_an_image_without_detail_stays_at_bicubic_and_says_why(scale, name, lr):
  """A flat colour, or one edge across an otherwise flat image (each half
  flat), shows no blur: bicubic, sure of it, the reason recorded, a finite
  unit-sum kernel (the estimate would divide by an image without gradients)."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  assert blind_estimator.detail(lr) < blind_estimator.DETAIL_MIN, name
  est = blind_estimator.estimate(lr, config_lib.Config().replace(scale=scale))
  assert est['choice'] == 'bicubic' and not est['refine'] and est['confidence'] == 1.0
  assert 'detail' in est['reason']
  assert np.isfinite(est['kernel']).all() and abs(est['kernel'].sum() - 1) < 1e-9
  assert set(est['candidates']) == {'blind', 'gaussian', 'second', 'bicubic'}


def test_an_estimate_with_no_edges_to_fit_gives_bicubic(monkeypatch):
  """Where a kernel estimate comes back not finite (its latent image kept no
  gradient), the choice is bicubic with that reason, not an error."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  lr = skdata.astronaut()[200:248, 150:198]
  assert blind_estimator.detail(lr) > blind_estimator.DETAIL_MIN
  from ike_jax import marginal  # pylint: disable=g-import-not-at-top
  for module in (edge_fit, marginal):
    monkeypatch.setattr(module, 'estimate', lambda y, k0, *a, **kw: np.full(k0.shape, np.nan))
  est = blind_estimator.estimate(lr, config_lib.Config().replace(scale=2))
  assert est['choice'] == 'bicubic' and est['reason'].startswith('no edges')
  assert np.isfinite(est['kernel']).all()


@pytest.mark.parametrize('path', ['blind', 'second', 'evidence', 'bicubic'])
def test_the_estimate_follows_each_path_of_the_choice_to_its_record(monkeypatch, path):
  """With the measurements stubbed (scores chosen for each path of `blind_x2`'s
  rule), the record holds the kernel, reason, companion and SR settings of the
  path taken: the rule's blind kernel (blended with the marginal kernel), the
  second estimate's, the Gaussian by the evidence of a blur, or bicubic."""
  cfg = presets.config_from_flagfile(presets.preset_path('blind_x2'))
  unit = 4 / 12  # the LR pixel's own variance at x2, HR px^2
  k_gauss = blind_estimator.gaussian(np.eye(2) * 3 * unit, 2)
  k_blind = blind_estimator.gaussian(np.diag([40 * unit, 2 * unit]), 2)
  k_second = blind_estimator.gaussian(np.eye(2) * 30 * unit, 2)
  k_marginal = blind_estimator.gaussian(np.eye(2) * 20 * unit, 2)
  f = {'agreement': 0.1, 'distinct': 1.0, 'cross': 0.0, 'whittle_gap': 0.1,
       'gauss_variance': 3 * unit, 'noise': 1.0, 'covariance': (np.eye(2) * 3 * unit).tolist(),
       'blind_variance': (40 if path == 'blind' else 2) * unit}  # else too narrow: bicubic
  second = k_second if path == 'second' else None
  monkeypatch.setattr(blind_estimator, 'features',
                      lambda crop, cfg: (dict(f), k_blind, k_gauss, second))
  monkeypatch.setattr(blind_estimator, 'ringing',
                      lambda crop, k, cfg, tv: 1.0 if k is k_gauss else 2.0)
  monkeypatch.setattr(blind_estimator, 'second_features', lambda crop, k, f, cfg: {
      'second_agreement': None, 'second_variance': blind_estimator.widest_variance(k),
      'second_ringing': 2.0, 'second_gap': 0.1})
  monkeypatch.setattr(blind_estimator, 'evidence',
                      lambda crop, kb, kg, s: 1.0 if path == 'evidence' else 0.1)
  monkeypatch.setattr(blind_estimator, 'marginal_kernel', lambda crop, cov, s: k_marginal)
  lr = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  est = blind_estimator.estimate(lr, cfg)
  chosen, kernel, ending = {
      'blind': ('blind', k_blind, 'the blind kernel passes every test'),
      'second': ('blind', k_second, 'the second estimate passes its tests'),
      'evidence': ('gaussian', k_gauss, 'the spectrum asks for a blur the Gaussian sees'),
      'bicubic': ('bicubic', k_gauss, 'the fallback is bicubic (--blind_gauss_min=inf)')}[path]
  assert est['choice'] == chosen and est['reason'].endswith(ending), est['reason']
  np.testing.assert_allclose(est['kernel'], kernel / kernel.sum())
  assert ('companion_kernel' in est) == (path == 'blind')  # the first blind kernel only
  assert est['refine'] == (path != 'bicubic') and ('sr_prior' in est) == (path != 'bicubic')
  assert (est.get('sr_solver') == 'fourier') == (path == 'evidence')
  assert est['candidates']['gaussian']['blur_evidence'] == {
      'blind': None, 'second': None, 'evidence': 1.0, 'bicubic': 0.1}[path]
  assert bool(est['candidates']['second']) == (path == 'second')
  assert 0.0 <= est['confidence'] <= 1.0


def test_a_second_kernel_without_edges_leaves_the_blind_choice_alone(monkeypatch):
  """Where only the marginal-likelihood estimate (the second estimate and the
  blend's kernel) comes back not finite, a photo the blind kernel suits still
  gets it, without the blend, and the reason says so."""
  from benchmarks import degradations  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from ike_jax import marginal  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  k = np.zeros((31, 31))
  k[15, 10:22], k[14, 12:16] = 1.0, 0.5
  hr = skdata.astronaut()[100:356, 100:356]
  lr = degradations.to_uint8(degradations.blur_subsample(hr, k / k.sum(), 2))
  monkeypatch.setattr(marginal, 'estimate', lambda y, k0, *a, **kw: np.full(k0.shape, np.nan))
  est = blind_estimator.estimate(lr, config_lib.Config().replace(
      scale=2, blind_companion=0.25, blind_second_estimator='marginal', blind_second_wide_min=20.0))
  assert est['choice'] == 'blind' and 'companion_kernel' not in est
  assert est['reason'].endswith('no second kernel to blend with')


def _numeric_blind_settings():
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  c = config_lib.BlindConfig()
  values = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
  return [name for name, v in values.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)]


@pytest.mark.parametrize('name', _numeric_blind_settings())
def test_every_blind_setting_out_of_range_is_a_one_line_error(name):
  """No `--blind_*` number below 0 (or NaN) reaches the estimate, where a
  division by zero or NumPy would stop it with a traceback."""
  from ike_jax import errors  # pylint: disable=g-import-not-at-top
  from ike_jax import estimate  # pylint: disable=g-import-not-at-top
  cfg = presets.config_from_flagfile(presets.preset_path('blind_x2'))
  estimate.check(cfg)  # the preset itself passes
  bads = (-1,) if isinstance(getattr(cfg.estimate.blind, name), int) else (-1.0, float('nan'))
  for bad in bads:
    with pytest.raises(errors.UserError, match=f'--{name} must'):
      estimate.check(cfg.replace(**{name: bad}))


def _features(**changes):
  """Features of a blind kernel that passes every test on the kernels alone (and
  lies far from the Gaussian: no Gaussian-shaped blur)."""
  return {'agreement': 0.1, 'blind_variance': 40.0 * 4 / 12, 'gauss_variance': 3.0 * 4 / 12,
          'distinct': 1.0, 'cross': 0.0, 'noise': 1.0, 'ringing': 2.0, **changes}


def test_choice_keeps_the_blind_kernel_only_while_its_sr_image_does_not_ring():
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  settings = config_lib.BlindConfig()
  assert blind_rule.plausible(_features(), 2, settings)
  assert blind_rule.choose(_features(), 2, settings)[0] == 'blind'
  assert blind_rule.choose(_features(ringing=settings.blind_ringing_max * 1.5), 2,
                           settings)[0] != 'blind'
  # A kernel that fails the kernel-only tests needs no ringing measurement.
  assert blind_rule.choose(_features(agreement=5.0, ringing=None), 2, settings)[0] != 'blind'


@pytest.mark.parametrize('changes,words', [
    ({}, 'passes every test'),
    ({'agreement': 5.0, 'ringing': None}, 'its halves disagree'),
    ({'blind_variance': 1.0, 'ringing': None}, 'it is too narrow'),
    ({'ringing': 1e3}, 'its SR image rings'),
    ({'agreement': 5.0, 'blind_variance': 1.0, 'ringing': None},
     'its halves disagree, it is too narrow'),
    ({'cross': np.inf, 'ringing': None}, 'the two estimates disagree'),
    ({'gauss_variance': 0.5 * 4 / 12, 'blind_variance': 100.0 * 4 / 12, 'ringing': None},
     'the spectrum sees no blur'),
    ({'ringing': np.nan}, 'its ringing could not be measured')])
def test_the_choice_says_which_tests_the_blind_kernel_failed(changes, words):
  """The reason names the tests the blind kernel failed, in the rule's order,
  and only those; where it wins, that it passed them all."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  settings = config_lib.BlindConfig()
  choice, _, reason = blind_rule.choose(_features(**changes), 2, settings)
  assert words in reason and (choice == 'blind') == (not changes)
  named = {'its halves disagree', 'it is too narrow', 'its SR image rings',
           'the two estimates disagree', 'the spectrum sees no blur',
           'its ringing could not be measured'}
  assert {w for w in named if w in reason} == {w for w in named if w in words}


def test_choice_drops_the_blind_kernel_where_the_two_estimates_disagree():
  """The edge fit and the edge-and-autocorrelation fit must find kernels of
  about the same width; a row without the second estimate (no 'cross') passes."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  settings = config_lib.BlindConfig()
  assert blind_rule.choose(_features(cross=0.5 * settings.blind_cross_max), 2,
                           settings)[0] == 'blind'
  assert blind_rule.choose(_features(cross=2.0 * settings.blind_cross_max, ringing=None), 2,
                           settings)[0] != 'blind'
  without = {k: v for k, v in _features().items() if k != 'cross'}
  assert blind_rule.plausible(without, 2, settings)


def test_the_spectral_likelihood_waives_the_halves_test_only_within_its_limit():
  """Halves that disagree drop the blind kernel, unless the photo's power
  spectrum asks for no other blur (`whittle_gap` within the waiver); a waiver
  of 0 is off, and a row without the gap must agree."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  off = config_lib.BlindConfig()
  on = dataclasses.replace(off, blind_whittle_waive=0.2)
  split = dict(agreement=5.0 * off.blind_agree_max)
  assert blind_rule.choose(_features(**split, whittle_gap=0.1), 2, on)[0] == 'blind'
  assert blind_rule.choose(_features(**split, whittle_gap=0.3, ringing=None), 2,
                           on)[0] != 'blind'
  assert blind_rule.choose(_features(**split, whittle_gap=0.0, ringing=None), 2,
                           off)[0] != 'blind'
  assert blind_rule.choose(_features(**split, ringing=None), 2, on)[0] != 'blind'
  _, confidence, _ = blind_rule.choose(_features(**split, whittle_gap=0.1), 2, on)
  assert 0.0 < confidence <= 1.0


def test_the_second_chance_reads_its_own_spectral_gap_not_the_first_estimates():
  """The second estimate passes its limits only with its own gap within
  --blind_second_whittle_max; a gap or agreement not measured (None) passes,
  and the first estimate's gap plays no part."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  settings = dataclasses.replace(config_lib.BlindConfig(), blind_second_wide_min=10.0,
                                 blind_second_agree_max=np.inf, blind_second_whittle_max=0.4,
                                 blind_whittle_waive=0.4)
  second = dict(second_agreement=None, second_variance=40.0 * 4 / 12, second_ringing=2.0)
  f = _features(agreement=5.0, whittle_gap=0.1)
  assert blind_rule.second_chance({**f, **second, 'second_gap': 0.3}, 2, settings)
  assert not blind_rule.second_chance({**f, **second, 'second_gap': 0.5}, 2, settings)
  assert blind_rule.second_chance({**f, **second, 'second_gap': None}, 2, settings)
  # halves measured and disagreeing: refused whatever the first estimate's gap
  strict = dataclasses.replace(settings, blind_second_agree_max=0.8)
  assert not blind_rule.second_chance({**f, **second, 'second_agreement': 2.0,
                                       'second_gap': 0.1}, 2, strict)


def test_a_test_switched_off_gives_full_confidence_and_no_warning():
  """An infinite limit (flags/blind_x4.flags sets --blind_cross_max=inf) turns
  its test off: the choice is made without a numpy warning reaching the user."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  settings = dataclasses.replace(config_lib.BlindConfig(), blind_cross_max=np.inf,
                                 blind_gauss_min=np.inf)
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    choice, confidence, _ = blind_rule.choose(_features(cross=3.0), 2, settings)
  assert choice == 'blind' and 0.0 <= confidence <= 1.0
  assert blind_rule.margin(1.0, np.inf) == 1.0


@pytest.mark.parametrize('field', ['blind_wide_min', 'blind_noise_max', 'blind_gauss_min'])
def test_a_limit_of_zero_is_a_choice_not_a_crash(field):
  """A limit set to 0 (allowed: >= 0) decides instead of dividing by it:
  every score is past it, so its own margin is 1."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  settings = dataclasses.replace(config_lib.BlindConfig(), **{field: 0.0})
  assert blind_rule.margin(3.0, 0.0) == 1.0
  for f in (_features(), _features(agreement=5.0, ringing=None, noise=3.0, gauss_ringing=1.0)):
    choice, confidence, _ = blind_rule.choose(f, 2, settings)
    assert choice in ('blind', 'gaussian', 'bicubic') and 0.0 <= confidence <= 1.0


def test_choice_keeps_the_gaussian_only_while_its_sr_image_does_not_ring():
  """The Gaussian's ringing limit is per unit of its standard deviation: a wider
  blur may raise the gradient energy more."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  # The Gaussian as fallback on (the x2 preset has it off: blind_gauss_min inf).
  settings = dataclasses.replace(config_lib.BlindConfig(), blind_gauss_ringing_per_sd=1.0,
                                 blind_gauss_min=4.0)
  unit = 4 / 12  # the LR pixel's own variance at x2 (HR px^2)
  wide = _features(agreement=5.0, ringing=None, gauss_variance=9.0 * unit)  # limit 3
  assert blind_rule.needs_gauss_ringing(wide, 2, settings)
  assert blind_rule.choose({**wide, 'gauss_ringing': 2.0}, 2, settings)[0] == 'gaussian'
  assert blind_rule.choose({**wide, 'gauss_ringing': 4.0}, 2, settings)[0] == 'bicubic'
  wider = {**wide, 'gauss_variance': 25.0 * unit, 'gauss_ringing': 4.0}  # limit 5
  assert blind_rule.choose(wider, 2, settings)[0] == 'gaussian'
  # A ringing that could not be measured is not a pass.
  choice, confidence, reason = blind_rule.choose({**wider, 'gauss_ringing': np.nan}, 2, settings)
  assert (choice, confidence) == ('bicubic', 0.0) and 'could not be measured' in reason
  # Where the blind kernel wins, the Gaussian's SR image is never made.
  assert not blind_rule.needs_gauss_ringing(_features(), 2, settings)


def test_a_gaussian_shaped_blur_gets_the_gaussian_first():
  """Where the blind kernel lies close to the spectral Gaussian, the Gaussian is
  chosen over it, unless its SR image rings; with shaped_max 0 the rule is as before."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  unit = 4 / 12
  settings = dataclasses.replace(config_lib.BlindConfig(), blind_shaped_max=0.3,
                                 blind_gauss_ringing_per_sd=1.0)
  close = _features(distinct=0.1, gauss_variance=9.0 * unit, gauss_ringing=2.0)  # limit 3
  assert blind_rule.needs_gauss_ringing(close, 2, settings)
  assert blind_rule.choose(close, 2, settings)[0] == 'gaussian'
  assert blind_rule.choose({**close, 'gauss_ringing': 4.0}, 2, settings)[0] == 'blind'
  assert blind_rule.choose({**close, 'distinct': 0.5}, 2, settings)[0] == 'blind'
  # A Gaussian at its floor sees no blur: the blind kernel's tests decide.
  floor = {**close, 'gauss_variance': 1.0 * unit}
  assert not blind_rule.gaussian_shaped(floor, 2, settings)
  off = dataclasses.replace(settings, blind_shaped_max=0.0)
  assert blind_rule.choose(close, 2, off)[0] == 'blind'


def test_ringing_is_low_for_the_true_kernel_and_high_for_a_blur_that_is_not_there():
  """Deblurring by the kernel that blurred the image restores edges; deblurring an
  unblurred image by a long motion kernel amplifies its gradients past the limit."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  cfg = config_lib.Config().replace(scale=2, refine_solver='fourier')
  hr = skdata.astronaut()[120:376, 120:376].astype(np.float64)
  k_true = np.asarray(kernel_lib.gaussian_kernel(np.array([[6.0, 2.0], [2.0, 3.0]]), 31, 2),
                      np.float64)
  blurred = np.asarray(kernel_lib.degrade(hr, k_true, 2, (15, 15)))
  lr_blurred = np.clip(np.round(blurred), 0, 255).astype(np.uint8)
  k_motion = np.zeros((31, 31))
  k_motion[15, 6:26] = 1.0 / 20
  limit = cfg.estimate.blind.blind_ringing_max
  tv = blind_rule.sr_prior(cfg, 'blind', {'noise': 0.0, 'blockiness': 1.0})
  assert blind_estimator.ringing(lr_blurred, k_true, cfg, tv) < limit
  assert blind_estimator.ringing(hr[::2, ::2].astype(np.uint8), k_motion, cfg, tv) > limit


def test_the_spectrum_asks_for_a_blur_only_where_there_is_one():
  """`evidence`: no blur explains a Gaussian-blurred photo's power spectrum far
  worse than its spectral Gaussian does, even a mild blur's (measured 2.68 and
  0.89, against blind_x2's limit 0.5); on an unblurred photo the Gaussian sits
  at its floor, no blur itself: no evidence at all."""
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  cfg = config_lib.Config().replace(scale=2)
  hr = skdata.astronaut()[120:376, 120:376].astype(np.float64)

  def spectral_gaussian(lr):
    return np.asarray(kernel_lib.gaussian_kernel(blind_estimator.covariance(lr, cfg), 31, 2))

  for cov, least in (([[6.0, 2.0], [2.0, 3.0]], 2.0), ([[2.0, 0.5], [0.5, 1.5]], 0.6)):
    k_true = np.asarray(kernel_lib.gaussian_kernel(np.array(cov), 31, 2), np.float64)
    lr = np.clip(np.round(np.asarray(kernel_lib.degrade(hr, k_true, 2, (15, 15)))), 0, 255)
    k = spectral_gaussian(lr.astype(np.uint8))
    assert blind_estimator.evidence(lr.astype(np.uint8), k, k, 2) > least, cov
  lr = hr[::2, ::2].astype(np.uint8)
  k = spectral_gaussian(lr)
  assert abs(blind_estimator.evidence(lr, k, k, 2)) < 1e-6


def test_the_last_chance_takes_the_gaussian_only_with_evidence_and_no_ringing():
  """Where the rule gives bicubic, `last_chance` admits the Gaussian only where
  the evidence of a blur reaches its limit, the Gaussian is above its floor
  and its SR image rings within its own limit; off (inf) it never does."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  on = dataclasses.replace(config_lib.BlindConfig(), blind_evidence_min=0.5,
                           blind_evidence_ringing_max=3.0)
  unit = 4.0 / 12  # the LR pixel's own variance at x2, HR px^2
  f = {'evidence': 0.8, 'gauss_ringing': 2.0, 'gauss_variance': 3.0 * unit}
  assert blind_rule.last_chance(f, 2, on)
  for change in ({'evidence': 0.3}, {'gauss_ringing': 4.0}, {'evidence': None},
                 {'gauss_variance': unit}):
    assert not blind_rule.last_chance({**f, **change}, 2, on), change
  off = dataclasses.replace(on, blind_evidence_min=np.inf)
  assert not blind_rule.last_chance({**f, 'evidence': 9.0}, 2, off)


def test_the_second_estimate_gets_its_chance_only_within_its_own_limits():
  """Scored by its own halves, width and ringing against `blind_second_*`; a
  wide kernel where the spectrum sees no blur is still a hallucination."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  settings = dataclasses.replace(config_lib.BlindConfig(), blind_second_wide_min=20.0)
  unit = 4 / 12
  second = _features(second_agreement=0.5 * settings.blind_second_agree_max,
                     second_variance=2 * settings.blind_second_wide_min * unit,
                     second_ringing=0.5 * settings.blind_second_ringing_max)
  assert blind_rule.second_chance(second, 2, settings)
  for key, factor in (('second_agreement', 3.0), ('second_variance', 0.25),
                      ('second_ringing', 3.0)):
    assert not blind_rule.second_chance({**second, key: second[key] * factor}, 2, settings)
  hallucinated = {**second, 'gauss_variance': 1.0 * unit,
                  'second_variance': 2 * settings.blind_hallucination * unit}
  assert not blind_rule.second_chance(hallucinated, 2, settings)


def test_the_denoised_candidate_replaces_bicubic_only_on_a_noisy_image_with_a_narrow_kernel():
  """`denoises`: on, on an image that is not clean, with a blind kernel near a
  delta; off on a clean image, with a wide kernel or with the prior at 0. Its
  SR prior is --blind_denoise_prior whatever the noise; with a noise floor,
  only an image noisy enough."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  cfg = config_lib.Config().replace(scale=2, blind_denoise_prior=1e-2, blind_blocky_min=1.15)
  c = cfg.estimate.blind
  unit = 4 / 12
  blocky = {'noise': 1.0, 'blockiness': 1.3, 'blind_variance': 2.5 * unit}
  assert blind_rule.denoises(blocky, 2, c)
  assert blind_rule.sr_prior(cfg, 'denoised', blocky) == 1e-2
  assert not blind_rule.denoises({**blocky, 'blockiness': 1.0}, 2, c)
  assert not blind_rule.denoises(
      {**blocky, 'blind_variance': 2 * c.blind_denoise_narrow_max * unit}, 2, c)
  off = config_lib.Config().replace(scale=2, blind_blocky_min=1.15).estimate.blind
  assert not blind_rule.denoises(blocky, 2, off)
  quiet = dataclasses.replace(c, blind_denoise_noise_min=1.5)  # JPEG alone: little noise
  assert not blind_rule.denoises(blocky, 2, quiet)
  assert blind_rule.denoises({**blocky, 'noise': 2.0}, 2, quiet)


@pytest.mark.parametrize('name,denoised', [('cell', True), ('coins', False)])
def test_an_unblurred_noisy_jpeg_is_denoised_where_its_blocks_show(name, denoised):
  """A scene only subsampled, then given read noise (4 grey levels) and stored
  as JPEG (quality 75): on a smooth scene the blocks show, the choice is the
  denoised upscale and its SR image is nearer the clean HR scene than
  bicubic's; on a textured one the texture hides the blocks (and would be
  flattened by the strong prior): bicubic."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  from ike_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from ike_jax import metrics  # pylint: disable=g-import-not-at-top
  from ike_jax import postprocess  # pylint: disable=g-import-not-at-top
  from ike_jax import resize  # pylint: disable=g-import-not-at-top
  hr = np.stack([getattr(skdata, name)()[:256, :256]] * 3, axis=-1)
  rng = np.random.default_rng(0)
  noisy = np.clip(np.round(hr[::2, ::2] + rng.normal(0, 4.0, (128, 128, 3))), 0, 255)
  buf = io.BytesIO()
  Image.fromarray(noisy.astype(np.uint8)).save(buf, format='JPEG', quality=75)
  lr = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert('RGB'))
  cfg = config_lib.Config().replace(scale=2, refine=True, refine_solver='fourier',
                                    blind_denoise_prior=1e-2, blind_blocky_min=1.15)
  est = blind_estimator.estimate(lr, cfg)
  if not denoised:
    assert est['choice'] == 'bicubic' and not est['refine']
    return
  assert est['choice'] == 'denoised' and est['refine'] and est['sr_prior'] == 1e-2
  post = postprocess.for_estimate(cfg.post, est)
  sr = postprocess.final(None, lr, est['per_colour'].astype(np.float32), est['origin'], post, 2)
  chex.assert_shape(sr, hr.shape)
  psnr = lambda img: metrics.compare(img, hr, 2)['psnr_y']
  assert psnr(sr) > psnr(resize.bicubic_upscale(lr, 2)) + 1.0


def test_estimates_run_side_by_side_give_what_they_give_one_after_another():
  rng = np.random.default_rng(3)
  y = ndimage.gaussian_filter(rng.uniform(-1, 1, (40, 40)), 1.5).astype(np.float32)
  k0 = kernel_lib.gaussian_kernel(np.eye(2) * 2.0, 9, 1)
  jobs = {f'lam{lam}': (lambda lam=lam: np.asarray(edge_fit.estimate_level(
      jnp.asarray(y), jnp.asarray(k0, jnp.float32), jnp.full((2,), lam, jnp.float32), 0.0,
      scale=1, rounds=2))) for lam in (1e-3, 4e-3, 1e-2)}
  alone = {name: job() for name, job in jobs.items()}
  together = blind_estimator.concurrently(jobs)
  assert list(together) == list(jobs)
  for name in jobs:
    np.testing.assert_array_equal(together[name], alone[name])
  with pytest.raises(ZeroDivisionError):
    blind_estimator.concurrently({'bad': lambda: 1 / 0, **jobs})
