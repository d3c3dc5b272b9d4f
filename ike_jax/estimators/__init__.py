"""Kernel estimators: the G of the training step (or a closed form), one module each.

A kernel estimator learns an image's own down-scaling. Every estimator module
exposes the same names, and no code outside it asks which kind it holds:

  NAME, HAS_INVERSE, LABEL (how outputs name its method), TRAINS
  training_scale(scale) -> int        the scale G trains at for an x`scale` job

An estimator that does not train (TRAINS = False; `spectral`) instead has

  estimate(lr_u8, cfg) -> dict        the kernel estimate, in the format of
                                      `kernel.estimate_kernel`
  MIN_SIDE                            the smallest LR side it can read

and none of the names below. One that trains (TRAINS = True) has

  init(key, cfg) -> params            cfg: a `config.TrainConfig` at the training scale
  prepare(params, cfg) -> prepared    once per step (e.g. fuse linear layers)
  forward(prepared, x, cfg, local) -> (lr, z)
      HR to LR: x (N, H, W, 1) in [-1, 1] -> lr (N, H/s, W/s, 1) and the latent
      z (N, H/s, W/s, s^2 - 1); `local(fn, v)` applies G's convolutional part
      (the evaluator passes a tiling version).
  inverse(prepared, y, z_up, cfg, local) -> (N, s*h, s*w, 1)
      LR and up-sampled latent to SR; raises when not HAS_INVERSE
  receptive_radius(cfg) -> int        HR px an LR pixel can see from its block
  tile_margins(cfg) -> {'forward', 'inverse'}   overlaps for tiled inference

The kernel of a trained G is read from `forward` by `ike_jax.kernel` (the
gradient of one LR pixel), the same way for every such estimator. The colours of an image are a
batch of one-channel images for G (`colours_to_batch`).
"""

import importlib

import jax
import jax.numpy as jnp

# Name -> module. A new estimator is a new module and a line here.
_MODULES = {
    'flow': 'ike_jax.estimators.flow',
    'deep_linear': 'ike_jax.estimators.deep_linear',
    'gaussian': 'ike_jax.estimators.gaussian',
    'spectral': 'ike_jax.estimators.spectral',
}
NAMES = tuple(_MODULES)


def get(name):
  """The estimator module registered as `name`."""
  if name not in _MODULES:
    raise ValueError(f'unknown kernel estimator {name!r}; expected one of {", ".join(NAMES)}')
  return importlib.import_module(_MODULES[name])


def of(cfg):
  """The estimator module a `TrainConfig` (or `Config`) names."""
  train = getattr(cfg, 'train', cfg)
  return get(train.model.generator)


def colours_to_batch(img):
  """(..., H, W, 3) image -> (..., 3, H, W, 1): colours as a batch for G."""
  return jnp.moveaxis(img, -1, -3)[..., None]


def batch_to_colours(x):
  """(..., 3, H, W, C) -> (..., H, W, 3*C) with channel `c*3 + colour`."""
  x = jnp.moveaxis(x, -4, -1)                      # (..., H, W, C, 3)
  return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def blur_subsample(kernel, x, scale, local=lambda fn, v: fn(v), padding='zeros'):
  """The forward map of a linear estimator: one strided correlation.

  (N, H, W, 1) -> (lr (N, H/s, W/s, 1), z (N, H/s, W/s, s^2 - 1) of zeros),
  `lr[i, j] = sum k[a, b] x[s i + a - r, s j + b - r]`, r = side // 2;
  `kernel` is (side, side), side odd. `padding` is 'zeros' or 'symmetric'
  (mirrored borders: no dark rim for D to see).
  """
  half = kernel.shape[0] // 2

  def conv(v):
    if padding == 'symmetric':
      v = jnp.pad(v, ((0, 0), (half, half), (half, half), (0, 0)), mode='symmetric')
      pads = ((0, 0), (0, 0))
    else:
      pads = ((half, half), (half, half))
    return jax.lax.conv_general_dilated(v, kernel[:, :, None, None], (scale, scale), pads,
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  lr = local(conv, x)
  return lr, jnp.zeros((*lr.shape[:-1], scale * scale - 1), lr.dtype)


def blur_tile_margins(kernel_size, scale):
  """Tiled-inference overlaps of a `blur_subsample` G (which has no inverse)."""
  return {'forward': -(-kernel_size // scale) * scale, 'inverse': 0}


def no_inverse(name):
  """What `inverse` does for an estimator without one."""
  raise ValueError(f'the {name} estimator has no inverse (use --zssr or --refine)')
