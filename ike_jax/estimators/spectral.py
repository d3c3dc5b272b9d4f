"""The spectral kernel estimate as a kernel estimator (`ike_jax.estimators`).

With `--generator=spectral` nothing trains: the kernel is an anisotropic
Gaussian whose covariance is read off the LR image's own power spectrum in
closed form (`ike_jax.spectrum`; docs/method.md, "The spectral kernel
estimate"), directly at the job's scale. It takes well under a second and is
the same for every seed. There is no inverse: the SR image comes from
`--refine` (back-projection onto the kernel) or `--zssr`.
"""

import numpy as np

from ike_jax import kernel
from ike_jax import metrics
from ike_jax import spectrum

NAME = 'spectral'
HAS_INVERSE = False
TRAINS = False
LABEL = 'spectral'
MIN_SIDE = spectrum.MIN_SIDE  # LR px


def training_scale(scale):
  """Estimated at the job's own scale (no x2-then-x4 derivation)."""
  return scale


def estimate(lr, cfg, **fit):
  """The kernel estimate of one LR image, in `kernel.estimate_kernel`'s format.

  Args:
    lr: (H, W, 3) uint8 LR image.
    cfg: a `config.TrainConfig` (its scale).
    **fit: settings of `spectrum.blur_covariance` (band, phases, ...) other
      than its defaults (for tuning sweeps).
  Returns:
    dict: 'kernel' (size, size) float64 (size `kernel.DEFAULT_SIZE[s]`),
    'per_colour' (3, size, size), 'sum', 'center_of_mass', 'origin' (the
    centre tap, for `kernel.degrade`), 'linear' (True), 'nonlinearity' (0),
    'covariance' ((2, 2) HR px^2, axes (col, row)).
  """
  s = cfg.scale
  size = kernel.DEFAULT_SIZE[s]
  cov = spectrum.blur_covariance(metrics.rgb_to_y(np.asarray(lr, np.float64)), s, **fit)
  k = np.asarray(kernel.gaussian_kernel(cov, size, s), np.float64)
  k /= k.sum()
  return {'kernel': k, 'per_colour': np.stack([k] * 3), 'sum': float(k.sum()),
          'center_of_mass': tuple(float(c) for c in kernel.center_of_mass(k)),
          'origin': (size // 2, size // 2), 'linear': True, 'nonlinearity': 0.0,
          'covariance': cov.tolist()}
