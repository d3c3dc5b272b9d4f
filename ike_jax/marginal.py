"""A blur kernel by the marginal likelihood: MAP_k, not MAP_(x, k) (math only, no I/O).

The alternation in `ike_jax.edge_fit` asks for the kernel and the sharp image
that together explain the LR image best (MAP over both). Levin, Weiss, Durand
and Freeman (2009, 2011) showed why that drifts to a delta: a blurrier
latent image with a narrower kernel is the cheaper pair, on texture most of
all. Their fix asks for the kernel alone, the sharp image integrated out;
with a Gaussian (variational, diagonal) approximation of the posterior on
the image's gradients that is an EM loop, here at the LR pitch (s = 1; y the
grey LR image, * `degrade`'s correlation, D_d the unit differences):

  E-step  for each difference image g_d = D_d x: the posterior mean mu
          (`_mean_latent`: x solved by conjugate gradients under
          ||k * x - y||^2 / eta^2 + sum_d sum_j w_dj (D_d x)_j^2) and its
          variance per pixel c_dj = 1 / (||k||^2 / eta^2 + w_dj), then the
          weights w_dj = E[1 / sigma^2] under the gradient prior, a zero-mean
          mixture of Gaussians (`MIXTURE_WEIGHTS`, `MIXTURE_VARIANCES`, fit on
          sharp photos), given E[g^2] = mu^2 + c; three passes per round;
  M-step  k = argmin 1/2 sum_d ||k * mu_d - D_d y||^2 + 1/2 gamma ||k||^2 on
          the simplex (`edge_fit.kernel_step`), where gamma = sum_dj c_dj is the
          expected residual the image's uncertainty adds: an L2 weight that
          the image itself sets, large where the latent image is unsure (on
          texture), small where its edges are certain;
  noise   eta^2 re-estimated from the expected residual each round.

Coarse to fine as `edge_fit.estimate` (the kernel of each level the next's
start); last, rounds at a fixed low noise level sharpen the kernel. The
estimate keeps the width of the blur where the edge alternation collapses
to a delta, and is often smoother where that one is right
(docs/method.md, "The marginal-likelihood estimate").
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import edge_fit
from ike_jax import kernel
from ike_jax import solve

# The zero-mean mixture of Gaussians of a sharp LR photo's unit differences
# (grey, model units [-1, 1]): fitted by EM on the tuning photos' centre and
# first quadrant crops at x2, each HR crop blurred by the LR pixel's own
# footprint and sampled (`python -m benchmarks.blind_estimators --sharp_mixture`).
MIXTURE_WEIGHTS = np.array([0.2671, 0.3201, 0.2872, 0.1255], np.float32)
MIXTURE_VARIANCES = np.array([0.005814, 0.01805, 0.08209, 0.2735], np.float32) ** 2


def fit_mixture(g, components=4, iterations=200):
  """(weights, variances) of a zero-mean Gaussian mixture fit to samples `g` by EM (NumPy)."""
  g2 = np.asarray(g, np.float64).ravel() ** 2
  variances = np.geomspace(1e-5, 1e-1, components)
  weights = np.full(components, 1.0 / components)
  for _ in range(iterations):
    log_q = np.log(weights) - 0.5 * np.log(variances) - 0.5 * g2[:, None] / variances
    q = np.exp(log_q - log_q.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    weights = q.mean(0)
    variances = (q * g2[:, None]).sum(0) / q.sum(0)
  return weights, variances


def _diff(x):
  """Periodic unit differences along rows and columns, (2, H, W) (`solve.grad`)."""
  return jnp.stack(solve.grad(x))


def _diff_adjoint(g):
  return solve.grad_adjoint(g[0], g[1])


def prior_weights(second_moment, weights, variances):
  """E[1 / sigma^2] per pixel under the mixture, given E[g^2]: the precision
  each gradient gets in the next E-step."""
  v = variances[:, None, None, None]
  log_q = (jnp.log(weights)[:, None, None, None] - 0.5 * jnp.log(v)
           - 0.5 * second_moment[None] / v)
  return jnp.sum(jax.nn.softmax(log_q, axis=0) / v, axis=0)


def _mean_latent(y_hat, p, w, eta2, x, iterations):
  """The posterior mean image: conjugate gradients on
  (K^T K / eta^2 + D^T W D + 1e-6) x = K^T y / eta^2, from x (periodic)."""
  a2 = jnp.abs(p) ** 2

  def op(v):
    return jnp.real(jnp.fft.ifft2(a2 * jnp.fft.fft2(v))) / eta2 + _diff_adjoint(w * _diff(v)) + 1e-6 * v

  b = jnp.real(jnp.fft.ifft2(jnp.conj(p) * y_hat)) / eta2
  r = b - op(x)

  def body(_, carry):
    x, r, d, rs = carry
    q = op(d)
    alpha = rs / jnp.maximum(jnp.vdot(d, q), 1e-20)
    x, r = x + alpha * d, r - alpha * q
    rn = jnp.vdot(r, r)
    return x, r, r + (rn / jnp.maximum(rs, 1e-30)) * d, rn

  x, *_ = jax.lax.fori_loop(0, iterations, body, (x, r, r, jnp.vdot(r, r)))
  return x


@functools.partial(jax.jit, static_argnames=('rounds', 'passes', 'iterations', 'margin',
                                             'fixed_noise'))
def estimate_level(y, k0, eta, *, rounds=20, passes=3, iterations=40, margin=8,
                   fixed_noise=False):
  """EM rounds at one level, at the LR pitch.

  Args:
    y: (h, w) grey LR image (model units).
    k0: (K, K) starting kernel on the simplex.
    eta: the noise level (model units) the first round assumes.
    rounds: E- and M-steps.
    passes: E-step passes (mean, variance, prior weights) per round.
    iterations: conjugate-gradient iterations per mean.
    margin: LR px of mirrored padding around the (periodic) image.
    fixed_noise: keep eta (else re-estimated after each M-step).
  Returns:
    ((K, K) kernel, the last noise level).
  """
  weights, variances = jnp.asarray(MIXTURE_WEIGHTS), jnp.asarray(MIXTURE_VARIANCES)
  y = jnp.pad(y, margin, mode='symmetric')
  shape = y.shape
  y_hat = jnp.fft.fft2(y)
  size = k0.shape[0]
  border = margin + size // 2 + 1
  mask = np.zeros(shape, np.float32)
  mask[border:shape[0] - border, border:shape[1] - border] = 1.0
  wanted = kernel.kernel_center(size, 1)

  def body(carry, _):
    k, x, w, eta2 = carry
    norm = jnp.sum(k * k)
    p = solve.transfer(k, shape)
    for _ in range(passes):
      x = _mean_latent(y_hat, p, w, eta2, x, iterations)
      w = prior_weights(_diff(x) ** 2 + 1.0 / (norm / eta2 + w), weights, variances)
    variance = 1.0 / (norm / eta2 + w)
    uncertainty = jnp.sum(variance * mask[None])
    k = edge_fit.kernel_step(x, y, k, 1, uncertainty, border=border)
    k = edge_fit.recentre(edge_fit.clean(k), (wanted, wanted))
    if not fixed_noise:
      r = (jnp.real(jnp.fft.ifft2(solve.transfer(k, shape) * jnp.fft.fft2(x))) - y) * mask
      eta2 = jnp.maximum((jnp.sum(r * r) + 0.5 * jnp.sum(k * k) * uncertainty)
                         / jnp.sum(mask), 1e-6)
    return (k, x, w, eta2), None

  w0 = jnp.full((2,) + shape, jnp.sum(weights / variances), jnp.float32)
  (k, _, _, eta2), _ = jax.lax.scan(body, (k0, y, w0, eta ** 2), None, length=rounds)
  return k, jnp.sqrt(eta2)


def estimate(y, k0, *, levels=3, eta=0.02, rounds=20, final_eta=0.01, final_rounds=5,
             resize=None):
  """Coarse-to-fine marginal-likelihood kernel of a grey LR image (LR pitch).

  Args:
    y: (h, w) grey LR image in model units ([-1, 1]).
    k0: (K, K) starting kernel (e.g. the spectral Gaussian at the LR pitch), K odd.
    levels: pyramid levels (each halves the image and the kernel side).
    eta: the noise level the first round of each level assumes (model
      units; re-estimated each round).
    rounds: EM rounds per level.
    final_eta, final_rounds: rounds at the finest level at that fixed noise
      level (0 rounds: none): a lower noise level, a sharper kernel.
    resize: (image, factor) -> image, the down-scaler of the pyramid (needed
      where levels > 1).
  Returns:
    (K, K) float64 kernel >= 0, unit sum, centred as `edge_fit.estimate`'s.
  """
  def fit_level(yl, k):
    return estimate_level(jnp.asarray(yl, jnp.float32), jnp.asarray(k, jnp.float32),
                          jnp.float32(eta), rounds=rounds)[0]

  k, yl = edge_fit.coarse_to_fine(y, k0, levels, resize, fit_level)
  if final_rounds > 0:
    kl, _ = estimate_level(jnp.asarray(yl, jnp.float32), jnp.asarray(k / k.sum(), jnp.float32),
                           jnp.float32(final_eta), rounds=final_rounds, fixed_noise=True)
    k = np.asarray(kl, np.float64)
  return k / k.sum()
