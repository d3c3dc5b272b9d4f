"""A non-parametric blur kernel from the LR image alone (math only, no I/O).

Alternating blind deconvolution at the SR scale, in the spirit of Cho & Lee
(2009), Xu & Jia (2010) and Pan et al. (2014): with y the LR image (grey),
S keeping every s-th pixel and * `degrade`'s correlation,

  x-step  x = argmin 1/2 ||S (k * x) - y||^2 + lam ||grad x||_0
          (half-quadratic splitting: hard thresholds of the gradient and
          closed-form solves, `solve.solve_normal`): a latent HR image with
          only its salient edges, the rest flat;
  k-step  k = argmin 1/2 sum_d ||S (k * D_d x) - D'_d y||^2 + gamma/2 ||k||^2
          over the simplex (k >= 0, sum k = 1), by projected accelerated
          gradient. D_d is the difference at stride s along rows or columns
          in HR, D'_d the unit difference in LR (they commute with S:
          S D_d = D'_d S), so the fit sees edges, not brightness.

The threshold lam starts high (only the strongest edges) and falls each
round; the kernel starts at a given guess (the spectral Gaussian) and is
re-centred on its centre of mass after each k-step (the blur's position is
not identifiable from the LR image: a shifted kernel and a shifted scene give
the same LR). Coarse to fine: the same on the LR image downscaled by 2 with
half the kernel support first, its kernel upscaled as the next start. Last,
rounds at the finest level with a low threshold settle the kernel (the
latent image then keeps the photo's detail, and a true kernel stays put).
With `autocorr` > 0 the k-step also fits the LR image's gradient
autocorrelation: a blurred photo's is, nearly, the kernel's own
autocorrelation convolved with a sharp photo's (`SHARP_AUTOCORR`), which holds
on textures and smooth gradients where the latent image finds no edges.
Every function is pure; `estimate` jit-compiles per image shape.
(`docs/method.md`, "The non-parametric kernel estimate".)
"""

import functools

import jax
import jax.numpy as jnp
from jax.scipy import signal
import numpy as np

from ike_jax import kernel
from ike_jax import solve

# The gradient autocorrelation of a sharp LR photo (`gradient_autocorrelation`,
# radius 3): the mean over the tuning photos' crops (centre and four quadrants,
# the cell photo left out) at x2, each the HR crop blurred by the LR pixel's own
# footprint and sampled (`python -m benchmarks.blind_estimators --sharp_prior`).
SHARP_AUTOCORR = np.array([
    [0.029, 0.052, 0.052, 0.107, 0.049, 0.021, 0.007],
    [0.033, 0.073, 0.098, 0.172, 0.064, 0.041, 0.032],
    [0.040, 0.090, 0.218, 0.417, 0.181, 0.065, 0.020],
    [0.040, 0.070, 0.299, 1.000, 0.299, 0.070, 0.040],
    [0.020, 0.065, 0.181, 0.417, 0.218, 0.090, 0.040],
    [0.032, 0.041, 0.064, 0.172, 0.098, 0.073, 0.033],
    [0.007, 0.021, 0.049, 0.107, 0.052, 0.052, 0.029]], np.float32)
AUTOCORR_RADIUS = 6  # LR px: the lags the fit compares (at most the kernel's side less 1)


def project_simplex(v):
  """Euclidean projection of a flat vector onto {k >= 0, sum k = 1}."""
  n = v.shape[0]
  u = jnp.sort(v)[::-1]
  css = jnp.cumsum(u) - 1.0
  idx = jnp.arange(1, n + 1)
  rho = jnp.max(jnp.where(u - css / idx > 0, idx, 0))
  theta = css[rho - 1] / rho
  return jnp.maximum(v - theta, 0.0)


