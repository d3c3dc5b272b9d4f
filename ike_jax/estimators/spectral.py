"""The spectral kernel estimate as a kernel estimator (`ike_jax.estimators`).

With `--generator=spectral` nothing trains: the kernel is an anisotropic
Gaussian whose covariance is read off the LR image's own power spectrum in
closed form (`ike_jax.spectrum`; docs/method.md, "The spectral kernel
estimate"), directly at the job's scale. It takes well under a second and is
the same for every seed. Its settings are `config.SpectralConfig`
(`--spectral_*`). A photo larger than `ESTIMATE_SIDE` LR px on a side is
estimated on its central crop of that side: a million LR pixels give the
spectrum plenty of samples, and the cost stays flat. There is no inverse: the SR image comes from `--refine`
(back-projection onto the kernel) or `--zssr`, starting from bicubic.
"""

import numpy as np

from ike_jax import crops
from ike_jax import kernel
from ike_jax import metrics
from ike_jax import spectrum
from ike_jax import whittle

NAME = 'spectral'
HAS_INVERSE = False
TRAINS = False
LABEL = 'spectral'
MIN_SIDE = spectrum.MIN_SIDE  # LR px
ESTIMATE_SIDE = 1024  # LR px: larger photos are estimated on their central crop
WHITTLE_SIDE = 128    # LR px: the likelihood's Gaussian (--spectral_whittle_cap), central crop


def training_scale(scale):
  """Estimated at the job's own scale (no x2-then-x4 derivation)."""
  return scale


def checks(cfg):
  """(ok, one-line message) pairs for the `--spectral_*` settings."""
  c = cfg.estimate.spectral
  return [
      (0 < c.spectral_band_lo < c.spectral_band_hi <= 0.5,
       '--spectral_band_lo and --spectral_band_hi must satisfy 0 < lo < hi <= 0.5, got '
       f'{c.spectral_band_lo} and {c.spectral_band_hi}'),
      (min(c.spectral_directions, c.spectral_per_octave, c.spectral_phases) > 0,
       '--spectral_directions, --spectral_per_octave and --spectral_phases must be positive'),
      (c.spectral_variance_scale > 0 and c.spectral_huber_k > 0,
       '--spectral_variance_scale and --spectral_huber_k must be positive'),
      (c.spectral_robust_iterations >= 0, '--spectral_robust_iterations must be >= 0'),
      (c.spectral_whittle_cap >= 0, '--spectral_whittle_cap must be >= 0'),
  ]


def estimate(lr, cfg):
  """The kernel estimate of one LR image, in `readout.estimate_kernel`'s format.

  Args:
    lr: (H, W, 3) uint8 LR image.
    cfg: the run's `config.Config` (its scale and `estimate.spectral`).
  Returns:
    dict: 'kernel' (size, size) float64 (size `kernel.DEFAULT_SIZE[s]`),
    'per_colour' (3, size, size), 'sum', 'center_of_mass', 'origin' (the
    centre tap, for `kernel.degrade`), 'linear' (True), 'nonlinearity' (0),
    'covariance' ((2, 2) HR px^2, axes (col, row)).
  """
  s = cfg.scale
  size = kernel.DEFAULT_SIZE[s]
  lr = crops.centre_crop(np.asarray(lr), ESTIMATE_SIDE)
  cov = spectrum.blur_covariance(metrics.rgb_to_y(np.asarray(lr, np.float64)), s,
                                 cfg.estimate.spectral)
  cap = cfg.estimate.spectral.spectral_whittle_cap
  if cap > 0:
    y = metrics.rgb_to_y(np.asarray(crops.centre_crop(lr, WHITTLE_SIDE), np.float64)) / 127.5 - 1
    likeliest = cap * np.asarray(whittle.fit_gaussian(whittle.power(y), cov, s), np.float64)
    if np.trace(likeliest) < np.trace(cov):
      cov = likeliest
  k = np.asarray(kernel.gaussian_kernel(cov, size, s), np.float64)
  return {**kernel.as_estimate(k), 'covariance': cov.tolist()}
