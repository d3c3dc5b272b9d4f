"""Back-projection: kernel-consistent refinement of an SR image (`--refine`).

Accelerated gradient descent on `||degrade(sr) - lr||^2 + prior`. Images are
float32 (H, W, C) in [-1, 1] (NHWC without the batch axis); every function is
pure and jit-able. The degradation is `kernel.degrade`.
"""

import functools

import jax
import jax.numpy as jnp

from ike_jax.kernel import degrade
from ike_jax.kernel import static_origin


def data_term(sr, lr, kernel, scale, origin=None):
  """Root mean square of `degrade(sr) - lr` (model units)."""
  diff = degrade(sr, kernel, scale, origin) - lr
  return jnp.sqrt(jnp.mean(diff * diff))


def _tv(x, eps):
  """Charbonnier TV, summed: sum(sqrt(dv^2 + dh^2 + eps^2) - eps)."""
  dv = jnp.diff(x, axis=0)[:, :-1]
  dh = jnp.diff(x, axis=1)[:-1]
  return jnp.sum(jnp.sqrt(dv * dv + dh * dh + eps * eps) - eps)


def _data_lipschitz(shape, kernel, scale, origin, iterations=50):
  """Largest eigenvalue of D^T D (D = `degrade`), by power iteration."""
  v = jax.random.normal(jax.random.PRNGKey(0), shape)
  _, vjp = jax.vjp(lambda x: degrade(x, kernel, scale, origin), v)

  def body(_, v):
    v = v / jnp.linalg.norm(v)
    return vjp(degrade(v, kernel, scale, origin))[0]

  v = jax.lax.fori_loop(0, iterations, body, v)
  v = v / jnp.linalg.norm(v)
  return jnp.vdot(v, vjp(degrade(v, kernel, scale, origin))[0])


def back_project(sr, lr, kernel, scale, origin=None, iterations=100,
                 step=1.0, prior_weight=3e-5, tv_eps=3e-2):
  """Kernel-consistent refinement of an SR image (`--refine`).

  Minimises `0.5 * ||degrade(sr) - lr||^2 + prior_weight * TV(sr)` (sums
  over pixels and colours; TV is Charbonnier with `tv_eps`) over the box
  [-1, 1] by projected Nesterov-accelerated gradient descent (FISTA-style)
  from `sr`, the gradient by `jax.grad`.
  The step is `step / L`, L the objective's Lipschitz constant: D^T D's top
  eigenvalue (power iteration; ~1/s^2 for a smooth kernel, 1 for a delta)
  plus `8 * prior_weight / tv_eps`. Chosen over classic IBP because it needs
  no back-projection filter matched to the kernel and converges for any
  (estimated, possibly non-positive) kernel. The box projection matters:
  clipping only at the end undoes part of the fit where deblurring rings
  past saturated pixels. Defaults: measured on samples/astronaut x2 with
  its true kernel (RMS data term 0.032 -> 0.0011, Y-PSNR 27.50 -> 32.64 dB
  from bicubic); an estimated kernel may want a larger prior_weight.

  Args:
    sr: (sH, sW, C) initial SR image in [-1, 1] (e.g. bicubic or IKE's).
    lr: (H, W, C) LR input in [-1, 1], H = ceil(sH/s).
    kernel: (kh, kw) or (C, kh, kw) correlation kernel (e.g.
      an estimate's 'kernel'); should sum to ~1.
    scale: s (static).
    origin: static (row, col), as `degrade`; pass the estimate's 'origin'.
    iterations: gradient steps (static).
    step: step size as a fraction of 1/L (<= 1 for guaranteed convergence).
    prior_weight: TV weight per HR pixel relative to the per-LR-pixel data
      term; 0 disables the prior.
    tv_eps: Charbonnier smoothing of the TV (model units).
  Returns:
    (sH, sW, C) float32 in [-1, 1].
  """
  sh, sw = sr.shape[:2]
  if lr.shape[:2] != (-(-sh // scale), -(-sw // scale)):
    raise ValueError(f'LR {lr.shape[:2]} is not SR {sr.shape[:2]} / {scale}')
  return _back_project(sr, lr, kernel, step, prior_weight, tv_eps,
                       scale=int(scale), origin=static_origin(kernel, origin),
                       iterations=int(iterations))


@functools.partial(jax.jit, static_argnames=('scale', 'origin', 'iterations'))
def _back_project(sr, lr, kernel, step, prior_weight, tv_eps, *, scale,
                  origin, iterations):
  sr = jnp.asarray(sr, jnp.float32)
  lr = jnp.asarray(lr, jnp.float32)
  kernel = jnp.asarray(kernel, jnp.float32)

  def objective(x):
    diff = degrade(x, kernel, scale, origin) - lr
    return 0.5 * jnp.sum(diff * diff) + prior_weight * _tv(x, tv_eps)

  grad = jax.grad(objective)
  lipschitz = (_data_lipschitz(sr.shape, kernel, scale, origin) * 1.05 +
               8.0 * prior_weight / tv_eps)
  eta = step / lipschitz

  def body(i, carry):
    x, prev = carry
    y = x + (i / (i + 3.0)) * (x - prev)  # Nesterov look-ahead
    return jnp.clip(y - eta * grad(y), -1.0, 1.0), x  # projected step

  x, _ = jax.lax.fori_loop(0, iterations, body, (sr, sr))
  return jnp.clip(x, -1.0, 1.0)
