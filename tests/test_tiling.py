"""The Fourier SR stage over whole photos: windows, their seams, their memory."""

import dataclasses

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from ike_jax import config
from ike_jax import data
from ike_jax import errors
from ike_jax import kernel as kernel_lib
from ike_jax import postprocess
from ike_jax import resize
from ike_jax import tiling


@pytest.mark.parametrize('scale', [2, 4])
def test_polyphase_bicubic_is_matlab_bicubic(scale):
  x = np.random.default_rng(1).integers(0, 256, (13, 10, 3)).astype(np.float32)
  np.testing.assert_allclose(resize.matlab_upscale(x, scale), resize.imresize_matlab(x, scale),
                             atol=1e-4)


def _photo(h, w, seed=0):
  """A test photo: smooth texture, blocks with sharp edges, a little noise (uint8)."""
  rng = np.random.default_rng(seed)
  img = ndimage.gaussian_filter(rng.random((h, w, 3)), (1.5, 1.5, 0)) * 300 - 50
  for _ in range(8):
    r, c = rng.integers(0, h - 8), rng.integers(0, w - 8)
    img[r:r + rng.integers(4, 20), c:c + rng.integers(4, 20)] = rng.integers(0, 256, 3)
  return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize('scale,boundary', [(2, 'mirror'), (4, 'mirror'), (2, 'unknown')])
def test_tiled_equals_untiled_away_from_the_border(scale, boundary):
  # A photo blurred by an anisotropic Gaussian (the presets' kernels), solved whole
  # and in cores of 24 LR px: within half a grey level away from the photo's border.
  hr = _photo(72 * scale, 88 * scale, seed=scale)
  k = np.asarray(kernel_lib.gaussian_kernel(np.diag([2.0, 1.0]) * scale ** 2 / 4, 13, scale))
  k = k / k.sum()
  lr = data.from_model(kernel_lib.degrade(data.to_model(hr), k, scale))
  k = jnp.asarray(np.stack([k] * 3), jnp.float32)
  settings = dict(anchor=1e-4, tv=1e-4, tv_iterations=8, boundary=boundary)
  solve = lambda plan, rounded=False: tiling.solve_photo(lr, None, k, (6, 6), scale, settings,
                                                         plan, rounded=rounded)
  small = tiling.plan(lr.shape, scale, tile=24)
  assert small.windows == 12  # 3 x 4 equal cores of 24 and 22 LR px
  whole, tiled = solve(tiling.plan(lr.shape, scale)), solve(small)
  chex.assert_shape(tiled, (72 * scale, 88 * scale, 3))
  m = 4 * scale  # "away from the border": 4 LR px
  assert np.abs(tiled - whole)[m:-m, m:-m].max() < 0.5
  rounded = solve(small, rounded=True)
  assert rounded.dtype == np.uint8 and np.abs(rounded - tiled).max() <= 0.5
  # The start made window by window is MATLAB bicubic: pulled to it alone, the
  # result is bicubic.
  none = tiling.solve_photo(lr, None, k, (6, 6), scale, dict(anchor=1e6, tv=0.0,
                                                                tv_iterations=0), small)
  np.testing.assert_array_equal(none, resize.bicubic_upscale(lr, scale))


def test_memory_limit_shrinks_windows_or_says_the_photo_cannot_fit():
  shape = (1500, 2000, 3)
  free = tiling.plan(shape, 2)
  assert (free.tile_h, free.tile_w) == (500, 500)  # equal cores of at most 512 LR px
  assert (free.rows, free.cols) == (3, 4)
  need = tiling.memory_bytes(free, shape, 2) / 2 ** 30
  tight = tiling.plan(shape, 2, max_memory_gb=need * 0.9)
  assert tight.tile_h < free.tile_h
  assert tiling.memory_bytes(tight, shape, 2) <= need * 0.9 * 2 ** 30
  with pytest.raises(errors.UserError, match='max_memory_gb') as err:
    tiling.plan(shape, 2, max_memory_gb=0.05)
  assert '\n' not in str(err.value)
  gradient = config.Config.create(refine=True, refine_solver='gradient').post
  with pytest.raises(errors.UserError, match='refine_solver=fourier'):
    postprocess.windows(shape, gradient, 2, max_memory_gb=1.0)  # ~2.4 GB needed
  assert postprocess.windows(shape, gradient, 2, max_memory_gb=4.0) is None
  assert all(tiling.fft_size(n) % 2 == 0 or n == 1 for n in (7, 100, 513, 641))
  assert [tiling.fft_size(n) for n in (100, 513, 641)] == [100, 540, 648]


