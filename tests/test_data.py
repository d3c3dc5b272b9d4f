"""Tests for ike_jax.data: loading, conversions and the crop sampler."""

import struct
import zlib

import numpy as np
from PIL import Image
import pytest
from scipy.signal import convolve2d

from ike_jax import crops
from ike_jax import data
from ike_jax.errors import InputError
from ike_jax.errors import UserError


def _rgb(h=6, w=8, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def _load(path):
  notes = []
  img = data.load_image(path, log=notes.append)
  return img, notes


def _png16(path, arr, colour_type):
  """Writes a 16-bit PNG by hand (PIL cannot write 16-bit RGB)."""
  h, w = arr.shape[:2]
  rows = b''.join(b'\x00' + arr[i].astype('>u2').tobytes() for i in range(h))

  def chunk(tag, body):
    crc = zlib.crc32(tag + body) & 0xffffffff
    return struct.pack('>I', len(body)) + tag + body + struct.pack('>I', crc)

  header = struct.pack('>IIBBBBB', w, h, 16, colour_type, 0, 0, 0)
  path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
                   + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def _assert_one_line_input_error(path, *words):
  with pytest.raises(InputError) as info:
    data.load_image(path, log=lambda _: None)
  msg = str(info.value)
  assert msg and '\n' not in msg
  for word in words:
    assert word in msg
  return msg


# --- Loading ---------------------------------------------------------------


def test_rgb_png_roundtrip(tmp_path):
  arr = _rgb()
  Image.fromarray(arr).save(tmp_path / 'a.png')
  img, notes = _load(tmp_path / 'a.png')
  assert img.dtype == np.uint8 and img.shape == (6, 8, 3)
  np.testing.assert_array_equal(img, arr)
  assert not notes


def test_missing_file(tmp_path):
  _assert_one_line_input_error(tmp_path / 'nope.png', 'no such file')


def test_directory(tmp_path):
  _assert_one_line_input_error(tmp_path, 'directory')


@pytest.mark.parametrize('content', [b'', b'hello, not an image\n' * 10])
def test_not_an_image(tmp_path, content):
  path = tmp_path / 'x.png'
  path.write_bytes(content)
  _assert_one_line_input_error(path, str(path))


@pytest.mark.parametrize('fmt', ['PNG', 'JPEG'])
def test_truncated(tmp_path, fmt):
  path = tmp_path / f'a.{fmt.lower()}'
  Image.fromarray(_rgb(64, 64)).save(path, format=fmt)
  raw = path.read_bytes()
  path.write_bytes(raw[:len(raw) // 2])
  _assert_one_line_input_error(path, str(path))


def test_corrupt_png_data(tmp_path):
  path = tmp_path / 'a.png'
  Image.fromarray(_rgb(64, 64)).save(path)
  raw = bytearray(path.read_bytes())
  mid = len(raw) // 2
  raw[mid:mid + 40] = bytes(40)
  path.write_bytes(bytes(raw))
  _assert_one_line_input_error(path, str(path))


def test_greyscale_replicated(tmp_path):
  grey = _rgb()[..., 0]
  Image.fromarray(grey, 'L').save(tmp_path / 'g.png')
  img, notes = _load(tmp_path / 'g.png')
  assert img.shape == (6, 8, 3) and img.dtype == np.uint8
  for c in range(3):
    np.testing.assert_array_equal(img[..., c], grey)
  assert len(notes) == 1 and 'grey' in notes[0]


def test_grey_alpha(tmp_path):
  la = np.stack([_rgb()[..., 0], np.full((6, 8), 7, np.uint8)], -1)
  Image.fromarray(la, 'LA').save(tmp_path / 'la.png')
  img, notes = _load(tmp_path / 'la.png')
  assert img.shape == (6, 8, 3)
  np.testing.assert_array_equal(img[..., 1], la[..., 0])
  assert any('alpha' in n and 'warning' in n for n in notes)
  assert any('grey' in n for n in notes)


def test_rgba_alpha_dropped(tmp_path):
  rgba = np.concatenate([_rgb(), np.full((6, 8, 1), 0, np.uint8)], -1)
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'a.png')
  img, notes = _load(tmp_path / 'a.png')
  np.testing.assert_array_equal(img, rgba[..., :3])
  assert len(notes) == 1 and 'alpha' in notes[0] and 'warning' in notes[0]


def test_palette(tmp_path):
  palette = np.random.default_rng(1).integers(0, 256, (256, 3), np.uint8)
  idx = np.random.default_rng(2).integers(0, 256, (6, 8), np.uint8)
  im = Image.fromarray(idx, 'L')
  im = im.convert('P')
  im.putpalette(palette.ravel().tolist())
  im.save(tmp_path / 'p.png')
  img, notes = _load(tmp_path / 'p.png')
  np.testing.assert_array_equal(img, palette[idx])
  assert any('palette' in n for n in notes)


def test_cmyk(tmp_path):
  cmyk = np.zeros((2, 3, 4), np.uint8)
  cmyk[0, 0] = (255, 0, 0, 0)  # cyan
  cmyk[0, 1] = (0, 0, 0, 255)  # black
  cmyk[0, 2] = (0, 255, 255, 0)  # red
  Image.fromarray(cmyk, 'CMYK').save(tmp_path / 'c.tif')
  img, notes = _load(tmp_path / 'c.tif')
  assert img.shape == (2, 3, 3)
  np.testing.assert_array_equal(img[0], [[0, 255, 255], [0, 0, 0],
                                         [255, 0, 0]])
  np.testing.assert_array_equal(img[1], np.full((3, 3), 255))
  assert any('CMYK' in n for n in notes)


def test_16bit_grey_scaled_not_clipped(tmp_path):
  values = np.array([[0, 257, 32896, 65535], [128, 129, 65280, 1000]],
                    np.uint16)
  _png16(tmp_path / 'g16.png', values, colour_type=0)
  assert Image.open(tmp_path / 'g16.png').mode.startswith('I')
  img, notes = _load(tmp_path / 'g16.png')
  assert img.dtype == np.uint8 and img.shape == (2, 4, 3)
  expected = np.round(values / 257.0).astype(np.uint8)
  np.testing.assert_array_equal(img[..., 0], expected)
  np.testing.assert_array_equal(img[0, :, 2], [0, 1, 128, 255])
  assert any('16-bit' in n for n in notes)


def test_exif_orientation_applied(tmp_path):
  arr = _rgb(4, 6)
  exif = Image.Exif()
  exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
  Image.fromarray(arr).save(tmp_path / 'e.png', exif=exif)
  img, notes = _load(tmp_path / 'e.png')
  assert img.shape == (6, 4, 3)
  np.testing.assert_array_equal(img, np.rot90(arr, k=-1))
  assert any('EXIF' in n for n in notes)


# --- Conversions -----------------------------------------------------------


def test_model_range_round_trip():
  u8 = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)
  x = data.to_model(u8)
  assert x.dtype == np.float32
  assert x.min() == -1.0 and x.max() == 1.0
  back = data.from_model(x)
  assert back.dtype == np.uint8
  np.testing.assert_array_equal(back, u8)


def test_from_model_clips_and_rounds():
  np.testing.assert_array_equal(
      data.from_model(np.array([-3.0, -1.0, 0.0, 1.0, 5.0])),
      [0, 0, 128, 255, 255])
  # 0 is the only in-range input that lands exactly on a half (127.5).
  np.testing.assert_array_equal(
      data.from_model(np.array([126.49, 126.51]) / 127.5 - 1), [126, 127])


def test_trim_to_multiple():
  img = np.zeros((11, 14, 3))
  out, trimmed = crops.trim_to_multiple(img, 4)
  assert out.shape == (8, 12, 3) and trimmed == (3, 2)
  out, trimmed = crops.trim_to_multiple(img[:8, :12], 4)
  assert out.shape == (8, 12, 3) and trimmed == (0, 0)


# --- Sampler ---------------------------------------------------------------


@pytest.mark.parametrize('k', [1, 2, 3, 4, 5, 8])
def test_box_filter_matches_convolve2d(k):
  x = np.random.default_rng(k).random((13, 17))
  np.testing.assert_allclose(
      crops.box_filter_same(x, k), convolve2d(x, np.ones((k, k)), 'same'),
      rtol=1e-12, atol=1e-12)


def test_clip_extreme_is_top_three_percent_indicator():
  m = np.random.default_rng(0).permutation(1000).astype(np.float64)
  out = crops._clip_extreme(m, 0.97)  # pylint: disable=protected-access
  assert np.count_nonzero(out) == 29  # values above sorted[970]
  assert np.all(out[m <= 970] == 0)
  assert np.all(out[m > 970] == 1.0)


def test_gradient_map_flat_image_is_uniform():
  np.testing.assert_array_equal(
      crops.gradient_map(np.full((20, 20, 3), 0.5)), np.ones((20, 20)))


def _half_textured(h=96, w=256, seed=0):
  img = np.full((h, w, 3), 128, np.uint8)
  rng = np.random.default_rng(seed)
  img[:, w // 2:] = rng.integers(0, 256, (h, w - w // 2, 3), np.uint8)
  return img


@pytest.mark.parametrize('scale', [2, 4])
def test_crops_prefer_texture(scale):
  img = _half_textured()
  crop = 32
  plan = crops.plan_crops(img, scale, crop, iterations=2000, seed=0)
  w = img.shape[1]
  for corners, size in ((plan.g_corners, crop),
                        (plan.d_corners, crop // scale)):
    centre_cols = corners[:, 1] + size // 2
    assert np.mean(centre_cols >= w // 2) > 0.95
    # The rest only come from the blur spilling over the edge: none are
    # deep in the flat half.
    assert centre_cols.min() >= w // 2 - crop


def test_probability_maps_zero_near_border():
  img = _half_textured()
  g_map, d_map = crops.crop_probability_maps(img, 2, 32)
  for prob, half in ((g_map, 16), (d_map, 8)):
    assert prob.shape == img.shape[:2]
    np.testing.assert_allclose(prob.sum(), 1.0)
    assert np.all(prob >= 0)
    assert prob[:half].sum() == 0 and prob[-half:].sum() == 0
    assert prob[:, :half].sum() == 0 and prob[:, -half:].sum() == 0


@pytest.mark.parametrize('scale,crop', [(2, 32), (4, 32), (2, 40)])
def test_corners_even_and_inside(scale, crop):
  img = _rgb(101, 75, seed=3)  # odd sides: trimmed to multiples of scale.
  h, w = img.shape[0] // scale * scale, img.shape[1] // scale * scale
  plan = crops.plan_crops(img, scale, crop, iterations=500, seed=1)
  assert isinstance(plan, crops.CropPlan)
  for corners, size in ((plan.g_corners, crop),
                        (plan.d_corners, crop // scale)):
    assert corners.shape == (500, 2) and corners.dtype == np.int32
    assert np.all(corners % 2 == 0)
    assert np.all(corners >= 0)
    assert np.all(corners[:, 0] + size <= h)
    assert np.all(corners[:, 1] + size <= w)


def test_flat_image_still_samples():
  plan = crops.plan_crops(np.full((64, 64, 3), 9, np.uint8), 2, 32, 100, 0)
  assert plan.g_corners.shape == (100, 2)
  assert np.all(plan.g_corners + 32 <= 64)


def test_sample_crop_corners_clamps_and_rounds_down():
  prob = np.zeros((20, 30))
  prob[19, 29] = 1.0  # centre in the corner: clamped to (20-9, 30-9) = odd.
  corners = crops.sample_crop_corners(prob, 9, 3, np.random.default_rng(0))
  np.testing.assert_array_equal(corners, [[10, 20]] * 3)


def test_plan_is_deterministic_by_seed():
  img = _half_textured(64, 128)
  a = crops.plan_crops(img, 2, 32, 300, seed=5)
  b = crops.plan_crops(img, 2, 32, 300, seed=5)
  c = crops.plan_crops(img, 2, 32, 300, seed=6)
  np.testing.assert_array_equal(a.g_corners, b.g_corners)
  np.testing.assert_array_equal(a.d_corners, b.d_corners)
  assert not np.array_equal(a.g_corners, c.g_corners)


@pytest.mark.parametrize('shape', [(100, 300, 3), (300, 127, 3)])
def test_too_small_image(shape):
  with pytest.raises(InputError) as info:
    crops.plan_crops(np.zeros(shape, np.uint8), 2, 128, 10, 0)
  msg = str(info.value)
  assert '--crop' in msg and '128' in msg and '\n' not in msg


def test_crop_too_small_for_scale():
  with pytest.raises(UserError):
    crops.plan_crops(np.zeros((64, 64, 3), np.uint8), 4, 4, 10, 0)
