"""Colour conventions shared by the model and the data: the luma weights, the
colours-as-batch layout, and sRGB's encoding of light.

G and its latent work on one-channel images: the three colours of an image
are a batch of three, `(3, H, W, 1)` (the PyTorch code swaps batch and
channel axes). Merged back, a (3, H, W, C) latent becomes (H, W, 3C) with
channel `c*3 + colour`, the order U's convolutions see.
"""

import jax.numpy as jnp
import numpy as np

# ITU-R BT.601 luma weights of R, G, B (full range): the grey of KernelGAN's
# crop sampler and of the energy loss. (The Y of the SR metrics is MATLAB's
# studio-range `rgb2ycbcr`, `metrics.rgb_to_y`.)
LUMA = (0.299, 0.587, 0.114)


def colours_to_batch(img):
  """(..., H, W, 3) image -> (..., 3, H, W, 1): colours as a batch for G."""
  return jnp.moveaxis(img, -1, -3)[..., None]


def batch_to_colours(x):
  """(..., 3, H, W, C) -> (..., H, W, 3*C) with channel `c*3 + colour`."""
  x = jnp.moveaxis(x, -4, -1)                      # (..., H, W, C, 3)
  return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def srgb_decode(v):
  """sRGB-encoded values in [0, 1] -> linear light in [0, 1] (IEC 61966-2-1);
  float32 stays float32."""
  v = np.asarray(v, np.result_type(np.asarray(v).dtype, np.float32))
  return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4)


def srgb_encode(v):
  """Linear light -> sRGB-encoded values in [0, 1]: `srgb_decode`'s inverse,
  light outside [0, 1] clipped first; float32 stays float32."""
  v = np.clip(np.asarray(v, np.result_type(np.asarray(v).dtype, np.float32)), 0.0, 1.0)
  return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.maximum(v, 0.0031308) ** (1 / 2.4) - 0.055)


# The light of each uint8 grey level, in grey levels (0..255).
_LIGHT = (srgb_decode(np.arange(256) / 255.0) * 255.0).astype(np.float32)
ENCODE_ROWS = 64  # rows encoded at once: no float64 copy of a whole photo


def light_levels(img_u8):
  """A uint8 sRGB image -> its linear light as float32 grey levels in 0..255."""
  return _LIGHT[np.asarray(img_u8, np.uint8)]


def light_u8(img_u8):
  """`light_levels` rounded to uint8: what a kernel estimate reads of a blur of light."""
  return np.round(light_levels(img_u8)).astype(np.uint8)


def encoded_u8(levels):
  """`light_levels`' inverse: float grey levels of light -> uint8 sRGB, rounded
  (in float64, band by band of `ENCODE_ROWS` rows)."""
  levels = np.asarray(levels)
  out = np.empty(levels.shape, np.uint8)
  for top in range(0, levels.shape[0], ENCODE_ROWS):
    band = levels[top:top + ENCODE_ROWS].astype(np.float64)
    out[top:top + ENCODE_ROWS] = np.round(srgb_encode(band / 255.0) * 255.0)
  return out
