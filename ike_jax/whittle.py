"""How well a blur kernel explains an LR image's power spectrum (math only, no I/O).

A Gaussian image prior with a 1/|grad|^2 spectrum (a sharp photo's power falls
roughly as 1/f^2) makes the LR image y = S (k * x) + n Gaussian too, with a
power spectrum diagonal in the Fourier domain: at each LR frequency u, the sum
over the s^2 HR frequencies v that fold onto it (`solve.fold`),

  E |y^(u)|^2 = c sum_v |K(v)|^2 / (|D(v)|^2 + eps) + sigma^2,

K the kernel's transfer function, |D|^2 the gradient's (`solve.gradient_transfer`),
c the image's contrast and sigma^2 the noise. Its negative log-likelihood per
frequency (Whittle's approximation),

  L(k) = min over c, sigma^2 of mean_u [ log E|y^(u)|^2 + |y^(u)|^2 / E|y^(u)|^2 ],

scores a kernel by the photo's spectrum alone: it sees the kernel's magnitude
|K|, not its phase (a kernel and its mirror image score the same). The spectrum
is taken of the image's periodic component (Moisan 2011), so the crop's borders
add no false high frequencies.

`gap` is what the choice uses: L at the blind kernel less L at the kernel this
likelihood alone reaches from it (`refine`, Adam on a softmax of the taps). A
blind estimate that collapsed towards a delta on a blurred photo leaves much
to gain (the photo's spectrum asks for a wider blur); a right one, or any
near-delta on an unblurred photo, little (`docs/method.md`, "The spectral
likelihood test"). `fit_gaussian` is the Gaussian kernel of lowest L near a
given one, which `--spectral_whittle_cap` uses to keep the spectral estimate
from running wide (docs/method.md, "The spectral kernel estimate").
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ike_jax import kernel as kernel_lib
from ike_jax import solve

EPS = 1e-3  # keeps the prior finite at frequency 0 (relative to |D|^2 <= 8)
_LOG_C = np.linspace(-12.0, 12.0, 49)       # grid of log c for the scales' first fit
_LOG_SIGMA2 = np.linspace(-16.0, 4.0, 41)   # ... and of log sigma^2
FIT_SIZE = 31  # HR px: the grid `fit_gaussian`'s kernels are drawn on


def periodic_component(u):
  """Moisan's periodic-plus-smooth split: the periodic part of a 2-D image
  (NumPy), whose DFT has no cross of border artefacts."""
  u = np.asarray(u, np.float64)
  m, n = u.shape
  v = np.zeros_like(u)
  v[0, :] += u[-1, :] - u[0, :]
  v[-1, :] += u[0, :] - u[-1, :]
  v[:, 0] += u[:, -1] - u[:, 0]
  v[:, -1] += u[:, 0] - u[:, -1]
  q, r = np.arange(m)[:, None], np.arange(n)[None, :]
  den = 2 * np.cos(2 * np.pi * q / m) + 2 * np.cos(2 * np.pi * r / n) - 4
  den[0, 0] = 1.0
  smooth = np.fft.fft2(v) / den
  smooth[0, 0] = 0.0
  return u - np.real(np.fft.ifft2(smooth))


def power(y):
  """|y^|^2 / (h w) of a grey image's periodic component, frequency 0 set to
  0 (it is left out of the likelihood): (h, w) float32."""
  p = periodic_component(y)
  out = np.abs(np.fft.fft2(p)) ** 2 / p.size
  out[0, 0] = 0.0
  return jnp.asarray(out, jnp.float32)


def _folded(k, shape, s):
  """sum_v |K(v)|^2 / (|D(v)|^2 + eps) over each LR frequency's aliases: (h, w)."""
  big = (s * shape[0], s * shape[1])
  ratio = jnp.abs(solve.transfer(k, big)) ** 2 / (solve.gradient_transfer(big) + EPS)
  return solve.fold(ratio, s)


def _nll(folded, y2, log_c, log_sigma2):
  v = jnp.exp(log_c) * folded + jnp.exp(log_sigma2)
  terms = jnp.log(v) + y2 / v
  return (jnp.sum(terms) - terms[0, 0]) / (terms.size - 1)


