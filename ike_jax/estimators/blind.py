"""Blind kernel choice: a non-parametric kernel, the spectral Gaussian, or none.

With `--generator=blind` nothing trains. Per image (docs/method.md, "Blind
SR: the kernel choice"):

1. the spectral Gaussian (`ike_jax.spectrum`), as `--generator=spectral`;
2. a non-parametric kernel (`ike_jax.blind`): the LR image deblurred at its
   own scale, coarse to fine from the Gaussian, its LR kernel then carried
   to the HR pitch; the same on the left and the right half of the image,
   and how well those two agree (`agreement`, squared difference over
   squared size; 0 is perfect);
3. the noise level (`ike_jax.noise`, grey levels).

The choice, with thresholds chosen on the tuning images only:
  'blind'    the halves agree (agreement <= AGREE_MAX) and the kernel is
             clearly not the Gaussian (their difference >= DISTINCT_MIN
             times the blind kernel's squared size): camera shake, motion, odd shapes;
  'bicubic'  first, when there is nothing to deblur: the Gaussian sits at
             its floor (both variances within FLOOR_MARGIN of the LR
             pixel's own, `spectrum.min_variance`) or the blind kernel's
             widest variance is within BLIND_FLOOR of that; and after
             'blind', when the image is noisy or finely textured (noise >
             NOISE_MAX grey levels): no deblurring at all;
  'gaussian' else: the spectral Gaussian.
The record (candidates with their scores, the choice, a confidence in
[0, 1]) goes to `<stem>_metrics.json`; the SR stage's prior weight comes
with the choice (`sr_prior`; 'bicubic' asks for no refinement).
"""

import numpy as np

from ike_jax import blind
from ike_jax import kernel
from ike_jax import metrics
from ike_jax import noise
from ike_jax import resize
from ike_jax import spectrum

NAME = 'blind'
HAS_INVERSE = False
TRAINS = False
LABEL = 'blind choice'
MIN_SIDE = 48  # LR px: each half must still hold the coarsest pyramid level

SIZE = 31            # HR kernel side at both scales
AGREE_MAX = 0.5      # halves' disagreement up to which the blind kernel is trusted
DISTINCT_MIN = 2.0   # blind-vs-Gaussian difference from which it is worth using
NOISE_MAX = 3.0      # grey levels above which only bicubic is safe
FLOOR_MARGIN = 1.1   # a Gaussian this close to the floor counts as no blur
BLIND_FLOOR = 1.5    # nor does a blind kernel whose widest variance is within this of it
APERTURE = 1.0 / 12  # the LR pixel's footprint (variance / s^2) added at the HR pitch
PRIORS = {'blind': {2: 3e-3, 4: 3e-3}, 'gaussian': {2: 1e-4, 4: 3e-4}}


def training_scale(scale):
  return scale


def lr_side(scale):
  """Side of the kernel deblurred at the LR pitch (odd): covers SIZE HR px."""
  return 2 * (SIZE // (2 * scale)) + 3


def _grey(lr):
  """Video-range luma in model units: the scale the deblurring thresholds were tuned at."""
  return metrics.rgb_to_y(np.asarray(lr, np.float64)) / 127.5 - 1.0


def blind_kernel(lr, cov, scale):
  """The non-parametric HR kernel of a uint8 LR image (centred, unit sum)."""
  n = lr_side(scale)
  k0 = np.asarray(kernel.gaussian_kernel(np.asarray(cov) / scale ** 2, n, 1), np.float64)
  k_lr = blind.estimate(_grey(lr), k0, 1, resize=resize.imresize_matlab)
  k = blind.lr_to_hr_kernel(k_lr, scale, SIZE, APERTURE)
  return blind.centre_kernel(k, kernel.kernel_center(SIZE, scale))


def second_moments(k):
  """(2, 2) covariance of a kernel about its centre of mass (HR px^2)."""
  rows, cols = np.indices(k.shape)
  k = k / k.sum()
  d = np.stack([rows - (rows * k).sum(), cols - (cols * k).sum()])
  return np.einsum('ihw,jhw,hw->ij', d, d, k)


def _relative(a, b, by=None):
  """kernel_error(a, b) over the mean squared size of a and b (or of `by`)."""
  size = 0.5 * float((a ** 2).sum() + (b ** 2).sum()) if by is None else float((by ** 2).sum())
  return kernel.kernel_error(a, b) / max(size, 1e-12)


def choose(agreement, distinct, sigma, unblurred=False):
  """The rule above: 'blind', 'bicubic' or 'gaussian', and a confidence in [0, 1]."""
  if unblurred:
    return 'bicubic', 1.0
  if agreement <= AGREE_MAX and distinct >= DISTINCT_MIN:
    return 'blind', float(np.clip(1.0 - agreement / AGREE_MAX, 0.0, 1.0))
  if sigma > NOISE_MAX:
    return 'bicubic', float(np.clip(sigma / NOISE_MAX - 1.0, 0.0, 1.0))
  return 'gaussian', float(np.clip(min(agreement / AGREE_MAX - 1.0 if distinct >= DISTINCT_MIN
                                       else 1.0 - distinct / DISTINCT_MIN, 1.0), 0.0, 1.0))


def estimate(lr, cfg):
  """The chosen kernel of one (H, W, 3) uint8 LR image, `spectral.estimate`'s format
  plus 'choice', 'confidence', 'candidates', 'noise_sigma', 'sr_prior'."""
  s = cfg.scale
  cov = spectrum.blur_covariance(metrics.rgb_to_y(np.asarray(lr, np.float64)), s)
  k_gauss = np.asarray(kernel.gaussian_kernel(cov, SIZE, s), np.float64)
  k_blind = blind_kernel(lr, cov, s)
  half = lr.shape[1] // 2
  agreement = _relative(blind_kernel(lr[:, :half], cov, s), blind_kernel(lr[:, half:], cov, s))
  distinct = _relative(k_blind, k_gauss, by=k_blind)
  sigma = noise.sigma(lr)
  floor = FLOOR_MARGIN * spectrum.min_variance(s)
  blind_variance = float(np.linalg.eigvalsh(second_moments(k_blind)).max())
  unblurred = bool(np.linalg.eigvalsh(cov).max() <= floor or blind_variance <= BLIND_FLOOR * floor)
  choice, confidence = choose(agreement, distinct, sigma, unblurred)
  k = k_blind if choice == 'blind' else k_gauss
  k = k / k.sum()
  return {'kernel': k, 'per_colour': np.stack([k] * 3), 'sum': float(k.sum()),
          'center_of_mass': tuple(float(c) for c in kernel.center_of_mass(k)),
          'origin': (SIZE // 2, SIZE // 2), 'linear': True, 'nonlinearity': 0.0,
          'choice': choice, 'confidence': confidence, 'noise_sigma': sigma,
          'sr_prior': PRIORS.get(choice, {}).get(s, 0.0), 'refine': choice != 'bicubic',
          'candidates': {'blind': {'agreement': agreement, 'distinct_from_gaussian': distinct,
                                   'widest_variance': blind_variance},
                         'gaussian': {'covariance': np.asarray(cov).tolist()},
                         'bicubic': {}}}
