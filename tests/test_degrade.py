"""Tests for benchmarks.degradations and the benchmarks.degrade CLI."""

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
from scipy import ndimage

from benchmarks import degradations as deg
from benchmarks import degrade as degrade_cli
from ike_jax import errors
from ike_jax import kernel as kernel_lib


# Float32 round-off of `blur_subsample` on 0..255 images, in grey levels.
F32_TOL = 1e-4


def _image(h=48, w=40, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def _ref_blur_subsample(img, k, scale):
  """Float64 reference: per-channel scipy correlation ('reflect'), subsample."""
  img = np.asarray(img, np.float64)
  out = np.stack([ndimage.correlate(img[..., c], k, mode='reflect')
                  for c in range(img.shape[-1])], axis=-1)
  return out[::scale, ::scale]


@pytest.mark.parametrize('scale,size,center', [(2, 11, 5.5), (4, 31, 16.5)])
def test_div2krk_kernel_sum_shape_and_center(scale, size, center):
  assert kernel_lib.kernel_center(size, scale) == center
  for seed in range(20):
    k, info = deg.div2krk_kernel(np.random.default_rng(seed), scale)
    assert k.shape == (size, size)
    assert k.min() >= 0
    np.testing.assert_allclose(k.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(kernel_lib.center_of_mass(k), [center, center],
                               atol=1e-3)
    assert 0.6 <= info['l1'] <= 5 and 0.6 <= info['l2'] <= 5
    assert 0 <= info['theta'] <= np.pi


def test_fixed_gaussian_kernel():
  k = deg.fixed_gaussian_kernel(0.8, 0.8, 0.0)
  assert k.shape == (11, 11)
  np.testing.assert_allclose(k.sum(), 1.0)
  np.testing.assert_allclose(kernel_lib.center_of_mass(k), [5.5, 5.5],
                             atol=1e-3)
  # theta = 0: l1 is the variance along columns (x), l2 along rows (y).
  k = deg.fixed_gaussian_kernel(4.0, 0.7, 0.0, size=15, center=(7, 7))
  rows, cols = np.indices(k.shape)
  assert ((cols - 7) ** 2 * k).sum() > 3 * ((rows - 7) ** 2 * k).sum()
  np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)


def test_blur_subsample_sizes_and_alignment():
  img = _image(65, 48)
  delta = np.zeros((11, 11))
  delta[5, 5] = 1.0  # Correlation origin is index 5: a pure subsample.
  out = deg.blur_subsample(img, delta, 2)
  assert out.shape == (33, 24, 3) and out.dtype == np.float64
  np.testing.assert_array_equal(out, img[::2, ::2])
  k, _ = deg.div2krk_kernel(np.random.default_rng(0), 4)
  assert deg.blur_subsample(img, k, 4).shape == (17, 12, 3)
  np.testing.assert_allclose(deg.blur_subsample(img, k, 4),
                             deg.blur_subsample(img.astype(float), k, 4))


def test_x4_kernel_equals_two_x2_steps_away_from_borders():
  img = np.random.default_rng(1).uniform(0, 255, (96, 96, 3))
  k2, _ = deg.div2krk_kernel(np.random.default_rng(7), 2)
  k4, _ = deg.div2krk_kernel(np.random.default_rng(7), 4)
  np.testing.assert_allclose(k4, kernel_lib.x4_from_x2(k2))
  once = deg.blur_subsample(img, k4, 4)
  twice = deg.blur_subsample(deg.blur_subsample(img, k2, 2), k2, 2)
  assert once.shape == twice.shape == (24, 24, 3)
  m = 5
  # The identity itself, in float64 (scipy correlation about index k // 2).
  ref_once = _ref_blur_subsample(img, k4, 4)
  ref_twice = _ref_blur_subsample(_ref_blur_subsample(img, k2, 2), k2, 2)
  np.testing.assert_allclose(ref_once[m:-m, m:-m], ref_twice[m:-m, m:-m],
                             atol=1e-9)
  # blur_subsample is float32 (`ike_jax.kernel.degrade`): measured up to
  # 3.1e-5 grey levels here, and 3.7e-5 from the float64 reference.
  np.testing.assert_allclose(once[m:-m, m:-m], twice[m:-m, m:-m], atol=F32_TOL)
  np.testing.assert_allclose(once, ref_once, atol=F32_TOL)


def test_to_uint8():
  out = deg.to_uint8(np.array([-3.0, 0.4, 0.6, 254.5, 300.0]))
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out, [0, 0, 1, 254, 255])


