"""Tests for ike_jax.kernel: G's kernel by probing, its error and its files."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from scipy import io as sio
from scipy import ndimage

from tests import reference

from benchmarks import degradations
from ike_jax import colours
from ike_jax import config
from ike_jax import estimators
from ike_jax.estimators import flow
from ike_jax import kernel
from ike_jax import layers
from ike_jax import outputs
from ike_jax import report
from ike_jax import resize
from ike_jax.estimators import readout


def _shapes(cfg):
  return jax.eval_shape(lambda: flow.init(jax.random.PRNGKey(0), cfg))


@functools.lru_cache(maxsize=None)
def _perturbed(cfg, scale=0.3):
  """Init-like params plus N(0, scale^2 / fan-in) noise: far from bicubic.

  Drawn in NumPy: eager `init_flow` compiles one sampler per shape (slow).
  """
  rng = np.random.default_rng(1)

  def draw(leaf):
    fan_in = int(np.prod(leaf.shape[:-1]))
    init = np.sqrt(0.02 / (fan_in + leaf.shape[-1])) if len(leaf.shape) > 1 else 0
    std = np.sqrt(init**2 + scale**2 / fan_in)
    return jnp.asarray(rng.normal(0, std, leaf.shape), jnp.float32)

  return jax.tree.map(draw, _shapes(cfg))


def _zero(cfg):
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), _shapes(cfg))


def _smooth_image(side, seed=0):
  """(side, side, 3) smooth random image in [-1, 1]."""
  img = np.random.default_rng(seed).uniform(-1, 1, (side, side, 3))
  img = ndimage.gaussian_filter(img, (1.5, 1.5, 0))
  return img / np.abs(img).max()


def _lr_minus_f0(params, cfg, img):
  """G's LR image of `img` minus its LR image of 0, (h, w, 3) float64.

  Batched as (4, H, W, 1), the shape `readout.nonlinearity` compiled.
  """
  batch = jnp.concatenate([jnp.zeros((1, *img.shape[:2], 1)),
                           colours.colours_to_batch(jnp.asarray(img, jnp.float32))])
  out = np.asarray(readout._lr(params, batch, cfg), np.float64)
  return np.moveaxis(out[1:, ..., 0] - out[0, ..., 0], 0, -1)


@pytest.mark.parametrize('scale,blocks,side', [(2, 2, 96), (4, 1, 128)])
@pytest.mark.parametrize('fuse', [True, False])
def test_kernel_reproduces_lr_map_without_residual(scale, blocks, side, fuse):
  cfg = config.Config.create(scale=scale, blocks=blocks, fuse_linear=fuse,
                      bicubic_residual=False).train
  params = _perturbed(cfg)
  radius = flow.receptive_radius(cfg)
  est = readout.estimate_kernel(params, cfg, size=2 * radius + 1, probe=side)
  assert est['linear'] and est['nonlinearity'] < 1e-5
  np.testing.assert_allclose(est['per_colour'], est['per_colour'][:1].repeat(3, 0))
  assert abs(est['sum'] - 1) > 0.01  # far from a bicubic map
  img = _smooth_image(side)
  want = _lr_minus_f0(params, cfg, img)
  got = kernel.degrade(img, est['per_colour'], scale, est['origin'],
                            mode='constant')
  m = -(-radius // scale)  # LR pixels whose receptive field is inside
  assert want.shape[0] - 2 * m >= 8
  np.testing.assert_allclose(got[m:-m, m:-m], want[m:-m, m:-m], atol=1e-4)


@pytest.mark.parametrize('scale,side', [(2, 96), (4, 160)])
def test_residual_path_is_exact_at_centre_and_drifts_measurably(scale, side):
  """The align-corners resizes are shift-variant; the bound is measured.

  With a probe the size of the image, the kernel is exact at the centre LR
  pixel c. Elsewhere the error at LR pixel p stays below
  0.5 * |p - c|_1 * (s-1)/(h-1) * max|grad x| * ||k||_1 (the kernel's drift
  times a first-order Taylor bound); measured factors are 0.08-0.24 (x2 and
  x4, 1-4 blocks, fused or not, blur sigma 0.7-3), so 0.5 leaves 2x room.
  """
  cfg = config.Config.create(scale=scale, blocks=1).train
  params = _perturbed(cfg)
  radius = flow.receptive_radius(cfg)
  est = readout.estimate_kernel(params, cfg, size=2 * radius + 1, probe=side)
  assert est['linear']
  img = _smooth_image(side)
  want = _lr_minus_f0(params, cfg, img)
  got = kernel.degrade(img, est['kernel'], scale, est['origin'],
                            mode='constant')
  h, c, m = side // scale, side // scale // 2, -(-radius // scale)
  err = np.abs(got - want).max(-1)[m:h - m, m:h - m]
  idx = np.arange(m, h - m)
  dist = np.abs(idx[:, None] - c) + np.abs(idx[None, :] - c)
  assert err[c - m, c - m] < 1e-5
  grad = max(np.abs(np.diff(img, axis=a)).max() for a in (0, 1))
  bound = 0.5 * dist * (scale - 1) / (h - 1) * grad * np.abs(est['kernel']).sum()
  assert (err <= bound + 1e-5).all()
  assert err.max() > 1e-3  # the drift is real, not a round-off effect


@pytest.mark.parametrize('scale', [2, 4])
@pytest.mark.parametrize('squeeze', ['haar', 'space_to_depth'])
def test_zero_subnets_without_residual_give_box_or_delta(scale, squeeze):
  cfg = config.Config.create(scale=scale, blocks=1, squeeze=squeeze,
                      bicubic_residual=False).train
  est = readout.estimate_kernel(_zero(cfg), cfg)
  size = kernel.DEFAULT_SIZE[scale]
  want = np.zeros((size, size))
  r = est['origin'][0]
  assert est['origin'][0] == est['origin'][1]
  if squeeze == 'haar':
    # Block mean: the origin is the block's top-left, centred on the crop.
    assert r == size // 2
    want[r:r + scale, r:r + scale] = 1 / scale**2
    np.testing.assert_allclose(est['center_of_mass'],
                               [kernel.kernel_center(size, scale)] * 2)
  else:
    # The block's top-left pixel, within half a pixel of KernelGAN's centre.
    want[r, r] = 1.0
    assert abs(r - kernel.kernel_center(size, scale)) <= 0.5
  np.testing.assert_allclose(est['kernel'], want, atol=1e-6)
  np.testing.assert_allclose(est['per_colour'], np.stack([want] * 3), atol=1e-6)
  assert est['sum'] == pytest.approx(1.0, abs=1e-6)
  assert est['linear']
  # Its own kernel degrades exactly as G (zero subnets: G is exactly linear).
  img = _smooth_image(est['probe_shape'][0])  # the shape already compiled
  np.testing.assert_allclose(
      kernel.degrade(img, est['kernel'], scale, est['origin']),
      _lr_minus_f0(_zero(cfg), cfg, img), atol=1e-6)


@pytest.mark.parametrize('scale,squeeze', [(2, 'space_to_depth'), (2, 'haar'),
                                           (4, 'space_to_depth')])
def test_zero_subnets_with_residual_match_resize_matrices(scale, squeeze):
  """LR = D x + S (x - U D x): D/U align-corners, S G's squeeze, all separable."""
  cfg = config.Config.create(scale=scale, blocks=1, squeeze=squeeze).train
  side = readout.default_probe_side(cfg)
  est = readout.estimate_kernel(_zero(cfg), cfg, probe=side)
  h = side // scale
  down = resize.align_corners_matrix(side, h).astype(np.float64)
  up = resize.align_corners_matrix(h, side).astype(np.float64)
  sel = np.zeros((h, side))
  for o in range(h):
    if squeeze == 'haar':
      sel[o, scale * o:scale * (o + 1)] = 1 / scale
    else:
      sel[o, scale * o] = 1.0
  c = h // 2
  d, t = down[c], (sel @ up @ down)[c]
  full = np.outer(d, d) + np.outer(sel[c], sel[c]) - np.outer(t, t)
  size = kernel.DEFAULT_SIZE[scale]
  start = scale * c - np.array(est['origin'])
  want = full[start[0]:start[0] + size, start[1]:start[1] + size]
  np.testing.assert_allclose(est['kernel'], want, atol=1e-6)
  # The up-down chain reaches past the crop; the cut tails are small.
  assert np.abs(full).sum() - np.abs(want).sum() < 0.01
  assert full.sum() == pytest.approx(1.0, abs=1e-6)
  assert est['sum'] == pytest.approx(want.sum(), abs=1e-5)


