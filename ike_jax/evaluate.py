"""Super-resolution with a trained model (SPEC 7): `(_, z) = G(y)`,
`z_up = U(z)`, `sr = G^-1(y, z_up)`, clipped to [-1, 1].

One full-image pass, as the PyTorch code (the align-corners bicubic geometry
is that of the whole image). Images of the same shape are super-resolved
together with `jax.vmap`.
"""

import functools

import jax
import jax.numpy as jnp

from ike_jax import flow
from ike_jax import nets


def super_resolve(g, u, lr, cfg):
  """SR of one image.

  Args:
    g, u: G's and U's parameters (unprepared).
    lr: (H, W, 3) in [-1, 1], H and W multiples of `cfg.scale`.
  Returns:
    (s*H, s*W, 3) in [-1, 1].
  """
  gp = flow.prepare(g, cfg)
  x = flow.colours_to_batch(lr)
  _, z = flow.g_forward(gp, x, cfg)
  sr = flow.g_inverse(gp, x, nets.u_apply(u, z, cfg.scale), cfg)
  return jnp.clip(flow.batch_to_colours(sr), -1.0, 1.0)


@functools.partial(jax.jit, static_argnums=(3,))
def super_resolve_batched(g, u, lrs, cfg):
  """`super_resolve` over a leading image axis of params and images."""
  return jax.vmap(lambda gi, ui, li: super_resolve(gi, ui, li, cfg))(g, u, lrs)


@functools.partial(jax.jit, static_argnums=(2,))
def g_downscale(g, hr, cfg):
  """G's learned down-scaling of one (H, W, 3) image -> (H/s, W/s, 3)."""
  lr, _ = flow.g_forward(flow.prepare(g, cfg), flow.colours_to_batch(hr), cfg)
  return flow.batch_to_colours(lr)
