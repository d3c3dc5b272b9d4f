"""Super-resolution with a trained G that has an inverse: `(_, z) = G(y)`,
`z_up = U(z)`, `sr = G^-1(y, z_up)`, clipped to [-1, 1] (`docs/method.md`,
"Inference"). (For an estimator without an inverse the SR stage starts from
bicubic: `ike_jax.estimate`.)

The bicubic resizes (the residual path, U's first op) always act on the whole
image, so the align-corners geometry is the whole image's, as in the PyTorch
code. The convolutional parts (the flow both ways, U's conv stack) can run
tile by tile (`tile > 0`): overlapping windows whose margins cover each part's
receptive field, so tiled and whole-image results agree away from the image
borders and memory is bounded by the tile, not the image.

Many images: same-shape images are super-resolved together (`jax.vmap`), one
shape bucket at a time.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import colours
from ike_jax import ensemble
from ike_jax import estimators
from ike_jax import nets

U_RADIUS = nets.U_LAYERS                # eight 3x3 convs


def _round_up(v, m):
  return int(math.ceil(v / m) * m)


def tile_margins(cfg):
  """Receptive-field margins (input pixels) of G's forward and inverse and U."""
  return {**estimators.of(cfg).tile_margins(cfg), 'u': U_RADIUS}


def tiled(fn, x, tile, margin, factor, align=1):
  """Applies a local map `fn` to overlapping tiles of x and stitches them.

  Args:
    fn: (N, h, w, C) -> (N, h*factor, w*factor, C'), shift-equivariant away
      from borders within `margin` input pixels.
    x: (N, H, W, C).
    tile: tile side in input pixels (the stitched core of each window).
    margin: overlap on each side, input pixels.
    factor: output / input resolution (e.g. 2, or 1/2).
    align: tile and margin are rounded up to multiples of this.
  Returns:
    (N, H*factor, W*factor, C'): the cores of the tiles' outputs.
  """
  tile, margin = _round_up(tile, align), _round_up(margin, align)
  n, h, w, _ = x.shape
  ny, nx = -(-h // tile), -(-w // tile)
  padded = jnp.pad(x, ((0, 0), (margin, ny * tile - h + margin),
                       (margin, nx * tile - w + margin), (0, 0)))
  win = tile + 2 * margin
  corners = jnp.array([(i * tile, j * tile) for i in range(ny) for j in range(nx)], jnp.int32)

  def one(corner):
    window = jax.lax.dynamic_slice(padded, (0, corner[0], corner[1], 0), (n, win, win, x.shape[-1]))
    out = fn(window)
    core, lo = int(round(tile * factor)), int(round(margin * factor))
    return out[:, lo:lo + core, lo:lo + core]

  cores = jax.lax.map(one, corners)                       # (T, N, ct, ct, C')
  ct, c_out = cores.shape[2], cores.shape[-1]
  grid = cores.reshape(ny, nx, n, ct, ct, c_out).transpose(2, 0, 3, 1, 4, 5)
  full = grid.reshape(n, ny * ct, nx * ct, c_out)
  return full[:, :int(round(h * factor)), :int(round(w * factor))]


def super_resolve(g, u, lr, cfg, tile=0, self_ensemble=False):
  """SR of one image.

  Args:
    g, u: G's and U's parameters (unprepared).
    lr: (H, W, 3) in [-1, 1], H and W multiples of `cfg.scale`.
    cfg: the `TrainConfig` G and U trained with (an estimator with an inverse).
    tile: 0 for one whole-image pass, else the tile side (LR pixels).
    self_ensemble: average over the 8 flips/rotations of the input.
  Returns:
    (s*H, s*W, 3) in [-1, 1].
  """
  s = cfg.scale
  est = estimators.of(cfg)
  if tile:
    m = tile_margins(cfg)
    fwd = functools.partial(tiled, tile=tile, margin=m['forward'], factor=1 / s, align=s)
    inv = functools.partial(tiled, tile=tile, margin=m['inverse'], factor=s)
    ups = functools.partial(tiled, tile=tile, margin=m['u'], factor=1)
  else:
    fwd = inv = ups = lambda fn, v: fn(v)
  gp = est.prepare(g, cfg)

  def sr_of(img):
    x = colours.colours_to_batch(img)
    _, z = est.forward(gp, x, cfg, local=fwd)
    z_up = nets.u_apply(u, z, s, local=ups, dtype=cfg.model.compute_dtype)
    return colours.batch_to_colours(est.inverse(gp, x, z_up, cfg, local=inv))

  sr = ensemble.self_ensemble(sr_of, lr) if self_ensemble else sr_of(lr)
  return jnp.clip(sr, -1.0, 1.0)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def super_resolve_batched(g, u, lrs, cfg, tile=0, self_ensemble=False):
  """`super_resolve` over a leading image axis of params and same-shape images."""
  return jax.vmap(lambda gi, ui, li: super_resolve(gi, ui, li, cfg, tile, self_ensemble))(
      g, u, lrs)


def super_resolve_many(g, u, lrs, cfg, tile=0, self_ensemble=False):
  """SR of images of any shapes: same-shape buckets are vmapped together.

  Args:
    g, u: parameters stacked on a leading image axis (one per image).
    lrs: list of (H_i, W_i, 3) arrays in [-1, 1].
    cfg: the `TrainConfig` G and U trained with.
  Returns:
    list of (s*H_i, s*W_i, 3) NumPy arrays in [-1, 1], in input order.
  """
  buckets = {}
  for k, img in enumerate(lrs):
    buckets.setdefault(tuple(img.shape), []).append(k)
  results = [None] * len(lrs)
  for idx in buckets.values():
    take = lambda a, idx=idx: a[np.asarray(idx)]
    out = super_resolve_batched(jax.tree.map(take, g), jax.tree.map(take, u),
                                jnp.stack([jnp.asarray(lrs[k]) for k in idx]), cfg, tile,
                                self_ensemble)
    for k, sr in zip(idx, np.asarray(out)):
      results[k] = sr
  return results
