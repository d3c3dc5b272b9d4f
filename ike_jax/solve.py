"""Super-resolution with a known kernel in the Fourier domain (math only, no I/O).

The data model is `kernel.degrade`: y = S (k * x), a correlation with the
kernel about its origin followed by keeping every s-th pixel. With periodic
borders the blur is diagonal in the Fourier domain (its transfer function
`P`), and keeping every s-th pixel folds the s^2 frequencies
v, v + (H/s, 0), ..., that share a position modulo the LR grid onto one LR
frequency (aliasing). So for any prior that is itself diagonal in the Fourier
domain, `psi(v) >= 0`, the minimiser of

  E(x) = 1/2 ||S P x - y||^2 + 1/2 x^T Psi x - b^T x

solves (P^H S^T S P + Psi) x = P^H S^T y + b, whose matrix, restricted to one
group of s^2 aliased frequencies with transfer values p, is
`diag(psi) + p* p^T / s^2`: a diagonal plus a rank-one term. The
Sherman-Morrison formula inverts it per group in closed form,

  x^ = r^/psi - (p*/psi) (sum_m p_m r^_m / psi_m) / (s^2 + sum_m |p_m|^2 / psi_m),

with r the right-hand side: a handful of FFTs, whatever the kernel (the
closed form of Zhao et al. 2016, "Fast single image super-resolution using a
new analytical solution for l2-l2 problems", written for a general diagonal
prior). `solve` uses it with a quadratic prior (a pull towards a starting
image and a penalty on gradients); total variation goes through half-quadratic
splitting, each x-step one such solve (`docs/method.md`, "The SR stage").

Borders: the LR image is mirrored by `margin` pixels on every side before the
periodic solve and the result cropped back, so the wrap-around seam falls in
the mirrored margin. A mirrored margin is the blur of a mirrored scene only
for a kernel symmetric about its centre; for camera shake or motion it is data
no scene explains, and the solve fits it through the frequencies the kernel
nearly removes, which streak the whole image. `boundary='unknown'` asks the
margin for nothing: the data term covers the LR image alone (pixels beyond it
are unknowns, Almeida & Figueiredo 2013, "Deconvolving images with unknown
boundaries using the alternating direction method of multipliers"), solved by
ADMM with one closed form per splitting round (`docs/method.md`, "The SR
stage").
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def point_spread(kernel, shape, origin=None):
  """The point spread of `degrade`'s correlation on a periodic (H, W) grid.

  Correlating with k about origin o, `z[p] = sum_a k[a] x[p + a - o]`, is the
  circular convolution of x with the point spread `psf[o - a] = k[a]`.

  Args:
    kernel: (kh, kw) or (..., kh, kw) kernel(s).
    shape: (H, W), each at least the kernel's side.
    origin: (row, col) static; default (kh // 2, kw // 2).
  Returns:
    (..., H, W) float32.
  """
  kernel = jnp.asarray(kernel, jnp.float32)
  kh, kw = kernel.shape[-2:]
  o = (kh // 2, kw // 2) if origin is None else (int(origin[0]), int(origin[1]))
  psf = jnp.zeros((*kernel.shape[:-2], *shape), jnp.float32)
  psf = psf.at[..., :kh, :kw].set(kernel[..., ::-1, ::-1])
  # The flipped tap k[kh-1-j] sits at j; it belongs at o - (kh-1-j) = j - (kh-1-o).
  return jnp.roll(psf, (o[0] - (kh - 1), o[1] - (kw - 1)), axis=(-2, -1))


def transfer(kernel, shape, origin=None):
  """Transfer function of `degrade`'s correlation on a periodic (H, W) grid:
  the FFT of `point_spread` (same arguments), (..., H, W) complex64."""
  return jnp.fft.fft2(point_spread(kernel, shape, origin))


def gradient_transfer(shape):
  """|G_row|^2 + |G_col|^2 of periodic forward differences on an (H, W) grid."""
  fy = np.fft.fftfreq(shape[0])[:, None]
  fx = np.fft.fftfreq(shape[1])[None, :]
  return jnp.asarray(4 * np.sin(np.pi * fy) ** 2 + 4 * np.sin(np.pi * fx) ** 2, jnp.float32)


def fold(a, s):
  """(..., sh, sw) -> (..., h, w): the sum over each group of aliased frequencies."""
  *lead, hh, ww = a.shape
  return a.reshape(*lead, s, hh // s, s, ww // s).sum(axis=(-4, -2))


def _unfold(a, s):
  """(..., h, w) -> (..., sh, sw): an LR spectrum repeated over its aliases."""
  return jnp.tile(a, (1,) * (a.ndim - 2) + (s, s))


def solve_normal(y_hat, p, psi, b_hat, s):
  """x^ solving (P^H S^T S P + Psi) x = P^H S^T y + b, all in the Fourier domain.

  Args:
    y_hat: (..., h, w) FFT of the LR image.
    p: (..., H, W) transfer function of the blur (`transfer`), H = s h.
    psi: (..., H, W) the prior's diagonal, > 0.
    b_hat: (..., H, W) FFT of the prior's linear term, or None.
    s: scale (static).
  Returns:
    (..., H, W) complex: FFT of the minimiser.
  """
  r = jnp.conj(p) * _unfold(y_hat, s)
  if b_hat is not None:
    r = r + b_hat
  return _sherman_morrison(r, p, jnp.abs(p) ** 2, psi, s)


def _sherman_morrison(r, p, p2, psi, s):
  """`solve_normal` given its right-hand side r and |p|^2 (p2)."""
  r_psi = r / psi
  num = fold(p * r_psi, s)
  den = s * s + fold(p2 / psi, s)
  return r_psi - jnp.conj(p) / psi * _unfold(num / den, s)


def grad(x):
  """Periodic forward differences of (..., H, W): (d_row, d_col)."""
  return jnp.roll(x, -1, axis=-2) - x, jnp.roll(x, -1, axis=-1) - x


def grad_adjoint(gr, gc):
  """Adjoint of `grad`."""
  return (jnp.roll(gr, 1, axis=-2) - gr) + (jnp.roll(gc, 1, axis=-1) - gc)


def shrink(gr, gc, t, eps=0.0):
  """Proximal map of t * Huber_eps(|g|) on a gradient field (isotropic).

  Huber_eps(r) = r^2 / (2 eps) for r <= eps, r - eps / 2 above: quadratic on
  small gradients (noise), linear on edges; eps = 0 is total variation (a
  soft threshold by t).
  """
  mag = jnp.sqrt(gr * gr + gc * gc + 1e-12)
  f = jnp.where(mag > eps + t, 1.0 - t / mag, 1.0 / (1.0 + t / jnp.maximum(eps, 1e-12)))
  f = jnp.maximum(f, 0.0)
  return gr * f, gc * f


def hard_threshold(gr, gc, t):
  """Keeps gradients of squared magnitude above t (the L0 prior's proximal map)."""
  keep = (gr * gr + gc * gc) > t
  return jnp.where(keep, gr, 0.0), jnp.where(keep, gc, 0.0)


# ADMM's penalty on `boundary='unknown'`'s split (the LR prediction against its
# copy): with the splitting's 8 rounds, 0.3 kept the most of the true kernel's
# gain of 0.1, 0.3 and 1 on the x2 tuning crops (`docs/method.md`, "The SR stage").
UNKNOWN_RHO = 0.3


@functools.partial(jax.jit, static_argnames=('scale', 'origin', 'margin', 'tv_iterations',
                                             'boundary'))
def solve(lr, kernel, start, *, scale, origin=None, anchor=1e-3, smooth=0.0, tv=0.0,
          tv_iterations=0, tv_eps=0.0, margin=None, boundary='mirror', valid=None):
  """The SR image minimising a data term and a Fourier-diagonal (or TV) prior.

  Minimises, per colour, over the periodic extension of the mirrored LR,

    1/2 ||degrade(x) - y||^2 + anchor/2 ||x - start||^2
      + smooth/2 ||grad x||^2 + tv * TV(x)

  (sums over pixels; TV isotropic, Huber-smoothed by `tv_eps`). Without TV
  it is one closed form; with TV (`tv_iterations` > 0) half-quadratic
  splitting: an auxiliary gradient field g is shrunk (`shrink`, threshold
  tv / beta), then x solved in closed form with `beta/2 ||grad x - g||^2` in
  place of the TV, beta = tv * 2^i in round i. Starting beta this low makes
  the first rounds a strong edge-preserving smoothing that later rounds
  relax: on samples/astronaut x2 with its true kernel, 8 rounds at tv = 1e-4
  reach 32.24 dB Y-PSNR, the 100-step gradient back-projection 32.30
  (`docs/method.md`, "The SR stage").

  Args:
    lr: (h, w, C) LR image (e.g. in [-1, 1]).
    kernel: (kh, kw) or (C, kh, kw) kernel at the SR scale, summing to ~1.
    start: (s h, s w, C) image the anchor pulls towards (e.g. bicubic).
    scale: s (static).
    origin: (row, col) static, as `degrade`.
    anchor: weight of the pull towards `start` (> 0 keeps the solve well posed).
    smooth: weight of the quadratic gradient penalty.
    tv: weight of total variation.
    tv_iterations: splitting rounds (0: no TV).
    tv_eps: Huber smoothing of the TV (0: plain TV).
    margin: LR pixels mirrored on every side against the periodic seam;
      default the kernel's side in LR px plus 16 (a kernel that reaches the
      seam costs dB: 31-tap shake kernels at x2 lost 1.7 dB with 8).
    boundary: 'mirror' (the margin is data) or 'unknown' (the data term
      covers the LR image only; one ADMM step per splitting round, at least
      8 rounds, TV or not).
    valid: (h, w) 1 where an LR pixel is data, 0 where it is not (a window's
      own mirrored context beyond a photo's edge); boundary='unknown' only;
      default every pixel.
  Returns:
    (s h, s w, C) float32 (not clipped).
  """
  if boundary not in ('mirror', 'unknown'):
    raise ValueError(f"boundary must be 'mirror' or 'unknown', got {boundary!r}")
  s = scale
  m = jnp.shape(kernel)[-1] // s + 16 if margin is None else margin
  y = jnp.moveaxis(jnp.asarray(lr, jnp.float32), -1, 0)            # (C, h, w)
  x0 = jnp.moveaxis(jnp.asarray(start, jnp.float32), -1, 0)        # (C, H, W)
  h, w = y.shape[-2:]
  y = jnp.pad(y, ((0, 0), (m, m), (m, m)), mode='symmetric')
  x0 = jnp.pad(x0, ((0, 0), (s * m, s * m), (s * m, s * m)), mode='symmetric')
  shape = x0.shape[-2:]
  kernel = jnp.asarray(kernel, jnp.float32)
  kernel = kernel / jnp.sum(kernel, axis=(-2, -1), keepdims=True)
  p = transfer(kernel if kernel.ndim == 3 else kernel[None], shape, origin)
  g2 = gradient_transfer(shape)
  p2 = jnp.abs(p) ** 2
  prior_b = anchor * jnp.fft.fft2(x0)
  base = anchor + smooth * g2

  def rhs(target, weight=1.0):
    """The right-hand side's data and prior parts for `weight/2 ||S P x - target||^2`."""
    return jnp.conj(p) * _unfold(jnp.fft.fft2(target), s) + prior_b / weight

  def closed_form(r, extra_psi, extra_b, weight=1.0):
    """The minimiser given `rhs`'s r and the splitting's (extra_psi, extra_b)."""
    x_hat = _sherman_morrison(r + extra_b / weight, p, p2, (base + extra_psi) / weight, s)
    return jnp.real(jnp.fft.ifft2(x_hat))

  def tv_terms(i, x):
    """The splitting's (extra_psi, extra_b) in round i: beta doubling, g shrunk."""
    if tv_iterations == 0:
      return 0.0, 0.0
    beta = tv * 2.0 ** i
    gr, gc = shrink(*grad(x), tv / beta, tv_eps)
    return beta * g2, beta * jnp.fft.fft2(grad_adjoint(gr, gc))

  def predict(x):
    """S P x: the LR image x gives."""
    return jnp.real(jnp.fft.ifft2(p * jnp.fft.fft2(x)))[..., ::s, ::s]

  if boundary == 'unknown':
    # Outside the data the start's own prediction stands in for the mirrored
    # margin, so what is not data does not even start the solve.
    inside = jnp.ones((h, w), jnp.float32) if valid is None else jnp.asarray(valid, jnp.float32)
    inside = jnp.pad(inside, m)
    y = inside * y + (1.0 - inside) * predict(x0)
  r_y = rhs(y)  # once for every round
  x = closed_form(r_y, 0.0, 0.0)
  if boundary == 'mirror':
    if tv_iterations > 0:
      x = jax.lax.fori_loop(0, tv_iterations, lambda i, x: closed_form(r_y, *tv_terms(i, x)), x)
  else:
    # ADMM on min 1/2 ||M (v - y)||^2 + prior(x) subject to v = S P x, M the
    # LR image's own pixels: x from v minus the scaled dual d, then v (the
    # data inside, the prediction outside), then d.

    def admm(i, state):
      x, v, d = state
      x = closed_form(rhs(v - d, UNKNOWN_RHO), *tv_terms(i, x), weight=UNKNOWN_RHO)
      pred = predict(x)
      v = (inside * y + UNKNOWN_RHO * (pred + d)) / (inside + UNKNOWN_RHO)
      return x, v, d + pred - v

    x, _, _ = jax.lax.fori_loop(0, max(tv_iterations, 8), admm, (x, y, jnp.zeros_like(y)))
  x = x[:, s * m:shape[0] - s * m, s * m:shape[1] - s * m]
  return jnp.moveaxis(x, 0, -1)

