"""The blur of an LR image from its own power spectrum (math only, no I/O).

The model (docs/method.md, "The spectral kernel estimate"): the scene is
scale-invariant, so its power spectrum is A(theta) |f|^-alpha for some
amplitude per direction and some exponent; the LR image is that scene blurred
by a Gaussian of covariance `cov` (HR px^2) and subsampled by s. At LR
frequency v (cycles per LR px) the LR's log power is then

  log P(v) = log A(theta) - alpha log|v| - (4 pi^2 / s^2) v^T cov v + const.

Between v and v/2 along one direction, log A(theta) cancels, and

  log P(v) - log P(v/2) = c - (3 pi^2 / s^2) v^T cov v,   c = -alpha log 2,

which is linear in (c, cov_xx, cov_xy, cov_yy): one weighted least-squares
fit over a band of frequencies and every direction gives the covariance.
The band keeps clear of the lowest frequencies (few samples, the image's
layout) and of the LR Nyquist frequency (aliasing, noise, JPEG blocks).

The fit's settings (band, binning, phases, the calibration factor, Huber
re-weighting) are a `config.SpectralConfig`, flags `--spectral_*`; their
defaults are the calibrated ones (docs/method.md, "The spectral kernel
estimate": 4 phases measured worse than 1; textures read as blur, and too wide
a kernel costs back-projection far more than too narrow a one, hence the
variance scale below 1).
"""

import numpy as np

from ike_jax import config

MIN_SIDE = 32  # LR px: smaller images leave too few frequencies in the band
MAX_VARIANCE = 12.0  # HR px^2 at x2 (scaled by (s/2)^2): caps a flat spectrum's fit


def min_variance(scale):
  """Floor of either principal variance (HR px^2): the LR pixel's own
  aperture, a box s HR px wide, has variance s^2 / 12."""
  return scale * scale / 12.0


def log_power(y, directions, per_octave, lowest):
  """Binned log power spectrum of a greyscale image.

  The image, less its mean and times a Hann window, is Fourier transformed;
  each bin (direction, radius) holds the log of the median power of its
  frequencies (the median: robust to the spikes of periodic artefacts).

  Args:
    y: (H, W) float image.
    directions: bins over [0, pi) (a real image's spectrum is symmetric).
    per_octave: radial bins per octave, from `lowest` up to 0.5.
    lowest: lowest radius binned (cycles per pixel).
  Returns:
    (angles (D,), radii (D, R) mean radius of each bin, log power (D, R)
    (NaN where empty), counts (D, R)).
  """
  y = np.asarray(y, np.float64)
  h, w = y.shape
  y = (y - y.mean()) * np.outer(np.hanning(h), np.hanning(w))
  power = np.abs(np.fft.fft2(y)) ** 2
  fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing='ij')
  radius = np.hypot(fx, fy)
  direction = np.minimum((np.mod(np.arctan2(fy, fx), np.pi) / np.pi * directions).astype(int),
                         directions - 1)
  n_radii = int(np.ceil(np.log2(0.5 / lowest) * per_octave))
  ring = np.floor(np.log2(np.maximum(radius, 1e-12) / lowest) * per_octave).astype(int)
  ok = (ring >= 0) & (ring < n_radii)
  index = direction[ok] * n_radii + ring[ok]
  counts = np.bincount(index, minlength=directions * n_radii)
  radii = np.bincount(index, radius[ok], minlength=directions * n_radii)
  log_p = np.full(directions * n_radii, np.nan)
  order = np.argsort(index, kind='stable')
  bins, starts = np.unique(index[order], return_index=True)
  for b, chunk in zip(bins, np.split(power[ok][order], starts[1:])):
    log_p[b] = np.log(max(np.median(chunk), 1e-30))
  with np.errstate(invalid='ignore', divide='ignore'):
    radii = radii / counts
  angles = (np.arange(directions) + 0.5) / directions * np.pi
  shape = (directions, n_radii)
  return angles, radii.reshape(shape), log_p.reshape(shape), counts.reshape(shape)