def gradient_autocorrelation(y, radius):
  """Autocorrelation of an image's unit differences (along rows and along
  columns, each less its mean, the two summed), lags within `radius`,
  normalised to 1 at lag 0: a (2 radius + 1)^2 float32 array (NumPy)."""
  y = np.asarray(y, np.float64)
  out = 0.0
  for axis in (0, 1):
    d = np.diff(y, axis=axis)
    d = d - d.mean()
    f = np.fft.fft2(d, s=(2 * y.shape[0], 2 * y.shape[1]))  # zero-padded: no wrap-around
    out = out + np.fft.fftshift(np.real(np.fft.ifft2(np.abs(f) ** 2)))
  c0, c1 = out.shape[0] // 2, out.shape[1] // 2
  w = out[c0 - radius:c0 + radius + 1, c1 - radius:c1 + radius + 1]
  return (w / w[radius, radius]).astype(np.float32)


def kernel_autocorrelation(k, radius):
  """The gradient autocorrelation a photo blurred by k would have: k's own
  autocorrelation convolved with `SHARP_AUTOCORR`, lags within `radius`,
  normalised to 1 at lag 0."""
  own = signal.correlate2d(k, k, mode='full')
  model = signal.convolve2d(own, jnp.asarray(SHARP_AUTOCORR), mode='same')
  c = k.shape[0] - 1
  w = model[c - radius:c + radius + 1, c - radius:c + radius + 1]
  return w / w[radius, radius]


def latent(y_hat, p, g2, lam, s, rounds=6):
  """The x-step: an L0-gradient HR image under the kernel with transfer p.

  Half-quadratic splitting with beta = 2 lam, 4 lam, ... (`rounds` of them):
  gradients of squared size below lam / beta are set to 0, then x solved in
  closed form. A small pull to 0 (1e-6) keeps the solve well posed.
  Returns the (H, W) latent image.
  """
  base = 1e-6
  x = jnp.real(jnp.fft.ifft2(solve.solve_normal(y_hat, p, base + 1e-3 * g2, None, s)))

  def body(i, x):
    beta = 2.0 * lam * 2.0 ** i
    gr, gc = solve.hard_threshold(*solve.grad(x), lam / beta)
    b_hat = beta * jnp.fft.fft2(solve.grad_adjoint(gr, gc))
    return jnp.real(jnp.fft.ifft2(solve.solve_normal(y_hat, p, base + beta * g2, b_hat, s)))

  return jax.lax.fori_loop(0, rounds, body, x)


def _stride_diff(x, s):
  """HR differences at stride s: (x[p + s] - x[p]) along rows and along columns."""
  return jnp.stack([jnp.roll(x, -s, axis=0) - x, jnp.roll(x, -s, axis=1) - x])


def _lr_diff(y):
  return jnp.stack([jnp.roll(y, -1, axis=0) - y, jnp.roll(y, -1, axis=1) - y])


