"""Colour conventions shared by the model and the data: the luma weights and
the colours-as-batch layout.

G and its latent work on one-channel images: the three colours of an image
are a batch of three, `(3, H, W, 1)` (the PyTorch code swaps batch and
channel axes). Merged back, a (3, H, W, C) latent becomes (H, W, 3C) with
channel `c*3 + colour`, the order U's convolutions see.
"""

import jax.numpy as jnp

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