def blur_covariance(y, scale, settings=config.SpectralConfig()):
  """The Gaussian blur covariance (2, 2) in HR px^2 of an LR greyscale image.

  Axes are (col, row), as `kernel.gaussian_kernel` takes them. The fit is
  repeated with the radial bins (and the band) moved by `phases` equal steps
  within one bin, and the covariances averaged: one fit alone depends on where
  the bin edges fall. The principal variances are then clipped to
  [min_variance(s), MAX_VARIANCE (s/2)^2].

  Args:
    y: (H, W) LR image (e.g. its luma), any range.
    scale: s, the factor the LR image was subsampled by.
    settings: a `config.SpectralConfig`: the band (lo, hi) in cycles per LR
      px of the upper frequency of each pair; the binning (`log_power`); the
      phases (fits averaged, bin edges moved by 1/phases of a bin each time);
      the variance scale (multiplies the fitted covariance, before clipping);
      the Huber re-weightings of each fit (0: none) and where their weights
      start, in robust standard deviations (1.4826 x median |residual|).
  Raises:
    ValueError: the image is too small to fit.
  """
  band = (settings.spectral_band_lo, settings.spectral_band_hi)
  directions, per_octave = settings.spectral_directions, settings.spectral_per_octave
  phases, variance_scale = settings.spectral_phases, settings.spectral_variance_scale
  robust_iterations, huber_k = settings.spectral_robust_iterations, settings.spectral_huber_k
  fits = [_fit(y, scale, (band[0] * 2 ** (j / (per_octave * phases)),
                          band[1] * 2 ** (j / (per_octave * phases))), directions, per_octave,
                    robust_iterations, huber_k)
          for j in range(phases)]
  values, vectors = np.linalg.eigh(variance_scale * np.mean(fits, axis=0))
  values = np.clip(values, min_variance(scale), MAX_VARIANCE * (scale / 2) ** 2)
  return vectors @ np.diag(values) @ vectors.T


def _fit(y, scale, band, directions, per_octave, robust_iterations, huber_k):
  """One least-squares fit with the radial bins starting at band[0] / 2."""
  angles, radii, log_p, counts = log_power(y, directions, per_octave, band[0] / 2 * 0.99)
  rows, rhs, weights = [], [], []
  for d, angle in enumerate(angles):
    u = np.array([np.cos(angle), np.sin(angle)])
    for r in range(per_octave, radii.shape[1]):
      hi, lo = r, r - per_octave  # an octave apart
      if not counts[d, hi] or not counts[d, lo] or not band[0] <= radii[d, hi] <= band[1]:
        continue
      dq = (radii[d, hi] ** 2 - radii[d, lo] ** 2) * np.array([u[0] * u[0], 2 * u[0] * u[1], u[1] * u[1]])
      rows.append(np.concatenate([[1.0], -4 * np.pi ** 2 / scale ** 2 * dq]))
      rhs.append(log_p[d, hi] - log_p[d, lo])
      weights.append(np.sqrt(min(counts[d, hi], counts[d, lo])))
  if len(rows) < 8:
    raise ValueError(f'image {np.shape(y)} is too small for a spectral blur estimate')
  a, b, w = np.asarray(rows), np.asarray(rhs), np.asarray(weights)
  coef = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)[0]
  for _ in range(robust_iterations):
    r = np.abs(b - a @ coef)
    cut = huber_k * 1.4826 * max(np.median(r), 1e-12)
    wr = w * np.sqrt(np.minimum(1.0, cut / np.maximum(r, 1e-12)))
    coef = np.linalg.lstsq(a * wr[:, None], b * wr, rcond=None)[0]
  _, cxx, cxy, cyy = coef
  return np.array([[cxx, cxy], [cxy, cyy]])
