"""Each resize mode against an independent NumPy transcription of its definition."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ike_jax import resize


def _keys(x, a):
  x = abs(x)
  if x <= 1:
    return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
  if x < 2:
    return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
  return 0.0


def torch_bicubic_reference(img, scale):
  """Per-pixel PyTorch upsample_bicubic2d(align_corners=True), (H, W) image."""
  h, w = img.shape
  ho, wo = math.floor(h * scale), math.floor(w * scale)
  sy = (h - 1) / (ho - 1) if ho > 1 else 0.0
  sx = (w - 1) / (wo - 1) if wo > 1 else 0.0
  out = np.zeros((ho, wo))
  for oy in range(ho):
    for ox in range(wo):
      ry, rx = oy * sy, ox * sx
      iy, ix = math.floor(ry), math.floor(rx)
      ty, tx = ry - iy, rx - ix
      acc = 0.0
      for m in range(-1, 3):
        for n in range(-1, 3):
          yy = min(max(iy + m, 0), h - 1)
          xx = min(max(ix + n, 0), w - 1)
          acc += img[yy, xx] * _keys(m - ty, -0.75) * _keys(n - tx, -0.75)
      out[oy, ox] = acc
  return out


def matlab_reference_1d(vec, scale):
  """MATLAB imresize's `contributions` + mirror padding, on a 1-D signal."""
  n = len(vec)
  n_out = math.ceil(n * scale)
  kw = 4 / scale if scale < 1 else 4
  out = np.zeros(n_out)
  aux = list(range(1, n + 1)) + list(range(n, 0, -1))
  for x in range(1, n_out + 1):
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = math.floor(u - kw / 2)
    idx = [left + j for j in range(math.ceil(kw) + 2)]
    if scale < 1:
      wts = [scale * _keys(scale * (u - i), -0.5) for i in idx]
    else:
      wts = [_keys(u - i, -0.5) for i in idx]
    total = sum(wts)
    for i, wt in zip(idx, wts):
      out[x - 1] += wt / total * vec[aux[(i - 1) % (2 * n)] - 1]
  return out


@pytest.mark.parametrize('shape,scale', [((16, 12), 0.5), ((16, 16), 0.25), ((8, 6), 2), ((6, 7), 4),
                                         ((128, 128), 0.5)])
def test_torch_align_corners_matches_reference(shape, scale):
  img = np.random.default_rng(0).normal(size=shape)
  got = resize.torch_align_corners(jnp.asarray(img, jnp.float32)[None, :, :, None], scale)
  np.testing.assert_allclose(np.asarray(got)[0, :, :, 0], torch_bicubic_reference(img, scale),
                             atol=1e-5)


def test_torch_align_corners_grid_is_corner_aligned():
  # 128 -> 64: the step is 127/63, so the last output pixel is the last input.
  img = np.random.default_rng(1).normal(size=(1, 128, 128, 1)).astype(np.float32)
  out = np.asarray(resize.torch_align_corners(jnp.asarray(img), 0.5))
  assert out.shape == (1, 64, 64, 1)
  np.testing.assert_allclose(out[0, 0, 0], img[0, 0, 0], atol=1e-6)
  np.testing.assert_allclose(out[0, -1, -1], img[0, -1, -1], atol=1e-6)


@pytest.mark.parametrize('n,scale', [(10, 0.5), (17, 0.25), (7, 2.0), (5, 4.0)])
def test_matlab_matches_reference(n, scale):
  rng = np.random.default_rng(2)
  img = rng.normal(size=(n, n + 3))
  got = resize.imresize_matlab(img, scale)
  rows = np.stack([matlab_reference_1d(r, scale) for r in img])
  want = np.stack([matlab_reference_1d(c, scale) for c in rows.T]).T
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_matlab_hand_derived_values():
  # imresize([1 2 3 4], 0.5, 'bicubic') worked by hand from MATLAB's algorithm:
  # taps 0.5*cubic(0.5*d) at d = +-0.5, +-1.5, +-2.5, +-3.5 with mirrored indices.
  got = resize.imresize_matlab(np.array([[1, 2, 3, 4]], np.float32), 0.5)
  np.testing.assert_allclose(got, [[1.4609375, 3.5390625]], atol=1e-6)
  # Constant images stay constant (weights sum to 1), in both directions.
  const = np.full((9, 9), 7.0)
  np.testing.assert_allclose(resize.imresize_matlab(const, 0.5), 7.0, atol=1e-5)
  np.testing.assert_allclose(resize.imresize_matlab(const, 2), 7.0, atol=1e-5)


def test_kernelgan_kernel_values_and_conv():
  k = resize.KERNELGAN_BICUBIC_8X8
  assert k.shape == (8, 8)
  np.testing.assert_allclose(k.sum(), 1.0, atol=1e-12)
  np.testing.assert_allclose(k[3, 3], 0.188003540039063, atol=1e-12)
  np.testing.assert_allclose(k[0, 0], 0.0001373291015625, atol=1e-15)
  rng = np.random.default_rng(3)
  img = rng.normal(size=(16, 16, 3)).astype(np.float32)
  for mix in (False, True):
    got = np.asarray(resize.bicubic_kernel_down(jnp.asarray(img)[None], 2, mix))[0]
    padded = np.pad(img, ((3, 3), (3, 3), (0, 0)))
    want = np.zeros((8, 8, 3))
    for i in range(8):
      for j in range(8):
        patch = padded[2 * i:2 * i + 8, 2 * j:2 * j + 8]       # (8, 8, 3)
        per_colour = np.einsum('ab,abc->c', k, patch)
        want[i, j] = per_colour.sum() if mix else per_colour
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_resizes_jit_and_differentiate():
  x = jnp.ones((1, 8, 8, 2))
  f = jax.jit(lambda x: resize.torch_align_corners(resize.matlab(x, 0.5), 2).sum())
  assert np.isfinite(float(f(x)))
  g = jax.grad(f)(x)
  assert g.shape == x.shape
  # The map is linear: a unit step at a pixel changes the sum by its gradient there.
  for idx in [(0, 0, 0, 0), (0, 3, 5, 1), (0, 7, 7, 0)]:
    step = float(f(x.at[idx].add(1.0)) - f(x))
    assert step == pytest.approx(float(g[idx]), abs=1e-4)


@pytest.mark.parametrize('scale', [2, 4])
@pytest.mark.parametrize('band', [1, 5, 16])
def test_bicubic_in_bands_is_bicubic_in_one_piece(scale, band):
  """A photo up-scaled a band of rows at a time (memory: one band) is the same
  image as up-scaled whole."""
  x = np.random.default_rng(band).integers(0, 256, (53, 37, 3)).astype(np.uint8)
  whole = np.clip(np.round(np.asarray(resize.matlab_upscale(x.astype(np.float32), scale))),
                  0, 255).astype(np.uint8)
  np.testing.assert_array_equal(resize.bicubic_upscale(x, scale, band=band), whole)