def test_both_solvers_fit_the_lr_image():
  lr = _photo(40, 48, seed=3)
  k, origin = postprocess.sr_kernel(
      {'per_colour': np.stack([kernel_lib.gaussian_kernel(np.eye(2) * 1.2, 13, 2)] * 3),
       'origin': (6, 6)}, 2, 2)
  post = config.Config.create(refine=True, refine_prior=1e-4).post
  fourier = postprocess.final(None, lr, k, origin, post, 2)
  gradient = postprocess.final(None, lr, k, origin, dataclasses.replace(post, refine_solver='gradient'), 2)
  chex.assert_shape([fourier, gradient], (80, 96, 3))
  assert fourier.dtype == np.uint8
  # Both fit the LR image under the kernel far better than their bicubic start.
  bic = resize.bicubic_upscale(lr, 2)
  for sr in (fourier, gradient):
    assert kernel_lib.self_check(sr, lr, k, 2, origin) < 0.7 * kernel_lib.self_check(
        bic, lr, k, 2, origin)


def test_compare_picture_of_a_large_photo_is_its_centre_with_the_whole_photos_bicubic(monkeypatch):
  from ike_jax import report  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(report, 'COMPARE_SIDE', 32)
  lr = _photo(40, 60, seed=5)
  rows, cols, note = report._view(lr.shape, 2)
  assert (rows, cols) == (slice(12, 28), slice(22, 38)) and note == ' (centre crop)'
  np.testing.assert_array_equal(report._bicubic_of(lr, rows, cols, 2),
                                resize.bicubic_upscale(lr, 2)[24:56, 44:76])
  assert report._view((10, 12, 3), 2)[2] == ''  # a small image is shown whole


def test_a_wider_context_keeps_seams_small_for_a_kernel_with_spectral_zeros():
  # A 15 px motion blur (zeros in its spectrum) on a photo, the blind presets'
  # prior: with 96 LR px of context the tiled solve is the whole one within a
  # grey level away from the photo's border (which each solve mirrors its own
  # way); with the default 24 the seams stray by several levels.
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  hr = skdata.astronaut()
  k = np.zeros((31, 31))
  k[15, 8:23] = 1.0 / 15
  lr = data.from_model(kernel_lib.degrade(data.to_model(hr), k, 2))
  k3 = jnp.asarray(np.stack([k] * 3), jnp.float32)
  settings = dict(anchor=1e-4, tv=3e-3, tv_iterations=8)
  solve = lambda plan: tiling.solve_photo(lr, None, k3, (15, 15), 2, settings, plan).astype(float)
  whole = solve(tiling.plan(lr.shape, 2))
  m = 64  # HR px from the border
  wide = np.abs(solve(tiling.plan(lr.shape, 2, tile=128, context=96)) - whole)[m:-m, m:-m]
  narrow = np.abs(solve(tiling.plan(lr.shape, 2, tile=128)) - whole)[m:-m, m:-m]
  assert wide.max() <= 1, wide.max()
  assert narrow.max() >= 5, narrow.max()


def test_memory_limit_counts_what_the_kernel_estimate_leaves_resident():
  from ike_jax import estimate  # pylint: disable=g-import-not-at-top
  shape = (3000, 4000, 3)
  post = config.Config.create(refine=True).post
  extra = estimate.peak_bytes(config.Config.create(generator='blind'))
  assert extra > 0 and estimate.peak_bytes(config.Config.create(generator='spectral')) == 0
  bare = tiling.memory_bytes(tiling.plan(shape, 2), shape, 2)
  limit = (bare + extra / 2) / 2 ** 30  # enough for the SR stage alone, not with the estimate
  assert postprocess.windows(shape, post, 2, max_memory_gb=limit) == tiling.plan(shape, 2)
  tight = postprocess.windows(shape, post, 2, max_memory_gb=limit, extra_bytes=extra)
  assert tight.tile_h < 512 and tiling.memory_bytes(tight, shape, 2, extra) <= limit * 2 ** 30
  # In linear light the float32 SR image and the photo's light are resident too.
  light = postprocess.light_bytes(shape, 2)
  assert light > 12 * 4 * shape[0] * shape[1]
  with pytest.raises(errors.UserError, match='is too low'):
    postprocess.windows(shape, post, 2, max_memory_gb=limit, extra_bytes=extra + light)


