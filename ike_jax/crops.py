"""The KernelGAN/IKE crop sampler (NumPy, no file I/O).

The LR image is the only training data. Each iteration G gets a
`crop` x `crop` patch and D an independently placed `crop // s` patch; their
centres are drawn from probability maps built from image gradients, exactly as
the PyTorch IKE (inherited from KernelGAN) builds them (`docs/method.md`,
"Crop sampling"). All corners for a run are drawn once, here, so the jitted step only
slices.
"""

from typing import NamedTuple

import numpy as np

from ike_jax import colours
from ike_jax import kernel
from ike_jax import resize
from ike_jax.errors import InputError
from ike_jax.errors import UserError

_GRAD_WINDOW = 5  # KernelGAN's border width and box size for the loss map.
_GRAD_PERCENT = 0.97


def trim_to_multiple(img, s):
  """Drops bottom rows / right columns so H and W are multiples of `s`.

  Args:
    img: (H, W[, C]) array.
    s: positive integer.

  Returns:
    (trimmed image, (rows removed, columns removed)).
  """
  h, w = img.shape[:2]
  dh, dw = h % s, w % s
  return img[:h - dh, :w - dw], (dh, dw)


def centre_crop(img, side):
  """The central side x side crop of an (H, W, ...) image (a shorter side is kept whole)."""
  r0, c0 = (max(img.shape[0] - side, 0) // 2, max(img.shape[1] - side, 0) // 2)
  return img[r0:r0 + side, c0:c0 + side]


def _box_same_1d(x, k, axis):
  """Sum over a length-k window along `axis`, like convolve2d 'same'.

  Output i sums x[i - k//2 .. i + (k-1)//2] with zeros outside; computed from
  cumulative sums so large windows (64 for crop 128) stay cheap.
  """
  x = np.moveaxis(x, axis, -1)
  n = x.shape[-1]
  c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, -1)], -1)
  i = np.arange(n)
  hi = np.minimum(i + (k - 1) // 2 + 1, n)
  lo = np.maximum(i - k // 2, 0)
  return np.moveaxis(c[..., hi] - c[..., lo], -1, axis)


def box_filter_same(x, k):
  """`scipy.signal.convolve2d(x, ones((k, k)), 'same')` of (H, W) `x`.

  Clamped at 0, which the exact sum of a non-negative map is; the cumulative
  sums can leave -1e-17 residue that rng.choice would reject.
  """
  out = _box_same_1d(_box_same_1d(np.asarray(x, np.float64), k, 0), k, 1)
  return np.maximum(out, 0.0)


def _zero_border(m, edge):
  """Copy of (H, W) `m` with `edge` pixels zeroed on every side.

  As KernelGAN's `pad_edges`: `m[edge:-edge]`, so edge 0 zeroes everything.
  """
  out = np.zeros_like(m)
  out[edge:-edge, edge:-edge] = m[edge:-edge, edge:-edge]
  return out


def _clip_extreme(m, percent):
  """Near-binary indicator of the top (1 - percent) of `m`'s values.

  v = sorted[int(percent * N)], v_next = sorted[that + 1] when larger, else
  v + 1e-5; returns clip(m, v, v_next) - v.
  """
  srt = np.sort(m.ravel())
  pivot = min(int(percent * srt.size), srt.size - 1)
  v = srt[pivot]
  nxt = srt[pivot + 1] if pivot + 1 < srt.size else v
  v_next = nxt if nxt > v else v + 1e-5
  return np.clip(m, v, v_next) - v


def _unit_sum(m):
  """m / sum(m) for a non-negative map; all zeros when it sums to 0."""
  return kernel.unit_sum(m) if m.sum() > 0 else np.zeros_like(m)


def gradient_map(img01):
  """KernelGAN's gradient "loss map" of an (H, W, 3) image in [0, 1].

  Returns:
    (H, W) float64, non-negative, mean 1 (all ones for a flat image).
  """
  grey = np.asarray(img01, np.float64) @ np.asarray(colours.LUMA)
  gx, gy = np.gradient(grey)
  mag = np.sqrt(gx**2 + gy**2)
  gx = _zero_border(np.abs(gx), _GRAD_WINDOW)
  gy = _zero_border(np.abs(gy), _GRAD_WINDOW)
  mag = _zero_border(mag, _GRAD_WINDOW)
  # Parity: the PyTorch code (utils/util.py, create_gradient_map) thresholds
  # all three maps but then sums the *unthresholded* magnitude with the two
  # thresholded |gx|, |gy| indicators; we reproduce that.
  combined = (_unit_sum(_clip_extreme(gx, _GRAD_PERCENT))
              + _unit_sum(_clip_extreme(gy, _GRAD_PERCENT))
              + _unit_sum(mag))
  loss = box_filter_same(combined, _GRAD_WINDOW) / _GRAD_WINDOW**2
  mean = loss.mean()
  return loss / mean if mean > 0 else np.ones_like(loss)


def probability_map(loss_map, crop):
  """Probability of each pixel being a crop centre.

  Box sum of side crop // 2, zeroed within crop // 2 of every border,
  normalised; uniform over all pixels if nothing is left (KernelGAN's rule).

  Args:
    loss_map: (H, W) non-negative map.
    crop: crop side in pixels.

  Returns:
    (H, W) float64 summing to 1.
  """
  half = crop // 2
  blurred = box_filter_same(loss_map, half) / max(half, 1)**2
  prob = _zero_border(blurred, half)
  total = prob.sum()
  if total > 0:
    return prob / total
  return np.full(prob.shape, 1.0 / prob.size)


def _downscale_for_map(img01, scale):
  """MATLAB-style antialiased bicubic downscale by 1 / scale, (H, W, 3)."""
  return np.asarray(resize.imresize_matlab(img01, 1.0 / scale), np.float64)


def crop_probability_maps(img_u8, scale, crop):
  """G's and D's crop-centre maps for an image whose sides are multiples of s.

  G's map comes from the bicubic-downscaled image, upsampled nearest-neighbour
  by `scale`; D's (crop // scale) from the full image.

  Args:
    img_u8: (H, W, 3) uint8, H and W multiples of `scale`.
    scale: integer SR factor.
    crop: G's crop side.

  Returns:
    (g_map, d_map), each (H, W) float64 summing to 1.
  """
  img01 = np.asarray(img_u8, np.float64) / 255.0
  h, w = img01.shape[:2]
  small = gradient_map(_downscale_for_map(img01, scale))
  big = np.repeat(np.repeat(small, scale, axis=0), scale, axis=1)
  # Sides are multiples of s here, so `big` is (H, W); fit it regardless.
  fitted = np.zeros((h, w))
  fh, fw = min(h, big.shape[0]), min(w, big.shape[1])
  fitted[:fh, :fw] = big[:fh, :fw]
  g_map = probability_map(fitted, crop)
  d_map = probability_map(gradient_map(img01), crop // scale)
  return g_map, d_map


def sample_crop_corners(prob_map, crop, n, rng):
  """Draws `n` crop corners from a centre-probability map.

  corner = centre - crop // 2, clamped into the image, then rounded down to
  even numbers (as the PyTorch code does, also for x4).

  Args:
    prob_map: (H, W) probabilities summing to 1, H, W >= crop.
    crop: crop side.
    n: number of corners.
    rng: np.random.Generator.

  Returns:
    (n, 2) int32 [top, left].
  """
  h, w = prob_map.shape
  centres = rng.choice(h * w, size=n, p=prob_map.ravel())
  rows, cols = np.divmod(centres, w)
  top = np.clip(rows - crop // 2, 0, h - crop)
  left = np.clip(cols - crop // 2, 0, w - crop)
  corners = np.stack([top - top % 2, left - left % 2], axis=1)
  return corners.astype(np.int32)


class CropPlan(NamedTuple):
  """Precomputed crop corners, [top, left] per iteration.

  g_corners: (n, 2) int32 for G's `crop` x `crop` crops.
  d_corners: (n, 2) int32 for D's (crop // s) x (crop // s) crops.
  """
  g_corners: np.ndarray
  d_corners: np.ndarray


def plan_crops(img_u8, scale, crop, iterations, seed):
  """Draws every crop corner of a run.

  The image is trimmed to a multiple of `scale` first (as training does);
  corners refer to that trimmed image. G's corners are drawn before D's from
  one `np.random.default_rng(seed)`.

  Args:
    img_u8: (H, W, 3) uint8 LR image.
    scale: integer SR factor (2 or 4).
    crop: G's crop side (`--crop`); D's is crop // scale.
    iterations: number of corners per network.
    seed: integer seed.

  Returns:
    CropPlan.

  Raises:
    InputError: the (trimmed) image is smaller than `crop` in a dimension.
    UserError: `crop` is too small for `scale`.
  """
  if crop // scale < 2:
    raise UserError(f'--crop {crop} is too small for scale x{scale} '
                    f'(need at least {2 * scale})')
  img, _ = trim_to_multiple(np.asarray(img_u8), scale)
  h, w = img.shape[:2]
  if h < crop or w < crop:
    raise InputError(
        f'image is {img_u8.shape[1]}x{img_u8.shape[0]} (WxH); --crop {crop} '
        f'needs at least {crop}x{crop} pixels: lower --crop or use a larger '
        'image')
  g_map, d_map = crop_probability_maps(img, scale, crop)
  rng = np.random.default_rng(seed)
  g = sample_crop_corners(g_map, crop, iterations, rng)
  d = sample_crop_corners(d_map, crop // scale, iterations, rng)
  return CropPlan(g_corners=g, d_corners=d)
