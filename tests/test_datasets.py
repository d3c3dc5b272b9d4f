"""Tests for benchmarks.datasets on tiny fake trees and the offline builder."""

import os

import imageio.v3 as iio
import numpy as np
import pytest
from scipy import io as sio

from benchmarks import datasets
from ike_jax import data
from ike_jax import errors
from ike_jax import kernel


def _png(path, size=8):
  path.parent.mkdir(parents=True, exist_ok=True)
  iio.imwrite(path, np.zeros((size, size, 3), np.uint8))


def test_div2k_track2(tmp_path):
  for n in ('0801', '0802'):
    _png(tmp_path / 'DIV2K_valid_LR_unknown' / 'X2' / f'{n}x2.png', 4)
    _png(tmp_path / 'DIV2K_valid_HR' / f'{n}.png')
  _png(tmp_path / 'DIV2K_valid_LR_unknown' / 'X2' / '0803x2.png', 4)
  samples = datasets.load_dataset('div2k', str(tmp_path), scale=2)
  assert [s.name for s in samples] == ['0801', '0802', '0803']
  assert samples[0].lr_path.endswith(os.path.join('X2', '0801x2.png'))
  assert samples[1].hr_path == str(tmp_path / 'DIV2K_valid_HR' / '0802.png')
  assert samples[2].hr_path is None
  assert all(s.kernel_path is None and s.scale == 2 for s in samples)
  with pytest.raises(errors.UserError, match='X4'):
    datasets.load_dataset('div2k_track2', str(tmp_path), scale=4)
  with pytest.raises(errors.UserError, match='DIV2K_train'):
    datasets.load_dataset('div2k', str(tmp_path), scale=2, split='train')


def test_div2krk(tmp_path):
  for n in (1, 2, 10):
    _png(tmp_path / 'lr_x2' / f'im_{n}.png', 4)
    _png(tmp_path / 'gt' / f'img_{n}_gt.png')
    (tmp_path / 'gt_k_x2').mkdir(exist_ok=True)
    sio.savemat(tmp_path / 'gt_k_x2' / f'kernel_{n}.mat',
                {'Kernel': np.full((11, 11), n / 121.0)})
  samples = datasets.load_dataset('div2krk', str(tmp_path), scale=2)
  assert [s.name for s in samples] == ['im_1', 'im_2', 'im_10']
  s10 = samples[2]
  assert s10.hr_path.endswith('img_10_gt.png')
  assert s10.kernel_path.endswith('kernel_10.mat')
  k = data.load_kernel(s10.kernel_path)
  assert k.shape == (11, 11) and np.isclose(k[0, 0], 10 / 121.0)
  with pytest.raises(errors.UserError, match='lr_x4'):
    datasets.load_dataset('div2krk', str(tmp_path), scale=4)


def test_realsr(tmp_path):
  canon = tmp_path / 'Canon' / 'Test' / '2'
  nikon = tmp_path / 'Nikon' / 'Test' / '4'
  _png(canon / 'Canon_001_HR.png')
  _png(canon / 'Canon_001_LR2.png', 4)
  _png(nikon / 'Nikon_050_HR.png')
  _png(nikon / 'Nikon_050_LR4.png', 2)
  x2 = datasets.load_dataset('realsr', str(tmp_path), scale=2)
  assert len(x2) == 1
  assert x2[0].name == os.path.join('Canon', 'Test', '2', 'Canon_001')
  assert x2[0].hr_path == str(canon / 'Canon_001_HR.png')
  x4 = datasets.load_dataset('realsr', str(tmp_path), scale=4)
  assert [s.lr_path for s in x4] == [str(nikon / 'Nikon_050_LR4.png')]
  assert x4[0].hr_path == str(nikon / 'Nikon_050_HR.png')


@pytest.mark.parametrize('name', ['div2k', 'div2krk', 'realsr'])
def test_missing_or_empty_dataset(tmp_path, name):
  for root in (None, str(tmp_path / 'absent'), str(tmp_path)):
    with pytest.raises(errors.UserError) as e:
      datasets.load_dataset(name, root)
    assert '\n' not in str(e.value)


def test_bad_name_and_scale(tmp_path):
  with pytest.raises(errors.UserError, match='unknown data set'):
    datasets.load_dataset('set5', str(tmp_path))
  with pytest.raises(errors.UserError, match='scale'):
    datasets.load_dataset('offline', str(tmp_path), scale=3)


def test_offline_builder(tmp_path):
  samples = datasets.load_dataset('offline', str(tmp_path), scale=2,
                                  num_images=2, hr_size=64)
  assert [s.name for s in samples] == ['astronaut', 'chelsea']
  for s in samples:
    hr, lr = iio.imread(s.hr_path), iio.imread(s.lr_path)
    assert hr.shape == (64, 64, 3) and lr.shape == (32, 32, 3)
    k = data.load_kernel(s.kernel_path)
    assert k.shape == (11, 11)
    np.testing.assert_allclose(kernel.center_of_mass(k), [5.5, 5.5],
                               atol=1e-3)
  # Cached files are kept; a missing one is rebuilt with the same bytes.
  lr_bytes = open(samples[1].lr_path, 'rb').read()
  hr_mtime = os.path.getmtime(samples[1].hr_path)
  os.remove(samples[1].lr_path)
  again = datasets.offline(cache_dir=str(tmp_path), scale=2, num_images=2,
                           hr_size=64)
  assert again == samples
  assert open(samples[1].lr_path, 'rb').read() == lr_bytes
  assert os.path.getmtime(samples[1].hr_path) == hr_mtime
  assert not [f for f in os.listdir(os.path.dirname(samples[0].lr_path))
              if '.tmp' in f]


def test_offline_nonlinear_x4(tmp_path):
  samples = datasets.offline(cache_dir=str(tmp_path), scale=4, kind='median',
                             num_images=1, hr_size=66)
  assert samples[0].kernel_path is None
  assert iio.imread(samples[0].hr_path).shape == (64, 64, 3)
  assert iio.imread(samples[0].lr_path).shape == (16, 16, 3)
  with pytest.raises(errors.UserError):
    datasets.offline(cache_dir=str(tmp_path), num_images=99)
