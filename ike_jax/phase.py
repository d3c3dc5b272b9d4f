"""A blur kernel from its Fourier magnitude alone: phase retrieval (math only, no I/O).

A photo's power spectrum sees a kernel's magnitude |K|, not its phase
(`ike_jax.whittle`). A non-negative kernel of small support is, in 2-D,
nearly fixed by its magnitude, up to a shift and its mirror image (Hayes
1982), and Fienup's hybrid input-output algorithm (1982) finds one: from a
random start it alternates the Fourier constraint (keep the phase, impose
the magnitude) with the object constraint (non-negative within the support),
where the latter fails stepping away from the last estimate (HIO, `beta`)
rather than clipping; a few error-reduction steps (plain clipping) end it.
Different starts land on the kernel, its mirror or a stagnated mixture, so
`candidates` runs a population of them at once (vmapped).

Used by the kernel-estimator benchmark to measure how far an estimate gets
from a given magnitude (docs/method.md, "Where it falls short").
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.jit, static_argnames=('iterations', 'polish'))
def retrieve(magnitude, support, key, iterations=400, polish=100, beta=0.9):
  """One phase retrieval from a random start.

  Args:
    magnitude: (N, N) |FFT| of the kernel zero-padded to N x N (N at least
      twice the kernel's side, so its autocorrelation does not wrap).
    support: (N, N) 1 where the kernel may be non-zero, else 0.
    key: PRNG key of the start (uniform noise within the support).
    iterations: HIO steps; polish: error-reduction steps after them.
    beta: HIO's feedback.
  Returns:
    (N, N) non-negative array, zero outside the support (not normalised).
  """
  inside = support > 0
  g = jax.random.uniform(key, magnitude.shape) * support

  def fourier(g):
    spectrum = jnp.fft.fft2(g)
    return jnp.real(jnp.fft.ifft2(magnitude * jnp.exp(1j * jnp.angle(spectrum))))

  def hio(_, g):
    gp = fourier(g)
    return jnp.where(inside & (gp >= 0), gp, g - beta * gp)

  def error_reduction(_, g):
    gp = fourier(g)
    return jnp.where(inside & (gp >= 0), gp, 0.0)

  g = jax.lax.fori_loop(0, iterations, hio, g)
  return jax.lax.fori_loop(0, polish, error_reduction, g)


def candidates(kernel, count, seed=0, grid=None):
  """`count` kernels of `kernel`'s side with its Fourier magnitude, each from
  its own random start (`retrieve`, vmapped over the starts): (count, K, K)
  float64, non-negative, unit sum. Only |FFT(kernel)| is used."""
  kernel = np.asarray(kernel, np.float64)
  side = kernel.shape[0]
  n = grid or max(48, 2 * side + 2)
  padded = np.zeros((n, n))
  padded[:side, :side] = kernel
  magnitude = jnp.asarray(np.abs(np.fft.fft2(padded)), jnp.float32)
  support = np.zeros((n, n), np.float32)
  support[:side, :side] = 1.0
  keys = jax.random.split(jax.random.PRNGKey(seed), count)
  found = jax.vmap(lambda key: retrieve(magnitude, jnp.asarray(support), key))(keys)
  out = np.clip(np.asarray(found, np.float64)[:, :side, :side], 0.0, None)
  return out / np.maximum(out.sum(axis=(1, 2), keepdims=True), 1e-12)
