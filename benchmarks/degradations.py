"""Deterministic synthetic degradations for offline test data.

The recipe is stated in `docs/method.md`, "Synthetic DIV2KRK-style data".

Benchmark-only. Images are float or uint8 arrays, HxW or HxWxC, values in
0..255; results are float64 NumPy arrays in (about) the same range. The linear
blur-and-subsample is `ike_jax.kernel.degrade` (float32 JAX); the kernels and
non-linear filters are NumPy/SciPy. Every random choice comes from a
`numpy.random.Generator`, so a given integer seed always yields the same
low-resolution image and the same kernel.

Sampling convention: filter at full resolution, then keep rows and columns
0, s, 2s, ... A kernel of size k whose centre of mass sits at
`k // 2 + 0.5 * (s - k % 2)` (KernelGAN's convention,
`ike_jax.kernel.kernel_center`) makes that LR grid line up with the bicubic one.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import ndimage

from ike_jax import errors
from ike_jax import kernel as kernel_lib

KINDS = ('div2krk', 'median', 'bilateral', 'diffusion', 'mix')
SCALES = (2, 4)

# DIV2KRK-style kernels: variances of the two principal axes and the per-tap
# noise amplitude.
_VAR_RANGE = (0.6, 5.0)
_TAP_NOISE = 0.25


def _gaussian(l1: float, l2: float, theta: float, size: int,
              center: tuple[float, float]) -> np.ndarray:
  """Unnormalised exp(-0.5 z^T Sigma^-1 z) on a size x size grid.

  z = (col - cx, row - cy); Sigma = Q diag(l1, l2) Q^T with Q the rotation by
  theta, so l1 is the variance along the direction at angle theta from +col.
  """
  c, s = np.cos(theta), np.sin(theta)
  q = np.array([[c, -s], [s, c]])
  inv_sigma = q @ np.diag([1.0 / l1, 1.0 / l2]) @ q.T
  rows, cols = np.indices((size, size), dtype=np.float64)
  z = np.stack([cols - center[1], rows - center[0]], axis=-1)
  return np.exp(-0.5 * np.einsum('...i,ij,...j->...', z, inv_sigma, z))


def fixed_gaussian_kernel(l1: float, l2: float, theta: float, size: int = 11,
                          center: tuple[float, float] | None = None
                          ) -> np.ndarray:
  """Noise-free anisotropic Gaussian kernel, (size, size) float64 summing to 1.

  Args:
    l1, l2: variances (pixels^2) along the rotated axes.
    theta: rotation in radians of the l1 axis from +col towards +row.
    size: kernel side.
    center: (row, col) where the Gaussian is centred; defaults to the x2
      alignment centre `kernel_lib.kernel_center(size, 2)` on both axes
      ((5.5, 5.5) for size 11).
      Truncation by the grid can move the centre of mass of wide kernels
      slightly away from this point.
  """
  if center is None:
    center = (kernel_lib.kernel_center(size, 2),) * 2
  k = _gaussian(l1, l2, theta, size, center)
  return k / k.sum()


def _shift_to_center(k: np.ndarray, wanted: np.ndarray,
                     iterations: int = 20) -> np.ndarray:
  """Sub-pixel shifts `k` so its centre of mass is `wanted`; stays >= 0, sum 1.

  Taps pushed off the grid and clipped spline ringing make the centre move by
  less than the shift, so the total shift is refined by fixed-point iteration,
  each time shifting the original kernel once (no compounding interpolation).
  """
  total = np.zeros(2)
  shifted = k
  for _ in range(iterations):
    delta = wanted - kernel_lib.center_of_mass(shifted)
    if np.max(np.abs(delta)) < 1e-10:
      break
    total += delta
    # 'grid-constant' is true zero padding; 'constant' extends the spline.
    shifted = ndimage.shift(k, total, order=3, mode='grid-constant')
    shifted = np.clip(shifted, 0.0, None)
    shifted /= shifted.sum()
  return shifted


def div2krk_kernel(rng: np.random.Generator, scale: int = 2,
                   size: int = 11) -> tuple[np.ndarray, dict[str, Any]]:
  """Random DIV2KRK-style kernel (`docs/method.md`, "Synthetic DIV2KRK-style data").

  Args:
    rng: source of randomness.
    scale: 2 gives a (size, size) kernel with centre of mass
      `kernel_lib.kernel_center(size, 2)` (5.5 for 11); 4 gives
      `kernel_lib.x4_from_x2` of such an x2 kernel ((3 * size - 2) square,
      31x31 with centre of mass 16.5).
    size: side of the x2 kernel.

  Returns:
    (kernel float64 summing to 1, info dict with the drawn parameters).
  """
  if scale not in SCALES:
    raise errors.UserError(f'scale must be 2 or 4, got {scale}')
  l1, l2 = rng.uniform(*_VAR_RANGE, size=2)
  theta = rng.uniform(0.0, np.pi)
  wanted = kernel_lib.kernel_center(size, 2)
  k = _gaussian(l1, l2, theta, size, (wanted, wanted))
  k = k * (1.0 + rng.uniform(-_TAP_NOISE, _TAP_NOISE, size=k.shape))
  k /= k.sum()
  k = _shift_to_center(k, np.array([wanted, wanted]))
  if scale == 4:
    k = kernel_lib.x4_from_x2(k)
  info = {
      'kind': 'div2krk', 'l1': float(l1), 'l2': float(l2),
      'theta': float(theta), 'kernel_size': list(k.shape),
      'center_of_mass': kernel_lib.center_of_mass(k).tolist(),
  }
  return k, info


def _as_float_image(img: np.ndarray) -> np.ndarray:
  img = np.asarray(img)
  if img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
    raise errors.InputError(
        f'expected an HxW or HxWxC image, got shape {img.shape}')
  return img.astype(np.float64)


def _per_channel(img: np.ndarray,
                 fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
  if img.ndim == 2:
    return fn(img)
  return np.stack([fn(img[..., c]) for c in range(img.shape[-1])], axis=-1)


def subsample(img: np.ndarray, scale: int) -> np.ndarray:
  """Keeps rows/cols 0, s, 2s, ...: (H, W, ...) -> (ceil(H/s), ceil(W/s), ...).
  """
  return img[::scale, ::scale]


def blur_subsample(img: np.ndarray, k: np.ndarray, scale: int) -> np.ndarray:
  """`ike_jax.kernel.degrade` (default origin, half-sample symmetric borders).

  Correlates each channel with `k` about its index `(kh // 2, kw // 2)`, then
  keeps rows/cols 0, s, 2s, ... Computed in float32 by the strided convolution
  (never by FFT: synthetic data stay the same files on every machine, and a
  delta kernel is an exact subsample); returned as float64.

  Args:
    img: (H, W[, C]) float or uint8 in 0..255.
    k: 2-D kernel.
    scale: subsampling factor.

  Returns:
    (ceil(H/s), ceil(W/s)[, C]) float64.
  """
  img = _as_float_image(img)
  return np.asarray(kernel_lib.degrade(img, k, scale, fft=False), np.float64)


def to_uint8(img: np.ndarray) -> np.ndarray:
  """Rounds and clips a 0..255 float image to uint8."""
  return np.clip(np.round(img), 0, 255).astype(np.uint8)


# Non-linear filters: full resolution in, full resolution out, plus parameters.

def _median(img: np.ndarray, rng: np.random.Generator):
  size = int(rng.choice([3, 5]))
  out = _per_channel(
      img, lambda ch: ndimage.median_filter(ch, size=size, mode='reflect'))
  return out, {'op': 'median', 'size': size}


def _bilateral(img: np.ndarray, rng: np.random.Generator):
  # Imported here: skimage is slow to import and only this filter needs it.
  from skimage import restoration  # pylint: disable=g-import-not-at-top
  sigma_spatial = float(rng.uniform(1.0, 3.0))
  sigma_color = float(rng.uniform(0.05, 0.2))  # In 0..1 intensity units.
  out = restoration.denoise_bilateral(
      np.clip(img / 255.0, 0.0, 1.0), sigma_color=sigma_color,
      sigma_spatial=sigma_spatial, mode='reflect',
      channel_axis=-1 if img.ndim == 3 else None) * 255.0
  return out, {'op': 'bilateral', 'sigma_spatial': sigma_spatial,
               'sigma_color': sigma_color}


def perona_malik(img: np.ndarray, iterations: int, kappa: float, gamma: float,
                 option: int = 1) -> np.ndarray:
  """Anisotropic (Perona-Malik) diffusion of each channel, zero flux at borders.

  Args:
    img: (H, W[, C]) float, 0..255.
    iterations: number of explicit steps.
    kappa: edge threshold in intensity units; gradients well above it diffuse
      little.
    gamma: step size, <= 0.25 for stability on the 4-neighbourhood.
    option: conductance 1: exp(-(g/kappa)^2), 2: 1 / (1 + (g/kappa)^2).
  """
  def conductance(g):
    r = (g / kappa) ** 2
    return np.exp(-r) if option == 1 else 1.0 / (1.0 + r)

  def diffuse(u):
    u = u.copy()
    for _ in range(iterations):
      p = np.pad(u, 1, mode='edge')  # Edge padding: zero gradient at borders.
      north = p[:-2, 1:-1] - u
      south = p[2:, 1:-1] - u
      west = p[1:-1, :-2] - u
      east = p[1:-1, 2:] - u
      u += gamma * sum(conductance(d) * d for d in (north, south, west, east))
    return u

  return _per_channel(np.asarray(img, np.float64), diffuse)


def _diffusion(img: np.ndarray, rng: np.random.Generator):
  iterations = int(rng.integers(5, 21))
  kappa = float(rng.uniform(10.0, 40.0))
  gamma = float(rng.uniform(0.1, 0.25))
  option = int(rng.integers(1, 3))
  out = perona_malik(img, iterations, kappa, gamma, option)
  return out, {'op': 'diffusion', 'iterations': iterations, 'kappa': kappa,
               'gamma': gamma, 'option': option}


def _gaussian_blur(img: np.ndarray, rng: np.random.Generator, scale: int):
  l1, l2 = rng.uniform(*_VAR_RANGE, size=2)
  theta = float(rng.uniform(0.0, np.pi))
  c = kernel_lib.kernel_center(11, scale)
  k = fixed_gaussian_kernel(l1, l2, theta, 11, (c, c))
  out = _per_channel(img, lambda ch: ndimage.correlate(ch, k, mode='reflect'))
  return out, {'op': 'gaussian', 'l1': float(l1), 'l2': float(l2),
               'theta': theta, 'center': [c, c]}


_FILTERS = {'median': _median, 'bilateral': _bilateral, 'diffusion': _diffusion}


def _apply(op, img, rng, scale):
  img = _as_float_image(img)
  out, info = op(img, rng)
  info = {'kind': info['op'], **info}
  return subsample(out, scale), info


def median_degrade(img, rng: np.random.Generator, scale: int):
  """Median filter (size 3 or 5) then subsample. Returns (lr float64, info)."""
  return _apply(_median, img, rng, scale)


def bilateral_degrade(img, rng: np.random.Generator, scale: int):
  """Bilateral filter (random sigmas) then subsample. Returns (lr, info)."""
  return _apply(_bilateral, img, rng, scale)


def diffusion_degrade(img, rng: np.random.Generator, scale: int):
  """Perona-Malik diffusion (random steps, kappa, gamma) then subsample."""
  return _apply(_diffusion, img, rng, scale)


def mix_degrade(img, rng: np.random.Generator, scale: int):
  """Two distinct random non-linear filters in random order, optionally a
  Gaussian blur at a random position, then subsample. Returns (lr, info)."""
  img = _as_float_image(img)
  names = [str(n) for n in rng.permutation(list(_FILTERS))[:2]]
  ops = [_FILTERS[n] for n in names]
  if rng.random() < 0.5:
    blur = lambda x, r: _gaussian_blur(x, r, scale)
    ops.insert(int(rng.integers(0, len(ops) + 1)), blur)
  steps = []
  for op in ops:
    img, step = op(img, rng)
    steps.append(step)
  return subsample(img, scale), {'kind': 'mix', 'steps': steps}


def degrade(img: np.ndarray, kind: str = 'div2krk', scale: int = 2,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray | None, dict]:
  """Degrades an HR image deterministically.

  Args:
    img: (H, W[, C]) uint8 or float in 0..255.
    kind: one of `KINDS`.
    scale: 2 or 4.
    seed: integer seed; the same seed gives the same bytes.

  Returns:
    (lr uint8 of shape (ceil(H/s), ceil(W/s)[, C]), kernel float64 or None for
    the non-linear kinds, info dict of JSON-serialisable parameters).
  """
  if scale not in SCALES:
    raise errors.UserError(f'scale must be 2 or 4, got {scale}')
  rng = np.random.default_rng(seed)
  kernel = None
  if kind == 'div2krk':
    kernel, info = div2krk_kernel(rng, scale)
    lr = blur_subsample(img, kernel, scale)
  elif kind in _FILTERS:
    lr, info = _apply(_FILTERS[kind], img, rng, scale)
  elif kind == 'mix':
    lr, info = mix_degrade(img, rng, scale)
  else:
    raise errors.UserError(
        f'unknown degradation {kind!r}; expected one of {", ".join(KINDS)}')
  info = {**info, 'kind': kind, 'scale': scale, 'seed': int(seed)}
  return to_uint8(lr), kernel, info
