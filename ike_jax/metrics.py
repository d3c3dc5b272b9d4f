"""Image quality metrics for super-resolution: PSNR and SSIM.

Two protocols:
  'rgb': RGB in 0..255, no border shave; what the authors' PyTorch IKE prints
    (it quantises both images to uint8 first; pass uint8 to match it).
  'y': Y of ITU-R BT.601 with MATLAB `rgb2ycbcr` constants (Y in [16, 235], not
    rounded), `shave` pixels cut from every border; the usual SR protocol with
    shave = scale.

SSIM is Wang et al. (2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, L = 255, 'valid' filtering, mean of the map (and of the channels).

`psnr_jax` and `ssim_jax` are the jit-able cores on float (..., H, W, C) arrays
in 0..255 (use `jax.vmap` or leading axes for batches); the public functions
check and align shapes, convert, shave and call them.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import errors

PROTOCOLS = ("rgb", "y")

_DATA_RANGE = 255.0
_C1 = (0.01 * _DATA_RANGE) ** 2
_C2 = (0.03 * _DATA_RANGE) ** 2
_WIN_SIZE = 11
_WIN_SIGMA = 1.5

# MATLAB rgb2ycbcr, rescaled for R, G, B in 0..255.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0


def _gaussian_window_1d():
  """Normalised 1-D Gaussian taps, (11,) float64; its outer square is the 2-D window."""
  x = np.arange(_WIN_SIZE, dtype=np.float64) - (_WIN_SIZE - 1) / 2
  g = np.exp(-(x**2) / (2 * _WIN_SIGMA**2))
  return g / g.sum()


_WINDOW_1D = tuple(float(w) for w in _gaussian_window_1d())


# JAX cores.


def _to_float(x):
  """Casts to float32 (float64 too when jax_enable_x64 is on)."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _mean_last3(x):
  """Mean over the last three axes by pairwise (tree) summation: (..., H, W, C) -> (...).

  A float32 running sum over millions of pixels drifts by far more than the
  1e-4 dB PSNR budget; a tree's error grows only with log2(H*W*C). The halves
  are added elementwise so XLA cannot reassociate them into a plain reduce.
  """
  n = x.shape[-3] * x.shape[-2] * x.shape[-1]
  x = x.reshape(x.shape[:-3] + (n,))
  size = 1 << max(n - 1, 0).bit_length()
  x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, size - n)])
  while x.shape[-1] > 1:
    half = x.shape[-1] // 2
    x = x[..., :half] + x[..., half:]
  return x[..., 0] / n


@jax.jit
def psnr_jax(a, b):
  """PSNR in dB of (..., H, W, C) float arrays in 0..255 -> (...); inf where equal."""
  a, b = _to_float(a), _to_float(b)
  mse = _mean_last3(jnp.square(a - b))
  return 10.0 * jnp.log10(_DATA_RANGE**2 / mse)


def _blur_valid(x):
  """Gaussian window, 'valid' (no padding): (..., H, W, C) -> (..., H-10, W-10, C)."""
  for axis in (-3, -2):
    out = x.shape[axis] - _WIN_SIZE + 1
    taps = [
        w * jax.lax.slice_in_dim(x, i, i + out, axis=axis % x.ndim)
        for i, w in enumerate(_WINDOW_1D)
    ]
    x = sum(taps[1:], taps[0])
  return x


@jax.jit
def ssim_jax(a, b):
  """Mean SSIM of (..., H, W, C) float arrays in 0..255 -> (...); needs H, W >= 11."""
  a, b = _to_float(a), _to_float(b)
  if a.shape[-3] < _WIN_SIZE or a.shape[-2] < _WIN_SIZE:
    raise ValueError(f"SSIM needs images of at least {_WIN_SIZE}x{_WIN_SIZE} "
                     f"pixels, got shape {a.shape}")
  # (Co)variances are shift-invariant; centring both images on a shared
  # per-channel mean shrinks the float32 cancellation in E[x^2] - E[x]^2.
  m = 0.5 * (jnp.mean(a, axis=(-3, -2), keepdims=True) +
             jnp.mean(b, axis=(-3, -2), keepdims=True))
  a, b = a - m, b - m
  mu_a, mu_b = _blur_valid(a), _blur_valid(b)
  var_a = _blur_valid(a * a) - mu_a * mu_a
  var_b = _blur_valid(b * b) - mu_b * mu_b
  cov = _blur_valid(a * b) - mu_a * mu_b
  mu_a, mu_b = mu_a + m, mu_b + m
  ssim_map = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2) /
              ((mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)))
  return _mean_last3(ssim_map)


# Public NumPy-facing API.