@pytest.mark.parametrize('kind', deg.KINDS)
@pytest.mark.parametrize('scale', [2, 4])
def test_degrade_shapes_and_determinism(kind, scale):
  img = _image()
  lr, kernel, info = deg.degrade(img, kind, scale, seed=3)
  assert lr.dtype == np.uint8
  assert lr.shape == (48 // scale, 40 // scale, 3)
  assert (kernel is not None) == (kind == 'div2krk')
  assert info['kind'] == kind and info['scale'] == scale and info['seed'] == 3
  json.dumps(info)
  lr2, kernel2, info2 = deg.degrade(img, kind, scale, seed=3)
  assert lr.tobytes() == lr2.tobytes()
  assert info == info2
  if kernel is not None:
    assert kernel.tobytes() == kernel2.tobytes()


def test_different_seed_gives_different_output():
  img = _image()
  a, ka, _ = deg.degrade(img, 'div2krk', 2, seed=0)
  b, kb, _ = deg.degrade(img, 'div2krk', 2, seed=1)
  assert a.tobytes() != b.tobytes() and not np.allclose(ka, kb)
  infos = [{k: v for k, v in deg.degrade(img, 'mix', 2, seed=s)[2].items() if k != 'seed'}
           for s in range(3)]
  assert infos[0] != infos[1] or infos[1] != infos[2]  # the draws, not only the seed


@pytest.mark.parametrize('fn', [deg.median_degrade, deg.bilateral_degrade,
                                deg.diffusion_degrade, deg.mix_degrade])
def test_nonlinear_degradations(fn):
  img = _image(32, 32)
  lr, info = fn(img, np.random.default_rng(0), 2)
  assert lr.shape == (16, 16, 3) and lr.dtype == np.float64
  assert -1 <= lr.min() and lr.max() <= 256
  lr2, info2 = fn(img, np.random.default_rng(0), 2)
  np.testing.assert_array_equal(lr, lr2)
  assert info == info2


def test_perona_malik_smooths_and_keeps_constants():
  flat = np.full((16, 16), 100.0)
  np.testing.assert_allclose(deg.perona_malik(flat, 10, 20.0, 0.2), flat)
  noisy = 100 + np.random.default_rng(0).normal(0, 5, (32, 32))
  out = deg.perona_malik(noisy, 10, 20.0, 0.2)
  assert out.std() < 0.5 * noisy.std()
  np.testing.assert_allclose(out.mean(), noisy.mean(), atol=1e-9)


def test_bad_arguments():
  with pytest.raises(errors.UserError):
    deg.degrade(_image(), 'jpeg', 2, 0)
  with pytest.raises(errors.UserError):
    deg.degrade(_image(), 'div2krk', 3, 0)
  with pytest.raises(errors.InputError):
    deg.blur_subsample(np.zeros((2, 2, 2, 2)), np.ones((3, 3)), 2)


def test_cli(tmp_path, capsys):
  src = tmp_path / 'in.png'
  iio.imwrite(src, _image(32, 24))
  rc = degrade_cli.main([f'--image={src}', '--kind=div2krk', '--scale=4',
                         '--seed=0', f'--out={tmp_path / "out"}'])
  assert rc == 0
  lr = iio.imread(tmp_path / 'out' / 'in_lr_x4.png')
  assert lr.shape == (8, 6, 3)
  assert np.load(tmp_path / 'out' / 'in_kernel_x4.npy').shape == (31, 31)
  info = json.loads((tmp_path / 'out' / 'in_info_x4.json').read_text())
  assert info['seed'] == 0
  before = (tmp_path / 'out' / 'in_lr_x4.png').read_bytes()
  rc = degrade_cli.main([f'--image={src}', '--kind=div2krk', '--scale=4',
                         '--seed=1', f'--out={tmp_path / "out"}'])
  assert rc == 2 and 'exists' in capsys.readouterr().err  # never over an earlier output
  assert (tmp_path / 'out' / 'in_lr_x4.png').read_bytes() == before
  capsys.readouterr()
  rc = degrade_cli.main([f'--image={tmp_path / "missing.png"}',
                         f'--out={tmp_path}'])
  assert rc == 2
  err = capsys.readouterr().err
  assert err.startswith('error:') and err.count('\n') == 1


def test_bundled_samples_match_generator(tmp_path):
  from benchmarks import make_sample  # pylint: disable=g-import-not-at-top
  shapes = {'astronaut_hr.png': (256, 256, 3),
            'astronaut_lr_x2.png': (128, 128, 3),
            'astronaut_hr_x4.png': (384, 384, 3),
            'astronaut_lr_x4.png': (96, 96, 3),
            'astronaut_kernel_x2.npy': (11, 11),
            'astronaut_kernel_x4.npy': (31, 31)}
  made = make_sample.make_samples(str(tmp_path))
  assert sorted(os.path.basename(p) for p in made) == sorted(shapes)
  for name, shape in shapes.items():
    read = np.load if name.endswith('.npy') else iio.imread
    bundled = read(os.path.join(make_sample.SAMPLES_DIR, name))
    assert bundled.shape == shape
    # Tolerances only for floating-point differences across platforms.
    np.testing.assert_allclose(bundled.astype(float),
                               read(tmp_path / name).astype(float), atol=1)
    if name.endswith('.npy'):
      np.testing.assert_allclose(bundled, read(tmp_path / name), atol=1e-12)
