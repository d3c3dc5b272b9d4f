"""Tests for ike_jax.metrics against hand values and independent references."""

import math

import chex
import jax
import numpy as np
import pytest
from scipy import ndimage
from skimage import data as skdata
from skimage import metrics as skmetrics

from benchmarks import grid as grid_lib
from ike_jax import errors
from ike_jax import metrics

# PSNR must match float64 NumPy to this many dB.
PSNR_TOL_DB = 1e-4
SSIM_TOL = 2e-5


def _rand_image(h, w, seed=0, dtype=np.uint8):
  rng = np.random.default_rng(seed)
  img = rng.integers(0, 256, size=(h, w, 3))
  return img.astype(dtype)


def _perturbed(hr, std, seed=1):
  """hr plus Gaussian noise, rounded and clipped to uint8."""
  rng = np.random.default_rng(seed)
  noisy = hr.astype(np.float64) + rng.normal(0.0, std, hr.shape)
  return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _smooth_pair(h, w, seed=0):
  """A natural-ish (blurred) HR image and a noisy version of it, uint8."""
  rng = np.random.default_rng(seed)
  hr = ndimage.gaussian_filter(rng.uniform(0, 255, (h, w, 3)), (3, 3, 0))
  hr = np.clip((hr - hr.mean()) * 6 + 128, 0, 255).astype(np.uint8)
  return _perturbed(hr, 8.0, seed + 1), hr


# Independent float64 references, transcribed from the definitions.


def _ref_y(img):
  img = np.asarray(img, np.float64) / 255.0
  r, g, b = img[..., 0], img[..., 1], img[..., 2]
  return 16.0 + 65.481 * r + 128.553 * g + 24.966 * b


def _ref_psnr(a, b):
  mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64))**2)
  return 20.0 * math.log10(255.0 / math.sqrt(mse))


