"""The noise level of an image without a reference (math only, no I/O).

Donoho's estimator: the finest diagonal Haar band of a natural image is
mostly noise, and its median absolute value over 0.6745 is the noise's
standard deviation (robust to the band's few large edge coefficients).
Texture finer than a pixel reads as noise too, so the estimate is an upper
bound on strongly textured images.
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
