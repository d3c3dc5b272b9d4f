"""Independent NumPy/SciPy transcriptions the package's JAX code is checked against."""

import numpy as np
from scipy import ndimage


def ndimage_degrade(img, k, scale, origin=None, mode='reflect'):
  """`LR[i, j] = sum_ab k[a, b] x[s*i + a - origin[0], s*j + b - origin[1]]`,
  with scipy.ndimage's borders ('reflect' is half-sample symmetric), float64."""
  img = np.asarray(img, np.float64)
  k = np.asarray(k, np.float64)
  kh, kw = k.shape[-2:]
  origin = (kh // 2, kw // 2) if origin is None else tuple(origin)
  # ndimage centres a filter at index size // 2; a positive origin moves it
  # towards lower indices, i.e. reads x[i + a - size // 2 - origin].
  shift = (int(origin[0]) - kh // 2, int(origin[1]) - kw // 2)
  chans = img[..., None] if img.ndim == 2 else img
  kernels = k if k.ndim == 3 else np.broadcast_to(k, (chans.shape[-1], kh, kw))
  out = np.stack([ndimage.correlate(chans[..., c], kernels[c], mode=mode, origin=shift)
                  for c in range(chans.shape[-1])], axis=-1)[::scale, ::scale]
  return out[..., 0] if img.ndim == 2 else out