def test_kernel_error():
  rng = np.random.default_rng(0)
  true, _ = degradations.div2krk_kernel(rng, 2)
  other, _ = degradations.div2krk_kernel(rng, 2)
  assert kernel.kernel_error(true, true) == 0
  assert kernel.kernel_error(3 * true, true) == pytest.approx(0, abs=1e-20)
  # Integer shifts and zero padding do not count.
  shifted = np.pad(true, ((3, 0), (0, 2)))
  assert kernel.kernel_error(shifted, true) == pytest.approx(0, abs=1e-20)
  err = kernel.kernel_error(other, true)
  assert err > 0
  assert kernel.kernel_error(np.pad(other, ((0, 4), (1, 1))), true) == pytest.approx(err)
  assert kernel.kernel_error(np.roll(np.pad(other, 2), (1, -2), (0, 1)),
                             true) == pytest.approx(err)
  # Different sizes: x4 true kernel (31) against a 23x23 crop of itself.
  true4, _ = degradations.div2krk_kernel(rng, 4)
  assert 0 < kernel.kernel_error(true4[4:27, 4:27], true4) < 1e-3
  with pytest.raises(ValueError):
    kernel.kernel_error(np.zeros((5, 5)), true)


def test_degrade_convention_matches_ndimage():
  img = np.random.default_rng(2).uniform(0, 255, (30, 26, 3))
  k, _ = degradations.div2krk_kernel(np.random.default_rng(3), 2)
  np.testing.assert_allclose(kernel.degrade(img, k, 2), reference.ndimage_degrade(img, k, 2),
                             rtol=1e-5, atol=1e-3)
  # origin moves the kernel: a delta at origin is a pure subsample.
  delta = np.zeros((5, 5))
  delta[1, 3] = 1
  np.testing.assert_array_equal(  # float32 in, float32 out: exact
      kernel.degrade(img[..., 0], delta, 2, origin=(1, 3)),
      img[::2, ::2, 0].astype(np.float32))