def rgb_to_y(img):
  """BT.601 luma (MATLAB rgb2ycbcr): (H, W, 3) in 0..255 -> (H, W) float64 in [16, 235]."""
  img = np.asarray(img, dtype=np.float64)
  return img @ _Y_WEIGHTS + _Y_OFFSET


def _check_image(img, name):
  """Validates an (H, W, 3) numeric image; returns it as float64."""
  img = np.asarray(img)
  if img.ndim != 3 or img.shape[-1] != 3:
    raise errors.UserError(
        f"{name} image must have shape (H, W, 3), got {img.shape}")
  if not (np.issubdtype(img.dtype, np.integer) or
          np.issubdtype(img.dtype, np.floating)):
    raise errors.UserError(f"{name} image has non-numeric dtype {img.dtype}")
  return img.astype(np.float64)


def _align(sr, hr, scale):
  """Crops both to the common top-left region if they differ by < scale per side."""
  if sr.shape == hr.shape:
    return sr, hr
  h = min(sr.shape[0], hr.shape[0])
  w = min(sr.shape[1], hr.shape[1])
  if (abs(sr.shape[0] - hr.shape[0]) >= scale or
      abs(sr.shape[1] - hr.shape[1]) >= scale):
    raise errors.UserError(
        f"SR image shape {sr.shape} does not match HR image shape {hr.shape} "
        f"(a difference under {scale} pixels per side would be cropped)")
  return sr[:h, :w], hr[:h, :w]


def _prepare(sr, hr, protocol, shave, scale):
  """Checks, aligns, converts and shaves: -> two float64 (H', W', C) arrays."""
  if protocol not in PROTOCOLS:
    raise errors.UserError(
        f"unknown metric protocol {protocol!r}; expected one of {PROTOCOLS}")
  if scale is None:
    scale = max(shave, 1)
  if int(scale) != scale or scale < 1:
    raise errors.UserError(f"scale must be a positive integer, got {scale}")
  if int(shave) != shave or shave < 0:
    raise errors.UserError(f"shave must be a non-negative integer, got {shave}")
  shave = int(shave)
  sr, hr = _align(_check_image(sr, "SR"), _check_image(hr, "HR"), int(scale))
  if protocol == "y":
    sr, hr = rgb_to_y(sr)[..., None], rgb_to_y(hr)[..., None]
  if shave:
    if 2 * shave >= min(sr.shape[0], sr.shape[1]):
      raise errors.UserError(
          f"shave {shave} leaves nothing of an image of shape {sr.shape}")
    sr = sr[shave:-shave, shave:-shave]
    hr = hr[shave:-shave, shave:-shave]
  return sr, hr


def _psnr(a, b):
  # Subtract in float64 first: Y values are not float32-exact, their
  # difference (what the MSE needs) is.
  return float(psnr_jax(a - b, 0.0))


def _ssim(a, b):
  if min(a.shape[0], a.shape[1]) < _WIN_SIZE:
    raise errors.UserError(
        f"SSIM needs at least {_WIN_SIZE}x{_WIN_SIZE} pixels after shaving, "
        f"got shape {a.shape}")
  return float(ssim_jax(a, b))


def psnr(sr, hr, protocol="rgb", shave=0, *, scale=None):
  """PSNR in dB (inf for identical images).

  Args:
    sr: super-resolved image, (H, W, 3) uint8 or float in 0..255.
    hr: ground truth, (H', W', 3) likewise.
    protocol: 'rgb' (all channels) or 'y' (BT.601 luma only).
    shave: pixels cut from each border before scoring.
    scale: SR factor; shapes may differ by less than this per side (then both
      are cropped to the common top-left region). Defaults to max(shave, 1).

  Returns:
    The PSNR as a Python float.
  """
  return _psnr(*_prepare(sr, hr, protocol, shave, scale))


def ssim(sr, hr, protocol="rgb", shave=0, *, scale=None):
  """Mean SSIM (mean over channels too for 'rgb'); arguments as for `psnr`."""
  return _ssim(*_prepare(sr, hr, protocol, shave, scale))


def compare(sr, hr, scale):
  """Both protocols at once.

  Args:
    sr: super-resolved image, (H, W, 3) uint8 or float in 0..255.
    hr: ground truth, (H', W', 3), |H - H'| and |W - W'| below `scale`.
    scale: SR factor; also the Y-protocol shave.

  Returns:
    {'psnr_rgb', 'ssim_rgb'} (no shave) and {'psnr_y', 'ssim_y'} (shave =
    scale), Python floats.
  """
  rgb = _prepare(sr, hr, "rgb", 0, scale)
  y = _prepare(sr, hr, "y", scale, scale)
  return {
      "psnr_rgb": _psnr(*rgb),
      "ssim_rgb": _ssim(*rgb),
      "psnr_y": _psnr(*y),
      "ssim_y": _ssim(*y),
  }