def kernel_step(x, y, k, s, gamma, iterations=60, border=0, autocorr=None, weight=0.0):
  """The k-step: projected accelerated gradient on the simplex from k.

  Args:
    x: (H, W) latent HR image; y: (h, w) LR image, H = s h.
    k: (K, K) starting kernel (on the simplex).
    gamma: weight of ||k||^2.
    border: LR pixels left out of the fit on every side (where the periodic
      wrap-around and the mirrored margin would fake edges).
    autocorr: the LR image's `gradient_autocorrelation`, (2 r + 1)^2, or None.
    weight: of ||kernel_autocorrelation(k) - autocorr||^2, relative to the
      energy of the LR differences fitted.
  Returns:
    (K, K) kernel >= 0 summing to 1.
  """
  size = k.shape
  shape = x.shape
  # Real FFTs: half the spectrum, the same correlation (the k-step is most of
  # the estimate's time).
  dx_hat = jnp.fft.rfft2(_stride_diff(x, s))         # (2, H, W // 2 + 1)
  h, w = y.shape
  mask = np.zeros((h, w), np.float32)
  mask[border:h - border, border:w - border] = 1.0
  dy = _lr_diff(y) * mask                             # (2, h, w)

  def forward(kk):
    p = jnp.fft.rfft2(solve.point_spread(kk, shape))
    return jnp.fft.irfft2(p[None] * dx_hat, s=shape)[:, ::s, ::s] * mask

  energy = jnp.sum(dy * dy)

  def objective(kk):
    r = forward(kk) - dy
    out = 0.5 * jnp.sum(r * r) + 0.5 * gamma * jnp.sum(kk * kk)
    if autocorr is not None:
      a = kernel_autocorrelation(kk, autocorr.shape[0] // 2) - autocorr
      out = out + 0.5 * weight * energy * jnp.sum(a * a)
    return out

  grad = jax.grad(objective)
  # Lipschitz constant of the gradient by power iteration on the linear part.
  _, vjp = jax.vjp(forward, k)

  def power(_, v):
    v = v / jnp.linalg.norm(v)
    return vjp(forward(v))[0]

  v = jax.lax.fori_loop(0, 15, power, jnp.ones(size) / size[0])
  lip = jnp.vdot(v / jnp.linalg.norm(v), vjp(forward(v / jnp.linalg.norm(v)))[0]) * 1.1 + gamma
  eta = 1.0 / (lip * (1.0 + weight))  # the autocorrelation term, not a quadratic: a safe margin

  def body(i, carry):
    kk, prev = carry
    z = kk + (i / (i + 3.0)) * (kk - prev)
    nxt = project_simplex((z - eta * grad(z)).ravel()).reshape(size)
    return nxt, kk

  k, _ = jax.lax.fori_loop(0, iterations, body, (k, k))
  return k


def recentre(k, wanted):
  """Shifts k by the integer nearest to `wanted - centre of mass` (periodic within
  its support; the taps that wrap are few for a kernel near its centre)."""
  rows, cols = jnp.indices(k.shape)
  com = jnp.stack([jnp.sum(rows * k), jnp.sum(cols * k)])
  shift = jnp.round(jnp.asarray(wanted) - com).astype(jnp.int32)
  return jnp.roll(k, shift, axis=(0, 1))


def clean(k, rel=0.05):
  """Taps below `rel` times the largest set to 0, the rest re-normalised
  (Cho & Lee's kernel clean-up: isolated noise taps go)."""
  k = jnp.where(k >= rel * jnp.max(k), k, 0.0)
  return k / jnp.sum(k)


def spread(k):
  """A kernel's spread: the trace of its second moments about its centre of mass (px^2)."""
  rows, cols = jnp.indices(k.shape)
  k = k / jnp.sum(k)
  r0, c0 = jnp.sum(rows * k), jnp.sum(cols * k)
  return jnp.sum(((rows - r0) ** 2 + (cols - c0) ** 2) * k)


def hold_width(k, reference, floor):
  """k blended with `reference` just enough that its spread is at least
  `floor` times the reference's (both centred alike; the spread of a blend is
  the blend of the spreads). floor 0: k as it is."""
  wide, own = spread(reference), spread(k)
  t = jnp.clip((floor * wide - own) / jnp.maximum(wide - own, 1e-6), 0.0, 1.0)
  return (1.0 - t) * k + t * reference


@functools.partial(jax.jit, static_argnames=('scale', 'rounds', 'margin'))
def estimate_level(y, k0, lams, gamma, *, scale, rounds=6, margin=4, autocorr=None,
                   weight=0.0, reference=None, floor=0.0):
  """Alternates x- and k-steps at one level; one round per entry of `lams`.

  Args:
    y: (h, w) grey LR image (model units).
    k0: (K, K) starting kernel on the simplex.
    lams: (R,) L0 thresholds of the rounds (falling).
    gamma: the k-step's L2 weight.
    scale: s (static).
    autocorr, weight: the k-step's autocorrelation fit (`kernel_step`).
    reference, floor: after each k-step the kernel keeps at least `floor`
      times the spread of the (K, K) `reference` (`hold_width`; None: no floor).
  Returns:
    the (K, K) kernel.
  """
  s = scale
  y = jnp.pad(y, margin, mode='symmetric')
  shape = (s * y.shape[0], s * y.shape[1])
  g2 = solve.gradient_transfer(shape)
  y_hat = jnp.fft.fft2(y)
  size = k0.shape[0]
  wanted = kernel.kernel_center(size, s)

  def body(k, lam):
    x = latent(y_hat, solve.transfer(k, shape), g2, lam, s, rounds)
    k = kernel_step(x, y, k, s, gamma, border=margin + size // (2 * s) + 1,
                    autocorr=autocorr, weight=weight)
    k = recentre(clean(k), (wanted, wanted))
    if reference is not None:
      k = hold_width(k, reference, floor)
    return k, None

  k, _ = jax.lax.scan(body, k0, lams)
  return k


def _zoom_kernel(k, size):
  """A kernel resampled to a (size, size) grid of twice (or half) the pitch,
  centred, non-negative, unit sum (bilinear; NumPy)."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  k = np.asarray(k, np.float64)
  factor = size / k.shape[0]
  z = np.clip(ndimage.zoom(k, factor, order=1), 0, None)
  out = np.zeros((size, size))
  n = min(size, z.shape[0])
  a, b = (size - n) // 2, (z.shape[0] - n) // 2
  out[a:a + n, a:a + n] = z[b:b + n, b:b + n]
  return out / out.sum()


def coarse_to_fine(y, k0, levels, resize, fit_level):
  """The pyramid a kernel estimate climbs: `fit_level(image, kernel) -> kernel`
  at each level, coarsest first, each level the LR image down-scaled by a
  further 2 (`resize(image, factor)`, cropped to even sides) with half the
  kernel side (odd, at least 5), its kernel upscaled as the next start. At
  most `levels` of them, the coarsest at least 8 px on its short side.
  Returns (float64 kernel, the finest level's image).
  """
  levels = max(1, min(levels, 1 + int(np.log2(max(min(y.shape) / 8, 1.0)))))
  sizes = [k0.shape[0]]
  for _ in range(levels - 1):
    sizes.append(max(5, (sizes[-1] // 2) // 2 * 2 + 1))
  k = _zoom_kernel(k0, sizes[-1])
  for level in reversed(range(levels)):
    yl = y if level == 0 else resize(y, 0.5 ** level)
    yl = yl[:yl.shape[0] // 2 * 2, :yl.shape[1] // 2 * 2]
    k = np.asarray(fit_level(yl, k), np.float64)
    if level:
      k = _zoom_kernel(k, sizes[level - 1])
  return k, yl


def estimate(y, k0, scale, *, levels=3, lam=4e-3, lam_ratio=0.25, rounds_per_level=6,
             l0_rounds=10, gamma=0.0, autocorr=0.0, settle_rounds=0, settle_lam=5e-4,
             reference=None, floor=0.0, resize=None):
  """Coarse-to-fine non-parametric kernel estimate of a grey LR image.

  Args:
    y: (h, w) grey LR image in model units ([-1, 1]).
    k0: (K, K) starting kernel (e.g. the spectral Gaussian), K odd.
    scale: s.
    levels: pyramid levels (each halves the image and the kernel side).
    lam: L0 threshold at the finest level's last round; each level's rounds
      fall from lam / lam_ratio to lam.
    rounds_per_level: x/k alternations per level.
    l0_rounds: splitting rounds of each x-step.
    gamma: the k-step's L2 weight on the kernel in the pyramid, per pixel of
      the finest level's `y` (it favours spread kernels over a delta, the same
      at any image size; the coarser levels, with a quarter and a sixteenth of
      the pixels, take the same total weight, so relative to their data it is
      4 and 16 times stronger there; the settling rounds fit without it).
    autocorr: weight of the k-step's fit to the image's gradient
      autocorrelation at each level (0: none; `kernel_step`).
    settle_rounds: alternations at the finest level after the pyramid, all at
      the low threshold `settle_lam` (0: none). The pyramid's falling
      threshold finds the blur but its coarse latent image leaves the kernel
      off the truth (docs/method.md, "Where it falls short"); at a low
      threshold the latent image keeps the photo's detail, a true kernel is
      nearly a fixed point and a wrong one settles: on the x2 tuning photos,
      every image deblurred at TV 3e-3, camera shake +1.02 -> +1.71 dB, the
      worst image -7.13 -> -0.05.
    reference, floor: in the settling rounds the kernel keeps at least
      `floor` times the spread of the (K, K) `reference` (`hold_width`; the
      marginal-likelihood estimate, which keeps a blur's width where the
      edge fit collapses to a delta: docs/method.md, "A width floor").
    resize: (image, factor) -> image, the down-scaler of the pyramid (needed
      where levels > 1).
  Returns:
    (K, K) float64 kernel >= 0, unit sum, centre of mass at the wanted centre
    (to within half a pixel).
  """
  lams = jnp.asarray(np.geomspace(lam / lam_ratio, lam, rounds_per_level), jnp.float32)
  gamma = gamma * y.shape[0] * y.shape[1]

  def fit_level(yl, k):
    fit = None
    if autocorr > 0:
      fit = jnp.asarray(gradient_autocorrelation(yl, min(AUTOCORR_RADIUS, k.shape[0] - 1)))
    return estimate_level(jnp.asarray(yl, jnp.float32), jnp.asarray(k, jnp.float32), lams,
                          gamma, scale=scale, rounds=l0_rounds, autocorr=fit,
                          weight=jnp.float32(autocorr))

  k, yl = coarse_to_fine(y, k0, levels, resize, fit_level)
  if settle_rounds > 0:  # on the finest level's image, yl
    k = settle(yl, k, settle_rounds, settle_lam, scale=scale, rounds=l0_rounds,
               run=rounds_per_level, reference=reference, floor=floor)
  return k / k.sum()


def settle(y, k, count, lam, *, scale, rounds, run, reference=None, floor=0.0):
  """`count` alternations at the fixed L0 threshold `lam` from the kernel k
  (`estimate`'s settling rounds). Without a width floor, and where `run`
  divides `count`, they go in runs of `run` rounds through the program the
  pyramid's finest level compiled where the pyramid fitted no gradient
  autocorrelation (same arguments, same shapes: one compilation fewer per
  image shape; the kernel is the same to the bit, as a scan in parts is the
  scan whole; with `autocorr` > 0 the pyramid's program differs and this is
  one more). Returns a float64 (K, K) kernel.
  """
  y = jnp.asarray(y, jnp.float32)
  k = jnp.asarray(k / k.sum(), jnp.float32)
  held = reference is not None and floor > 0
  if not held and count % run == 0:
    lams = jnp.full((run,), lam, jnp.float32)
    for _ in range(count // run):  # the pyramid's call without autocorr, argument for argument
      k = estimate_level(y, k, lams, 0.0, scale=scale, rounds=rounds, autocorr=None,
                         weight=jnp.float32(0.0))
    return np.asarray(k, np.float64)
  k = estimate_level(y, k, jnp.full((count,), lam, jnp.float32), 0.0, scale=scale,
                     rounds=rounds, floor=jnp.float32(floor),
                     reference=jnp.asarray(reference, jnp.float32) if held else None)
  return np.asarray(k, np.float64)


@functools.partial(jax.jit, static_argnames=('rounds', 'margin'))
def polish(y, k, tv, *, rounds=3, margin=16):
  """`rounds` k-steps at the LR pitch, each fitted to the LR image deblurred by
  the current kernel under total variation (weight `tv`, the SR stage's solve
  at scale 1) rather than to the L0 latent image.

  The TV latent keeps texture and soft edges, so a true kernel stays nearly
  where it is (the L0 latent moves it: docs/method.md, "Where it falls
  short"); it gives the k-step no push towards the blur from a wrong start.
  Returns the (K, K) kernel, re-centred as `estimate_level` centres it.
  """
  y = jnp.asarray(y, jnp.float32)
  size = k.shape[0]
  wanted = kernel.kernel_center(size, 1)

  def body(_, k):
    x = solve.solve(y[..., None], k, y[..., None], scale=1, anchor=1e-4, tv=tv,
                    tv_iterations=8, margin=margin)[..., 0]
    k = kernel_step(x, y, k, 1, 0.0, border=size // 2 + 1)
    return recentre(clean(k), (wanted, wanted))

  return jax.lax.fori_loop(0, rounds, body, jnp.asarray(k, jnp.float32))


def shrink(y, k, scale, lam, rounds=4):
  """A milder HR kernel: `rounds` x- and k-steps of `estimate_level` at the SR
  pitch (stride `scale`), the L0 threshold falling from 2 lam to lam, started
  from k (a kernel found at the LR pitch, carried to the HR pitch).

  At the SR pitch the latent image has four times the LR image's unknowns and
  absorbs part of the blur, so the alternation draws the kernel towards a
  delta: from scratch it collapses; from a kernel found at the LR pitch it
  keeps the part the image's edges hold on to. The result is further from the
  true kernel (on a synthetic scene, kernel error 0 -> 0.06 from the true
  motion kernel), but deblurring by it is safer: on the tuning photos its SR
  images fall far less often below bicubic (docs/method.md, "The
  non-parametric kernel estimate").
  Returns a (K, K) unit-sum kernel, its centre of mass where `estimate_level` puts it.
  """
  lams = jnp.asarray(np.geomspace(2 * lam, lam, rounds), jnp.float32)
  k = estimate_level(jnp.asarray(y, jnp.float32), jnp.asarray(k, jnp.float32), lams, 0.0,
                     scale=scale)
  k = np.asarray(k, np.float64)
  return k / k.sum()


def lr_to_hr_kernel(k_lr, scale, size, aperture):
  """An LR-pixel blur kernel as an HR kernel for `degrade` at scale s.

  Deblurring at the LR scale finds k_L with y = k_L * x_L, x_L the sharpest
  LR image. If x_L is the scene seen through a reference blur b and sampled
  (x_L = S (b * x)), then y = S ((k_L up s) * b * x): the HR kernel is k_L
  resampled to the HR pitch and blurred by b, here a Gaussian of variance
  `aperture * s^2` HR px^2 (the LR pixel's own footprint).
  Returns a (size, size) unit-sum kernel centred on `size // 2`.
  """
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  k_lr = np.asarray(k_lr, np.float64)
  n = k_lr.shape[0]
  # Resample: HR tap t (centre 0) reads LR position t / s.
  c_hr = (size - 1) / 2
  t = (np.arange(size) - c_hr) / scale + (n - 1) / 2
  rr, cc = np.meshgrid(t, t, indexing='ij')
  k = np.clip(ndimage.map_coordinates(k_lr, [rr, cc], order=1, mode='constant'), 0, None)
  if aperture > 0:
    k = ndimage.gaussian_filter(k, np.sqrt(aperture) * scale, mode='constant')
  return k / k.sum()


def centre_kernel(k, wanted, iterations=20):
  """Sub-pixel shift of k putting its centre of mass at (wanted, wanted); >= 0, unit sum.

  Clipped spline ringing and taps pushed off the grid make one shift fall
  short, so the total shift is refined by fixed-point iteration, each time
  shifting the original kernel once.
  """
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  k = np.asarray(k, np.float64)
  rows, cols = np.indices(k.shape)
  total, out = np.zeros(2), k
  for _ in range(iterations):
    com = np.array([(rows * out).sum(), (cols * out).sum()]) / out.sum()
    delta = wanted - com
    if np.max(np.abs(delta)) < 1e-8:
      break
    total += delta
    out = np.clip(ndimage.shift(k, total, order=3, mode='grid-constant'), 0.0, None)
    out /= out.sum()
  return out
