"""Noise and compression of an image without a reference (math only, no I/O).

`sigma`, Donoho's estimator: the finest diagonal Haar band of a natural image is
mostly noise, and its median absolute value over 0.6745 is the noise's
standard deviation (robust to the band's few large edge coefficients).
Texture finer than a pixel reads as noise too, so the estimate is an upper
bound on strongly textured images; JPEG removes the finest band, so after it
the estimate reads low.

`blockiness`: JPEG codes 8x8 blocks apart, so its error jumps at their
borders: the mean absolute step across columns (rows) 8k-1 | 8k over the
mean step elsewhere, about 1 for an image never stored as JPEG (on the blur
families' tuning photos: 0.75-1.2; stored at quality 70-95: 1.0-2.0).
"""

import numpy as np

# Rec. 601 luma weights without the video range: grey levels stay grey levels.
_LUMA = np.array([0.299, 0.587, 0.114])


def sigma(img):
  """Noise standard deviation of an (H, W) or (H, W, 3) image, in its units
  (grey levels for a 0..255 image; colour images are measured on their luma).
  """
  g = np.asarray(img, np.float64)
  if g.ndim == 3:
    g = g @ _LUMA
  h, w = g.shape[0] // 2 * 2, g.shape[1] // 2 * 2
  if h < 2 or w < 2:
    raise ValueError(f'image {np.shape(img)} is too small for a noise estimate')
  g = g[:h, :w]
  hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2.0
  return float(np.median(np.abs(hh)) / 0.6745)


def blockiness(img, block=8):
  """Mean step of the luma across block borders over the mean step elsewhere
  (average of the column and the row direction); block borders at multiples
  of `block` from the top-left corner, as a JPEG file has them."""
  g = np.asarray(img, np.float64)
  if g.ndim == 3:
    g = g @ _LUMA
  if min(g.shape) < 2 * block:
    raise ValueError(f'image {np.shape(img)} is too small for a blockiness estimate')
  ratios = []
  for a in (g, g.T):
    steps = np.abs(np.diff(a, axis=1)).mean(axis=0)  # step c | c+1, per column c
    border = np.arange(steps.shape[0]) % block == block - 1
    ratios.append(steps[border].mean() / max(steps[~border].mean(), 1e-12))
  return float(np.mean(ratios))