def test_srgb_encoding_round_trips_every_grey_level():
  from ike_jax import colours  # pylint: disable=g-import-not-at-top
  v = np.linspace(0.0, 1.0, 1001)
  np.testing.assert_allclose(colours.srgb_encode(colours.srgb_decode(v)), v, atol=1e-12)
  levels = np.arange(256, dtype=np.uint8)
  np.testing.assert_array_equal(colours.encoded_u8(colours.light_levels(levels)), levels)
  assert colours.light_levels(np.uint8(128)) < 60  # mid-grey is a fifth of white's light


def test_a_blur_of_light_is_undone_best_in_light():
  """`postprocess.photo_sr`: a photo whose Gaussian blur acted on its linear
  light is restored closer to the truth by the SR stage in light than in its
  grey levels, with the same kernel (the Fourier solver, the gradient one, a
  blend with a companion kernel); an estimate that asks for no SR stage gives
  bicubic of the photo either way, and a start made from the light is encoded
  again whether an SR stage follows or not."""
  from ike_jax import colours  # pylint: disable=g-import-not-at-top
  from skimage import data as skdata  # pylint: disable=g-import-not-at-top
  hr = skdata.astronaut()[100:196, 180:276]
  k = np.asarray(kernel_lib.gaussian_kernel(np.diag([2.5, 1.5]), 13, 2), np.float32)
  light = kernel_lib.degrade(colours.srgb_decode(hr / 255.0).astype(np.float32), k, 2)
  lr = np.round(colours.srgb_encode(np.asarray(light)) * 255).astype(np.uint8)
  est = {'per_colour': np.stack([k] * 3), 'origin': (6, 6), 'scale': 2}
  post = config.Config.create(refine=True, refine_prior=1e-4).post
  error = lambda sr: np.sqrt(np.mean((sr[8:-8, 8:-8].astype(float) - hr[8:-8, 8:-8]) ** 2))
  (in_levels, _), (in_light, check) = (postprocess.photo_sr(None, lr, est, post, 2, light=l)
                                       for l in (False, True))
  chex.assert_shape([in_levels, in_light], hr.shape)
  assert in_light.dtype == np.uint8 and check < 1.0  # it fits the photo's light
  assert error(in_light) < 0.8 * error(in_levels) < error(resize.bicubic_upscale(lr, 2))
  for l in (False, True):
    same, _ = postprocess.photo_sr(None, lr, dict(est, refine=False), post, 2, light=l)
    np.testing.assert_array_equal(same, resize.bicubic_upscale(lr, 2))
  # The gradient solver and a blend with a companion kernel run in light too.
  gradient, _ = postprocess.photo_sr(
      None, lr, est, dataclasses.replace(post, refine_solver='gradient'), 2, light=True)
  assert gradient.dtype == np.uint8 and error(gradient) < error(in_levels)
  twice, _ = postprocess.photo_sr(None, lr, dict(est, companion_kernel=np.stack([k] * 3),
                                                 companion_weight=0.5), post, 2, light=True)
  assert np.abs(twice.astype(int) - in_light).max() <= 1
  # A start made from the light (G's inverse) is encoded again, SR stage or none.
  start = np.asarray(resize.bicubic_upscale(colours.light_u8(lr), 2), np.float32) / 127.5 - 1
  for refine in (False, True):
    sr, _ = postprocess.photo_sr(start, lr, est, dataclasses.replace(post, refine=refine), 2,
                                 light=True)
    assert abs(sr.mean() - resize.bicubic_upscale(lr, 2).mean()) < 5.0  # not its light (-40)