@pytest.mark.parametrize('kw', [dict(linear=False), dict(coupling='affine')])
def test_nonlinear_flow_is_flagged(kw):
  # Two blocks: with one affine block the LR channel never sees exp(s(u)).
  cfg = config.Config.create(scale=2, blocks=2, **kw).train
  est = readout.estimate_kernel(_perturbed(cfg), cfg)
  assert not est['linear']
  assert est['nonlinearity'] > readout.LINEAR_TOL
  assert np.isfinite(est['kernel']).all()


def test_write_kernel_files(tmp_path):
  cfg = config.Config.create(scale=2, blocks=1).train
  out = outputs.OutputDir(tmp_path, overwrite=False)
  true, _ = degradations.div2krk_kernel(np.random.default_rng(0), 2)
  names = report.output_names('img', 2)
  assert [names[k] for k in ('kernel_npy', 'kernel_png', 'kernel_mat')] == [
      'img_kernel.npy', 'img_kernel.png', 'img_kernel.mat']
  res = report.write_kernel_files(out, names, readout.estimate_kernel(_perturbed(cfg), cfg), true)
  k = np.load(tmp_path / 'img_kernel.npy', allow_pickle=False)
  assert k.shape == (11, 11)
  np.testing.assert_array_equal(sio.loadmat(tmp_path / 'img_kernel.mat')['Kernel'], k)
  with Image.open(tmp_path / 'img_kernel.png') as png:
    assert png.format == 'PNG' and png.size[0] > png.size[1]
  assert res['kernel_linear'] is True
  assert res['kernel_sum'] == pytest.approx(k.sum(), abs=1e-5)
  assert res['kernel_error'] == pytest.approx(kernel.kernel_error(k, true))
  assert not list(tmp_path.glob('.*.tmp'))
  res = report.write_kernel_files(out, report.output_names('no_truth', 2),
                                  readout.estimate_kernel(_perturbed(cfg), cfg))
  assert 'kernel_error' not in res
  assert (tmp_path / 'no_truth_kernel.png').stat().st_size > 0
  # A blended companion kernel is shown as one more panel: a wider picture.
  est = readout.estimate_kernel(_perturbed(cfg), cfg)
  est = dict(est, companion_kernel=np.stack([est['kernel']] * 3), companion_weight=0.25)
  report.write_kernel_files(out, report.output_names('companion', 2), est, true)
  with Image.open(tmp_path / 'img_kernel.png') as two, \
      Image.open(tmp_path / 'companion_kernel.png') as three:
    assert three.size[0] > 1.3 * two.size[0] and three.size[1] == two.size[1]