def _ref_ssim_channel(x, y):
  """Gaussian SSIM of one (H, W) channel; scipy filtering, valid region only."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)

  def blur(z):
    # truncate=5/1.5 gives radius 5, i.e. the 11x11 window; crop the padding.
    out = ndimage.gaussian_filter(z, 1.5, truncate=5 / 1.5, mode="constant")
    return out[5:-5, 5:-5]

  c1, c2 = (0.01 * 255)**2, (0.03 * 255)**2
  mx, my = blur(x), blur(y)
  vx = blur(x * x) - mx * mx
  vy = blur(y * y) - my * my
  cxy = blur(x * y) - mx * my
  ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2) /
              ((mx * mx + my * my + c1) * (vx + vy + c2)))
  return ssim_map.mean()


def _ref_ssim_rgb(a, b):
  return np.mean([_ref_ssim_channel(a[..., c], b[..., c]) for c in range(3)])


def _shaved(x, s):
  return x[s:-s, s:-s] if s else x


# Y conversion.


@pytest.mark.parametrize(
    "rgb, expected",
    [
        ((255, 0, 0), 16 + 65.481),
        ((0, 255, 0), 16 + 128.553),
        ((0, 0, 255), 16 + 24.966),
        ((255, 255, 255), 235.0),
        ((0, 0, 0), 16.0),
        ((128, 128, 128), 16 + 219 * 128 / 255),
    ],
)
def test_rgb_to_y_pure_colours(rgb, expected):
  img = np.broadcast_to(np.array(rgb, np.uint8), (2, 3, 3))
  y = metrics.rgb_to_y(img)
  assert y.shape == (2, 3)
  np.testing.assert_allclose(y, expected, rtol=0, atol=1e-9)
  np.testing.assert_allclose(
      metrics.rgb_to_y(img.astype(np.float32)), expected, rtol=0, atol=1e-4)


def test_rgb_to_y_matches_reference_and_is_not_rounded():
  img = _rand_image(7, 9, seed=3)
  y = metrics.rgb_to_y(img)
  np.testing.assert_allclose(y, _ref_y(img), rtol=0, atol=1e-9)
  assert np.any(np.abs(y - np.round(y)) > 1e-3)


# PSNR.


@pytest.mark.parametrize("protocol, shave", [("rgb", 0), ("y", 0), ("y", 3)])
def test_identical_images(protocol, shave):
  img = _rand_image(24, 20)
  assert metrics.psnr(img, img, protocol, shave) == math.inf
  assert metrics.ssim(img, img, protocol, shave) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("d", [1, 3, 17])
def test_constant_offset(d):
  hr = _rand_image(20, 24, seed=d) % (256 - d)
  sr = hr + np.uint8(d)
  assert metrics.psnr(sr, hr) == pytest.approx(
      20 * math.log10(255 / d), abs=1e-5)
  # The offset in every channel shifts Y by d * 219 / 255.
  assert metrics.psnr(sr, hr, "y", 2) == pytest.approx(
      20 * math.log10(255 / (d * 219 / 255)), abs=1e-5)
  # Symmetric, and no uint8 wrap-around when sr < hr.
  assert metrics.psnr(hr, sr) == pytest.approx(metrics.psnr(sr, hr), abs=1e-9)


def test_gaussian_noise_psnr_near_value_implied_by_std():
  std = 5.0
  hr = np.full((64, 64, 3), 128.0)
  sr = hr + np.random.default_rng(0).normal(0.0, std, hr.shape)
  # 12288 samples: the sample variance is within ~1.3% (~0.06 dB) of std^2.
  assert metrics.psnr(sr, hr) == pytest.approx(
      20 * math.log10(255 / std), abs=0.2)


@pytest.mark.parametrize("protocol, shave", [("rgb", 0), ("rgb", 2), ("y", 0),
                                             ("y", 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_psnr_matches_float64_numpy(protocol, shave, dtype):
  hr = _rand_image(30, 26, seed=4).astype(dtype)
  sr = _perturbed(hr, 6.0).astype(dtype)
  if dtype == np.float64:
    sr = sr + np.random.default_rng(5).uniform(-0.5, 0.5, sr.shape)
  if protocol == "y":
    expected = _ref_psnr(_shaved(_ref_y(sr), shave), _shaved(_ref_y(hr), shave))
  else:
    expected = _ref_psnr(_shaved(sr, shave), _shaved(hr, shave))
  assert metrics.psnr(sr, hr, protocol, shave) == pytest.approx(
      expected, abs=PSNR_TOL_DB)


@pytest.mark.parametrize("protocol", ["rgb", "y"])
def test_psnr_large_image_high_psnr_is_exact_enough(protocol):
  # Millions of tiny squared errors: where a float32 running sum would drift.
  hr = _rand_image(1000, 700, seed=6)
  rng = np.random.default_rng(7)
  sr = hr.copy()
  sr[rng.random(hr.shape) < 0.01] ^= 1
  if protocol == "y":
    expected = _ref_psnr(_ref_y(sr), _ref_y(hr))
  else:
    expected = _ref_psnr(sr, hr)
  assert expected > 60
  assert metrics.psnr(sr, hr, protocol) == pytest.approx(
      expected, abs=PSNR_TOL_DB)


# SSIM.


@pytest.mark.parametrize("shape", [(11, 11), (32, 27), (45, 64)])
def test_ssim_rgb_matches_scipy_and_skimage(shape):
  sr, hr = _smooth_pair(*shape, seed=shape[0])
  got = metrics.ssim(sr, hr)
  assert got == pytest.approx(_ref_ssim_rgb(sr, hr), abs=SSIM_TOL)
  expected_sk = skmetrics.structural_similarity(
      sr, hr, channel_axis=-1, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, data_range=255)
  assert got == pytest.approx(expected_sk, abs=SSIM_TOL)
  assert 0.1 < got < 0.99  # A meaningful, non-trivial value.


@pytest.mark.parametrize("shave", [0, 2, 4])
def test_ssim_y_matches_scipy_and_skimage(shave):
  sr, hr = _smooth_pair(40, 36, seed=shave)
  y_sr, y_hr = _shaved(_ref_y(sr), shave), _shaved(_ref_y(hr), shave)
  got = metrics.ssim(sr, hr, "y", shave)
  assert got == pytest.approx(_ref_ssim_channel(y_sr, y_hr), abs=SSIM_TOL)
  expected_sk = skmetrics.structural_similarity(
      y_sr, y_hr, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, data_range=255)
  assert got == pytest.approx(expected_sk, abs=SSIM_TOL)


def _sk_ssim(a, b, channel_axis=-1):
  """scikit-image's SSIM with Wang et al.'s settings, float64 throughout.

  sigma 1.5 with skimage's truncation 3.5 sigma gives the 11x11 window, and
  skimage averages only the map away from the (win - 1) / 2 border: 'valid'.
  """
  return skmetrics.structural_similarity(
      np.asarray(a, np.float64), np.asarray(b, np.float64),
      channel_axis=channel_axis, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, data_range=255)


def _noisy(img, std, seed):
  rng = np.random.default_rng(seed)
  noisy = np.asarray(img, np.float64) + rng.normal(0.0, std, np.shape(img))
  return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _ssim_case(name):
  """(sr, hr) (H, W, 3) in 0..255 for a named random or structured case."""
  rows, cols = np.indices((48, 48))
  grey3 = lambda x: np.repeat(np.asarray(x)[..., None], 3, axis=-1)
  if name == "random_uncorrelated":
    return _rand_image(40, 52, seed=20), _rand_image(40, 52, seed=21)
  if name == "random_noisy":
    hr = _rand_image(33, 47, seed=22)
    return _noisy(hr, 20.0, 23), hr
  if name == "checkerboard_shifted":
    hr = grey3(((rows // 4 + cols // 4) % 2 * 255).astype(np.uint8))
    return np.roll(hr, 1, axis=1), hr
  if name == "checkerboard_blurred":
    hr = grey3(((rows // 4 + cols // 4) % 2 * 255).astype(np.uint8))
    return ndimage.uniform_filter(hr.astype(np.float64), (3, 3, 0)), hr
  if name == "ramps_noisy":
    hr = np.stack([cols * 5, rows * 5, (rows + cols) * 2.5], -1)
    hr = hr.astype(np.uint8)
    return _noisy(hr, 5.0, 24), hr
  if name == "step_edge_shifted":
    hr = grey3(np.where(cols < 24, 30, 220).astype(np.uint8))
    return np.roll(hr, 2, axis=1), hr
  if name == "photo_noisy":
    hr = skdata.astronaut()[100:228, 150:278]
    return _noisy(hr, 10.0, 25), hr
  if name == "photo_blurred":
    hr = skdata.astronaut()[100:228, 150:278]
    return ndimage.gaussian_filter(hr.astype(np.float64), (1.2, 1.2, 0)), hr
  if name == "photo_quantised":
    hr = grey3(skdata.camera()[200:300, 200:300])
    return np.round(hr / 16.0) * 16.0, hr
  if name == "flat_off_by_one":
    return (np.full((20, 20, 3), 100, np.uint8),
            np.full((20, 20, 3), 101, np.uint8))
  if name == "black_vs_white":
    return (np.zeros((16, 16, 3), np.uint8),
            np.full((16, 16, 3), 255, np.uint8))
  raise ValueError(name)


# Measured |ours - skimage| on these cases (CPU, float32 cores): at most
# 2.3e-6 for rgb and ssim_jax, 9.1e-6 for Y (the black-vs-white case, where
# float32 round-off of the window's unit sum leaves a ~1e-3 variance next to
# C2 = 58.5); <= 1.6e-7 on 60 random image pairs of 11..89 px. SSIM_TOL (2e-5)
# keeps about 2x headroom over the worst.
SSIM_CASES = ["random_uncorrelated", "random_noisy", "checkerboard_shifted",
              "checkerboard_blurred", "ramps_noisy", "step_edge_shifted",
              "photo_noisy", "photo_blurred", "photo_quantised",
              "flat_off_by_one", "black_vs_white"]


@pytest.mark.parametrize("case", SSIM_CASES)
def test_ssim_matches_skimage_on_random_and_structured_images(case):
  sr, hr = _ssim_case(case)
  expected = _sk_ssim(sr, hr)
  assert metrics.ssim(sr, hr) == pytest.approx(expected, abs=SSIM_TOL)
  core = metrics.ssim_jax(np.asarray(sr, np.float32),
                          np.asarray(hr, np.float32))
  assert float(core) == pytest.approx(expected, abs=SSIM_TOL)
  shave = 2
  y_sr = _shaved(_ref_y(sr), shave)
  y_hr = _shaved(_ref_y(hr), shave)
  assert metrics.ssim(sr, hr, "y", shave) == pytest.approx(
      _sk_ssim(y_sr, y_hr, channel_axis=None), abs=SSIM_TOL)


def test_ssim_extreme_images():
  black = np.zeros((16, 16, 3), np.uint8)
  white = np.full((16, 16, 3), 255, np.uint8)
  c1 = (0.01 * 255)**2
  # Flat images: only the luminance term is left.
  assert metrics.ssim(black, white) == pytest.approx(c1 / (255**2 + c1),
                                                     abs=1e-6)
  sr, hr = _smooth_pair(16, 16)
  assert metrics.ssim(hr, sr) == pytest.approx(metrics.ssim(sr, hr), abs=1e-6)


# Shave.


@pytest.mark.parametrize("shave", [1, 4])
def test_shave_removes_exactly_shave_pixels(shave):
  hr = _rand_image(24, 30, seed=10)
  border = np.zeros(hr.shape[:2], bool)
  border[:shave] = border[-shave:] = True
  border[:, :shave] = border[:, -shave:] = True
  sr = hr.copy()
  sr[border] = 255 - sr[border]
  assert metrics.psnr(sr, hr, "y", shave) == math.inf
  assert metrics.ssim(sr, hr, "y", shave) == pytest.approx(1.0, abs=1e-6)
  assert metrics.psnr(sr, hr, "y", shave - 1) < math.inf
  # One changed pixel just inside the shaved frame is seen.
  sr2 = hr.copy()
  sr2[shave, -shave - 1] = 255 - sr2[shave, -shave - 1]
  assert metrics.psnr(sr2, hr, "y", shave) < math.inf
  assert metrics.psnr(sr2, hr, "rgb", shave) < math.inf


# Shapes and errors.


def test_compare_keys_types_and_values():
  sr, hr = _smooth_pair(40, 44, seed=11)
  result = metrics.compare(sr, hr, scale=4)
  assert set(result) == {"psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"}
  assert all(type(v) is float for v in result.values())
  assert result["psnr_rgb"] == pytest.approx(metrics.psnr(sr, hr), abs=1e-9)
  assert result["ssim_rgb"] == pytest.approx(metrics.ssim(sr, hr), abs=1e-9)
  assert result["psnr_y"] == pytest.approx(
      _ref_psnr(_shaved(_ref_y(sr), 4), _shaved(_ref_y(hr), 4)),
      abs=PSNR_TOL_DB)
  assert result["ssim_y"] == pytest.approx(metrics.ssim(sr, hr, "y", 4),
                                           abs=1e-9)


@pytest.mark.parametrize("hr_shape", [(43, 46), (40, 44), (41, 41)])
def test_compare_crops_small_mismatch_to_top_left(hr_shape):
  big_sr, big_hr = _smooth_pair(43, 46, seed=12)
  sr = big_sr[:40, :44]
  hr = big_hr[:hr_shape[0], :hr_shape[1]]
  h, w = min(40, hr_shape[0]), min(44, hr_shape[1])
  expected = metrics.compare(sr[:h, :w], hr[:h, :w], scale=4)
  result = metrics.compare(sr, hr, scale=4)
  for key, value in expected.items():
    assert result[key] == pytest.approx(value, abs=1e-9), key


@pytest.mark.parametrize("sr_shape, hr_shape, scale",
                         [((40, 44), (44, 44), 4), ((40, 44), (40, 42), 2),
                          ((40, 44), (41, 44), 1)])
def test_mismatched_shapes_raise_user_error(sr_shape, hr_shape, scale):
  sr = np.zeros(sr_shape + (3,), np.uint8)
  hr = np.zeros(hr_shape + (3,), np.uint8)
  with pytest.raises(errors.UserError) as info:
    metrics.compare(sr, hr, scale=scale)
  message = str(info.value)
  assert "\n" not in message
  assert str(sr.shape) in message and str(hr.shape) in message
  with pytest.raises(errors.UserError):
    metrics.psnr(sr, hr)


@pytest.mark.parametrize(
    "call",
    [
        lambda img: metrics.psnr(img[..., 0], img[..., 0]),  # No channels.
        lambda img: metrics.psnr(img, img, "ycbcr"),
        lambda img: metrics.psnr(img, img, "y", 10),  # Shaves everything.
        lambda img: metrics.ssim(img, img, "y", 5),  # Under 11x11 left.
    ],
)
def test_bad_arguments_raise_user_error(call):
  with pytest.raises(errors.UserError):
    call(_rand_image(20, 20))


# JAX cores.


def test_cores_jit_and_vmap_over_a_batch():
  pairs = [_smooth_pair(24, 28, seed=s) for s in range(3)]
  a = np.stack([p[0] for p in pairs]).astype(np.float32)
  b = np.stack([p[1] for p in pairs]).astype(np.float32)
  psnrs = jax.vmap(metrics.psnr_jax)(a, b)
  ssims = jax.vmap(metrics.ssim_jax)(a, b)
  chex.assert_shape([psnrs, ssims], (3,))
  for i, (sr, hr) in enumerate(pairs):
    assert float(psnrs[i]) == pytest.approx(_ref_psnr(sr, hr), abs=PSNR_TOL_DB)
    assert float(ssims[i]) == pytest.approx(_ref_ssim_rgb(sr, hr), abs=SSIM_TOL)
  # Leading axes work without vmap too.
  chex.assert_trees_all_close(metrics.psnr_jax(a, b), psnrs, atol=1e-5)
  chex.assert_trees_all_close(metrics.ssim_jax(a, b), ssims, atol=1e-6)


def test_grid_strength_sees_a_2x2_checkerboard():
  rng = np.random.default_rng(0)
  smooth = ndimage.gaussian_filter(rng.uniform(0, 255, (128, 128, 3)), (3, 3, 0))
  base = grid_lib.grid_strength(smooth, 2)
  checker = (np.indices((128, 128)).sum(0) % 2 * 2.0 - 1.0)[..., None]  # +-1
  grid = grid_lib.grid_strength(smooth + 3.0 * checker, 2)
  assert base < 0.3
  assert grid == pytest.approx(6.0 * 219 / 255, abs=base + 0.05)  # 2 x 3 x Y's gain
  assert grid_lib.phase_means(smooth, 2).shape == (2, 2)