def _fit_scales(folded, y2):
  """(log c, log sigma^2) of the grid's best pair for one kernel."""
  lc, ls = jnp.meshgrid(jnp.asarray(_LOG_C), jnp.asarray(_LOG_SIGMA2), indexing='ij')
  scores = jax.vmap(lambda a, b: _nll(folded, y2, a, b))(lc.ravel(), ls.ravel())
  i = jnp.argmin(scores)
  return lc.ravel()[i], ls.ravel()[i]


@functools.partial(jax.jit, static_argnames=('s',))
def nll(y2, k, s):
  """L(k): the negative log-likelihood per LR frequency of an image with
  `power` y2 under the HR kernel k (unit sum) at scale s, c and sigma^2 at
  the best of a grid (jitted: the grid's scores would be slow eagerly)."""
  folded = _folded(k, y2.shape, s)
  return _nll(folded, y2, *_fit_scales(folded, y2))


def _adam(loss, params, steps, learning_rate):
  """`params` after `steps` of Adam on `loss` (inside a jitted caller)."""
  opt = optax.adam(learning_rate)

  def body(_, carry):
    p, state = carry
    updates, state = opt.update(jax.grad(loss)(p), state, p)
    return optax.apply_updates(p, updates), state

  return jax.lax.fori_loop(0, steps, body, (params, opt.init(params)))[0]


@functools.partial(jax.jit, static_argnames=('s', 'steps'))
def refine(y2, k, s, steps=100, learning_rate=0.05):
  """The kernel L alone reaches from k: `steps` of Adam on the logits of a
  softmax over k's taps and on log c, log sigma^2 (started at the grid's best).
  Returns (kernel, its L)."""
  k = k / jnp.sum(k)
  log_c, log_sigma2 = _fit_scales(_folded(k, y2.shape, s), y2)
  params = (jnp.log(k + 1e-5), log_c, log_sigma2)

  def taps(logits):
    return jax.nn.softmax(logits.ravel()).reshape(k.shape)

  def loss(p):
    return _nll(_folded(taps(p[0]), y2.shape, s), y2, p[1], p[2])

  out = taps(_adam(loss, params, steps, learning_rate)[0])
  return out, nll(y2, out, s)


@functools.partial(jax.jit, static_argnames=('s', 'steps'))
def fit_gaussian(y2, cov, s, steps=200, learning_rate=0.03):
  """The Gaussian kernel's covariance (2, 2), HR px^2, axes (col, row), as
  `kernel.gaussian_kernel`) of lowest L from `cov`: `steps` of Adam on its
  Cholesky factor (log diagonal) and on log c, log sigma^2."""
  chol = jnp.linalg.cholesky(jnp.asarray(cov, jnp.float32))
  k0 = kernel_lib.gaussian_kernel(jnp.asarray(cov, jnp.float32), FIT_SIZE, s)
  params = (jnp.stack([jnp.log(chol[0, 0]), chol[1, 0], jnp.log(chol[1, 1])]),
            *_fit_scales(_folded(k0, y2.shape, s), y2))

  def covariance(q):
    c = jnp.array([[jnp.exp(q[0]), 0.0], [q[1], jnp.exp(q[2])]])
    return c @ c.T

  def loss(p):
    k = kernel_lib.gaussian_kernel(covariance(p[0]), FIT_SIZE, s)
    return _nll(_folded(k, y2.shape, s), y2, p[1], p[2])

  return covariance(_adam(loss, params, steps, learning_rate)[0])


@functools.partial(jax.jit, static_argnames=('s', 'steps'))
def _gap(y2, k, s, steps):
  return nll(y2, k / jnp.sum(k), s) - refine(y2, k, s, steps)[1]


def gap(y, k, s, steps=100):
  """L(k) - L(refine(k)) for a grey LR image y and an HR kernel k: about 0 or
  more (to within the scales' grid and the optimiser: down to -0.01 on the
  tests' images), larger where the photo's spectrum asks for another blur."""
  return float(_gap(power(y), jnp.asarray(k, jnp.float32), s, steps))