@pytest.mark.parametrize('scale', [2, 4])
def test_impulse_response_is_the_estimated_kernel(scale):
  # The differentiable probe the kernel priors train on is the same map that
  # `estimate_kernel` reads out (linear G, no residual), centred alike.
  cfg = config.Config.create(scale=scale, blocks=1, bicubic_residual=False).train
  params = _perturbed(cfg)
  side = readout.default_probe_side(cfg)
  k = np.asarray(readout.impulse_response(flow.prepare(params, cfg), cfg, side))
  est = readout.estimate_kernel(params, cfg)
  top = scale * (side // scale // 2) - np.asarray(est['origin'])
  size = est['kernel'].shape[0]
  np.testing.assert_allclose(k[top[0]:top[0] + size, top[1]:top[1] + size],
                             est['kernel'], atol=1e-5)
  grad = jax.grad(lambda p: jnp.sum(readout.impulse_response(flow.prepare(p, cfg), cfg, side)))(params)
  assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grad))


def test_kernel_priors_on_hand_made_kernels():
  from ike_jax import losses  # pylint: disable=g-import-not-at-top
  side, s = 24, 2
  centre = side // 2 + 0.5
  yy, xx = np.mgrid[:side, :side]
  blur = np.exp(-((yy - centre) ** 2 + (xx - centre) ** 2) / 2.0)
  blur /= blur.sum()
  good = losses.kernel_priors(jnp.asarray(blur, jnp.float32), s, 5.5)
  assert float(good['sum2one']) < 1e-5 and float(good['negative']) == 0
  assert float(good['boundaries']) < 1e-6 and float(good['centralized']) < 1e-6
  far = np.roll(blur, 8, axis=1)  # mass outside the window, off-centre
  bad = losses.kernel_priors(jnp.asarray(3 * far - blur, jnp.float32), s, 5.5)
  assert float(bad['sum2one']) > 0.5 and float(bad['negative']) > 0.3
  assert float(bad['boundaries']) > 0.5 and float(bad['centralized']) > 1.0


def test_self_check_is_zero_for_the_true_kernel_and_grows_with_a_wrong_one():
  # Synthetic case: LR = degrade(HR, k) exactly (float); the HR image is the
  # ideal SR image. Under the true kernel the check is 0 (up to float error);
  # a too-narrow or too-wide kernel leaves a clear residual.
  rng = np.random.default_rng(0)
  hr = ndimage.gaussian_filter(rng.uniform(0, 255, (64, 64, 3)), (1.5, 1.5, 0))
  true = degradations.fixed_gaussian_kernel(2.5, 1.0, 0.4)
  lr = np.asarray(kernel.degrade(hr, true, 2))
  check = kernel.self_check(hr, lr, true, 2)
  narrow = kernel.self_check(hr, lr, degradations.fixed_gaussian_kernel(0.4, 0.4, 0.0), 2)
  wide = kernel.self_check(hr, lr, degradations.fixed_gaussian_kernel(6.0, 6.0, 0.0), 2)
  assert check < 1e-3 < 0.1 < min(narrow, wide)
  # Per-colour kernels work the same way; a mismatched LR is an error.
  assert kernel.self_check(hr, lr, np.stack([true] * 3), 2) == pytest.approx(check, abs=1e-4)
  with pytest.raises(ValueError, match='not the LR'):
    kernel.self_check(hr, lr[:-1], true, 2)


@pytest.mark.parametrize('scale,size,origin,per_colour', [
    (2, 11, None, False), (2, 11, (3, 8), True), (4, 31, None, False), (4, 31, (12, 20), True)])
def test_degrade_fft_route_equals_the_convolution(monkeypatch, scale, size, origin, per_colour):
  # Kernels of 7x7 taps or more blur by FFT on the CPU; it must be the same
  # map as the strided convolution, in values and in its transpose (the
  # back-projection's gradient).
  rng = np.random.default_rng(5)
  img = jnp.asarray(rng.uniform(-1, 1, (6 * scale + 5, 5 * scale + 3, 3)), jnp.float32)
  k = rng.uniform(0, 1, (3, size, size) if per_colour else (size, size))
  k = jnp.asarray(k / k.sum(axis=(-2, -1), keepdims=True), jnp.float32)
  assert layers.fft_pays(size * size, 1)
  fft_y, fft_vjp = jax.vjp(lambda x: kernel.degrade(x, k, scale, origin), img)
  monkeypatch.setattr(layers, 'ROUTES', False)
  assert not layers.fft_pays(size * size, 1)
  ref_y, ref_vjp = jax.vjp(lambda x: kernel.degrade(x, k, scale, origin), img)
  chex.assert_equal_shape([fft_y, ref_y])
  np.testing.assert_allclose(fft_y, ref_y, atol=1e-5)
  g = jnp.asarray(rng.normal(size=ref_y.shape), jnp.float32)
  np.testing.assert_allclose(fft_vjp(g)[0], ref_vjp(g)[0], atol=1e-5)
