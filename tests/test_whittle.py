"""The spectral likelihood of a kernel (`ike_jax.whittle`)."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from ike_jax import kernel as kernel_lib
from ike_jax import solve
from ike_jax import whittle

SIDE = 64   # LR px
SCALE = 2
SIZE = 15   # HR kernel side


def _sharp(side, seed):
  """A Gaussian random field with the prior's own spectrum: power 1 / (|D|^2 + eps)."""
  rng = np.random.default_rng(seed)
  white = np.fft.fft2(rng.normal(size=(side, side)))
  return np.real(np.fft.ifft2(white / np.sqrt(np.asarray(solve.gradient_transfer((side, side)))
                                               + whittle.EPS)))


def _lr(k, seed=0, noise=1e-2):
  """The sharp field blurred by k (periodic, `degrade`'s correlation), every SCALE-th pixel kept."""
  x = _sharp(SIDE * SCALE, seed)
  p = solve.transfer(jnp.asarray(k, jnp.float32), x.shape)
  blurred = np.real(np.fft.ifft2(np.fft.fft2(x) * np.asarray(p)))
  y = blurred[::SCALE, ::SCALE]
  return y + noise * np.random.default_rng(seed + 1).normal(size=y.shape) * y.std()


def _delta():
  k = np.zeros((SIZE, SIZE))
  k[SIZE // 2, SIZE // 2] = 1.0
  return k


def _motion(length=9):
  k = np.zeros((SIZE, SIZE))
  k[SIZE // 2, SIZE // 2 - length // 2:SIZE // 2 + length // 2 + 1] = 1.0
  return k / k.sum()


def _gaussian():
  return np.asarray(kernel_lib.gaussian_kernel(np.array([[6.0, 2.0], [2.0, 3.0]]), SIZE, 1),
                    np.float64)


def test_the_periodic_component_has_no_border_cross_in_its_spectrum():
  """A smooth image that does not wrap (a ramp and a bump) has most of its
  DFT power on the axes (the borders' jumps); its periodic component has not."""
  rows, cols = np.indices((32, 48))
  img = 0.05 * cols + 0.03 * rows + np.exp(-((rows - 10.0) ** 2 + (cols - 30.0) ** 2) / 40.0)
  p = whittle.periodic_component(img)
  chex.assert_shape(p, img.shape)

  def axes_share(a):
    f = np.abs(np.fft.fft2(a - a.mean())) ** 2
    return (f[0, 1:].sum() + f[1:, 0].sum()) / f.sum()

  assert axes_share(img) > 0.9 and axes_share(p) < 0.7
  # the wrap-around jump of the ramp is gone
  assert np.abs(p[:, 0] - p[:, -1]).max() < 2 * np.abs(np.diff(p, axis=1)).max()


@pytest.mark.parametrize('make', [_motion, _gaussian], ids=['motion', 'gaussian'])
def test_the_true_kernel_explains_the_spectrum_better_than_a_delta(make):
  k = make()
  y2 = whittle.power(_lr(k))
  assert float(whittle.nll(y2, jnp.asarray(k, jnp.float32), SCALE)) < float(
      whittle.nll(y2, jnp.asarray(_delta(), jnp.float32), SCALE)) - 0.1
  # the gap the choice reads: far larger for a delta on a blurred image than for the truth
  assert whittle.gap(_lr(k), _delta(), SCALE) > whittle.gap(_lr(k), k, SCALE) + 0.5


def test_a_delta_on_an_unblurred_image_leaves_little_to_gain():
  assert whittle.gap(_lr(_delta()), _delta(), SCALE) < 0.05


def test_the_likelihood_sees_the_magnitude_not_the_phase():
  """A kernel and its mirror image (same |K|) score the same."""
  k = np.zeros((SIZE, SIZE))
  k[7, 3:10] = np.linspace(1.0, 3.0, 7)
  k[4:7, 9] = 1.0
  k /= k.sum()
  y2 = whittle.power(_lr(k))
  a = float(whittle.nll(y2, jnp.asarray(k, jnp.float32), SCALE))
  b = float(whittle.nll(y2, jnp.asarray(k[::-1, ::-1].copy(), jnp.float32), SCALE))
  assert a == pytest.approx(b, abs=1e-4)


def test_refine_moves_a_gaussian_start_towards_the_motion_blur_it_scores_better():
  y2 = whittle.power(_lr(_motion()))
  start = jnp.asarray(_gaussian(), jnp.float32)
  k, score = whittle.refine(y2, start, SCALE, steps=50)
  chex.assert_shape(k, (SIZE, SIZE))
  assert float(k.min()) >= 0.0 and float(k.sum()) == pytest.approx(1.0, abs=1e-4)
  assert float(score) < float(whittle.nll(y2, start, SCALE)) - 0.5  # -1.82 -> -2.82 measured
  assert float(score) == pytest.approx(float(whittle.nll(y2, k, SCALE)), abs=1e-4)
  assert kernel_lib.kernel_error(k, _motion()) < 0.5 * kernel_lib.kernel_error(start, _motion())
