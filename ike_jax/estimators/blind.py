"""Blind kernel choice: a non-parametric kernel, the spectral Gaussian, or none
(bicubic; as an option, on a noisy JPEG image, a denoised upscale).

With `--generator=blind` nothing trains. Per image (docs/method.md, "Blind
SR: the kernel choice"):

1. the spectral Gaussian (`ike_jax.spectrum`), as `--generator=spectral`;
2. a non-parametric kernel (`ike_jax.edge_fit`): the LR image deblurred at its
   own scale, coarse to fine from the Gaussian, its LR kernel then carried
   to the HR pitch; the same on the two halves of the image (split across its longer side),
   and how well those two agree (`agreement`, squared difference over
   squared size; 0 is perfect);
3. the noise level (`ike_jax.noise`, grey levels) and the JPEG blockiness
   (`noise.blockiness`).

From those scores and more, measured here only where the rule asks for them
(the ringing of the SR image each candidate gives, the spectral
likelihood's gap, the evidence of a blur, the second estimate's scores),
`blind_rule` makes the choice, its confidence and the reason in words: the
rule and its thresholds are written down there.
With `companion` > 0, where the (first) blind kernel is chosen the estimate
also carries the marginal-likelihood kernel ('companion_kernel') and that
weight ('companion_weight'): the SR image is the blend of the two kernels' SR
images (`postprocess.with_companion`; docs/method.md, "Two kernels, one image").
(settings: `config.BlindConfig`, `--blind_*`; flags/blind_x4.flags sets x4's.)
The record (candidates with their scores, the choice, a confidence in
[0, 1] and the reason in words: the blind kernel's failed tests, then what
decided) goes to `<stem>_metrics.json` and the terminal; the SR stage's settings come with
the choice ('sr_prior' unless 'bicubic'; 'sr_solver': 'fourier' for 'gaussian',
the solver `best_x2` uses with that kernel; 'refine': False for 'bicubic').
An image with next to no detail (`detail` below `DETAIL_MIN` in the whole
or in either half: a flat colour, one edge across an otherwise flat
image), or one where the first estimate or a half's finds no edges to fit
(`NoEdges`), gets 'bicubic' without the tests: no blur can be read from it
(the record's 'reason' says so). Where only another estimate finds none,
its test fails instead: the two estimates disagree, the second chance is
off, or the blend is left out.
A photo larger than `ESTIMATE_SIDE` LR px on a side is estimated on its
central crop of that side, and the ringing and the spectral gap measured
on its central `RINGING_SIDE` / `WHITTLE_SIDE` (the settings were chosen on
128x128 LR images, and the cost stays flat).
"""

import concurrent.futures
import dataclasses
import functools
import os

import jax.numpy as jnp
import numpy as np

from ike_jax import edge_fit
from ike_jax import crops
from ike_jax import kernel
from ike_jax import marginal
from ike_jax import metrics
from ike_jax import noise
from ike_jax import resize
from ike_jax import spectrum
from ike_jax import tiling
from ike_jax import whittle
from ike_jax.estimators import blind_rule

NAME = 'blind'
HAS_INVERSE = False
TRAINS = False
LABEL = 'blind choice'
MIN_SIDE = 48  # LR px: each half (24 px or more) must still hold a level of the pyramid
# What the estimate leaves resident beside the SR stage (its compiled solves and
# arrays): a 12 MP motion-blurred photo through blind_x2 peaked at 1.67 GB
# against 1.46 predicted for the SR stage alone (x4: 4.07 against 4.46).
PEAK_BYTES = 384 * 2 ** 20

SIZE = 31            # HR kernel side at both scales
ESTIMATE_SIDE = 384  # LR px: larger photos are estimated on their central crop
RINGING_SIDE = 128   # LR px: the ringing test runs on the central crop of this side
WHITTLE_SIDE = 128   # LR px: and the spectral likelihood's gap
APERTURE = 1.0 / 12  # the LR pixel's footprint (variance / s^2) added at the HR pitch
DETAIL_MIN = 0.1     # grey levels: less detail than this (`detail`) shows no blur


# `--blind_*` settings that must be positive; every other number must be >= 0
# (inf is allowed wherever it is: a test turned off).
_POSITIVE = ('blind_rounds', 'blind_settle_lam', 'blind_second_wide_min', 'blind_evidence_min',
             'blind_prior', 'blind_noisy_factor', 'blind_noisy_prior')


def checks(cfg):
  """(ok, one-line message) pairs for the `--blind_*` settings."""
  c = cfg.estimate.blind
  out = []
  for field in dataclasses.fields(c):
    value = getattr(c, field.name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      continue
    if field.name in _POSITIVE:  # NaN fails either comparison
      out.append((value > 0, f'--{field.name} must be positive, got {value}'))
    else:
      out.append((value >= 0, f'--{field.name} must be >= 0, got {value}'))
  return out + [
      (c.blind_width_floor <= 1.0,
       f'--blind_width_floor must be in [0, 1], got {c.blind_width_floor}'),
      (c.blind_companion <= 1.0, f'--blind_companion must be in [0, 1], got {c.blind_companion}'),
      (c.blind_second_estimator in ('autocorr', 'marginal'),
       f'--blind_second_estimator must be autocorr or marginal, got {c.blind_second_estimator}'),
  ]


def training_scale(scale):
  return scale


def lr_side(scale):
  """Side of the kernel deblurred at the LR pitch (odd): covers SIZE HR px."""
  return 2 * (SIZE // (2 * scale)) + 3


def _grey(lr):
  """Video-range luma in model units: the scale the deblurring thresholds were tuned at."""
  return metrics.rgb_to_y(np.asarray(lr, np.float64)) / 127.5 - 1.0


def settling(settings):
  """(rounds, L0 threshold) of the settling alternations a `config.BlindConfig` asks for."""
  return settings.blind_settle_rounds, settings.blind_settle_lam


class NoEdges(Exception):
  """A kernel estimate found no edges to fit (its kernel is not finite)."""


def _or_none(job):
  """`job`, returning None where its kernel estimate raises `NoEdges`."""
  def run():
    try:
      return job()
    except NoEdges:
      return None
  return run


def _finite(k):
  """k, if every tap is finite; else `NoEdges` (where the latent image keeps
  no gradient, the k-step has nothing to fit and divides by zero)."""
  if not np.isfinite(k).all():
    raise NoEdges()
  return k


def blind_kernel(lr, cov, scale, shrink, rounds, autocorr, settle=(0, 0.0), gamma=0.0,
                 floor=0.0):
  """The non-parametric HR kernel of a uint8 LR image (centred, unit sum):
  found at the LR pitch (`rounds` alternations per pyramid level, the k-step
  fitting the gradient autocorrelation at weight `autocorr`, then `settle` =
  (rounds, L0 threshold) settling alternations at the finest level), carried to the
  HR pitch and, with `shrink` > 0, made milder there (`edge_fit.shrink` at that
  L0 threshold); `gamma` is the pyramid k-step's L2 weight on the kernel; with
  `floor` > 0 the settling rounds keep at least that fraction of the
  marginal-likelihood estimate's spread (`edge_fit.hold_width`)."""
  y = _grey(lr)
  k0 = _lr_start(cov, scale)
  reference = (marginal.estimate(y, k0, resize=resize.imresize_matlab)
               if floor > 0 and settle[0] > 0 else None)
  k_lr = edge_fit.estimate(y, k0, 1, resize=resize.imresize_matlab,
                           rounds_per_level=rounds, autocorr=autocorr, settle_rounds=settle[0],
                           settle_lam=settle[1], gamma=gamma, reference=reference, floor=floor)
  k = edge_fit.lr_to_hr_kernel(_finite(k_lr), scale, SIZE, APERTURE)
  centre = kernel.kernel_center(SIZE, scale)
  if shrink > 0:
    k = edge_fit.shrink(y, edge_fit.centre_kernel(k, centre), scale, shrink)
  return edge_fit.centre_kernel(k, centre)


def _lr_start(cov, scale):
  """The spectral Gaussian (HR covariance `cov`) at the LR pitch: the estimates' start."""
  return np.asarray(kernel.gaussian_kernel(np.asarray(cov) / scale ** 2, lr_side(scale), 1),
                    np.float64)


def gaussian(cov, scale):
  """The Gaussian kernel of HR covariance `cov` on the blind kernels' SIZE grid (float64)."""
  return np.asarray(kernel.gaussian_kernel(np.asarray(cov), SIZE, scale), np.float64)


def no_blur(scale):
  """The kernel of no blur: the LR pixel's own footprint (the Gaussian at its floor)."""
  return gaussian(np.eye(2) * spectrum.min_variance(scale), scale)


def marginal_kernel(lr, cov, scale):
  """The marginal-likelihood HR kernel of a uint8 LR image (`ike_jax.marginal`,
  from the spectral Gaussian at the LR pitch), carried to the HR pitch and
  centred as `blind_kernel`'s."""
  k_lr = marginal.estimate(_grey(lr), _lr_start(cov, scale), resize=resize.imresize_matlab)
  k = edge_fit.lr_to_hr_kernel(_finite(k_lr), scale, SIZE, APERTURE)
  return edge_fit.centre_kernel(k, kernel.kernel_center(SIZE, scale))


def covariance(lr, cfg):
  """The spectral Gaussian's (2, 2) covariance of a uint8 LR image (HR px^2):
  the Gaussian candidate and the blind estimates' start."""
  return spectrum.blur_covariance(metrics.rgb_to_y(np.asarray(lr, np.float64)), cfg.scale,
                                  cfg.estimate.spectral)


def first_kernel(lr, cov, cfg, shrink=True):
  """The blind kernel as the presets estimate it (`blind_kernel` with the
  `--blind_*` settings; `shrink` False: without `--blind_shrink`, as the halves are)."""
  c = cfg.estimate.blind
  return blind_kernel(lr, cov, cfg.scale, c.blind_shrink if shrink else 0.0, c.blind_rounds,
                      c.blind_autocorr, settling(c), c.blind_gamma, c.blind_width_floor)


def cross_kernel(lr, cov, cfg):
  """The two estimates' test's other estimate: edges and the gradient
  autocorrelation (`--blind_cross_autocorr`), settled as the first."""
  c = cfg.estimate.blind
  return blind_kernel(lr, cov, cfg.scale, 0.0, c.blind_rounds, c.blind_cross_autocorr,
                      settling(c))


def second_kernel(lr, cov, cfg):
  """The second chance's estimate (`--blind_second_estimator`): `cross_kernel`'s,
  or the marginal-likelihood estimate (`marginal_kernel`)."""
  if cfg.estimate.blind.blind_second_estimator == 'marginal':
    return marginal_kernel(lr, cov, cfg.scale)
  return cross_kernel(lr, cov, cfg)


def second_moments(k):
  """(2, 2) covariance of a kernel about its centre of mass (HR px^2)."""
  rows, cols = np.indices(k.shape)
  k = k / k.sum()
  d = np.stack([rows - (rows * k).sum(), cols - (cols * k).sum()])
  return np.einsum('ihw,jhw,hw->ij', d, d, k)


def widest_variance(k):
  """A kernel's widest variance (largest eigenvalue of `second_moments`, px^2)."""
  return float(np.linalg.eigvalsh(second_moments(k)).max())


def disagreement(variance_a, variance_b):
  """|log| ratio of two widest variances: how far two estimates differ in width."""
  return abs(float(np.log(max(variance_a, 1e-9) / max(variance_b, 1e-9))))


def halves(lr):
  """The two halves of an image, split across its longer side."""
  if lr.shape[1] >= lr.shape[0]:
    return lr[:, :lr.shape[1] // 2], lr[:, lr.shape[1] // 2:]
  return lr[:lr.shape[0] // 2], lr[lr.shape[0] // 2:]


def detail(lr):
  """How much detail a uint8 LR image holds where the estimate reads it: the
  RMS of its luma's unit differences (grey levels), the least of the whole
  image's and each half's."""
  rms = lambda y: float(np.sqrt(0.5 * (np.mean(np.diff(y, axis=0) ** 2)
                                       + np.mean(np.diff(y, axis=1) ** 2))))
  y = metrics.rgb_to_y(np.asarray(lr, np.float64))
  return min(rms(part) for part in (y, *halves(y)))


def _relative(a, b, by=None):
  """kernel_error(a, b) over the mean squared size of a and b (or of `by`)."""
  size = 0.5 * float((a ** 2).sum() + (b ** 2).sum()) if by is None else float((by ** 2).sum())
  return kernel.kernel_error(a, b) / max(size, 1e-12)


def spectral_gap(lr, k, scale):
  """`whittle.gap` of an HR kernel on the central `WHITTLE_SIDE` crop of a
  uint8 LR image (the size its limit was chosen at, whatever the photo's)."""
  return whittle.gap(_grey(crops.centre_crop(np.asarray(lr), WHITTLE_SIDE)), k, scale)


def evidence(lr, k_blind, k_gauss, scale):
  """How much the photo's power spectrum asks for a blur: the spectral
  likelihood's `whittle.nll` of no blur (the LR pixel's own footprint, the
  Gaussian at its floor) less that of the likelier of the two kernels, on the
  central `WHITTLE_SIDE` crop of a uint8 LR image (about 0 on a photo no
  kernel blurred; docs/method.md, "Evidence of a blur")."""
  y2 = whittle.power(_grey(crops.centre_crop(np.asarray(lr), WHITTLE_SIDE)))
  nll = lambda k: float(whittle.nll(y2, jnp.asarray(np.asarray(k) / np.sum(k), jnp.float32),
                                    scale))
  return nll(no_blur(scale)) - min(nll(k_blind), nll(k_gauss))


def _gradient_energy(img):
  y = metrics.rgb_to_y(np.asarray(img, np.float64))
  return float(np.sum(np.diff(y, axis=0) ** 2) + np.sum(np.diff(y, axis=1) ** 2))


def ringing(lr, k, cfg, tv):
  """Gradient energy (luma) of the SR image a candidate kernel gives over
  bicubic's, on the central `RINGING_SIDE` crop of a uint8 LR image: how much
  the deblurring amplifies (docs/method.md, "Blind SR: the kernel choice").
  Restoring a true blur's edges raises it a little; deblurring a blur that is
  not there, a lot. The SR image is the Fourier stage's (`tiling.solve_photo`,
  one window) at TV weight `tv` (the candidate's, `sr_prior`), whatever
  `--refine_solver` says."""
  s = cfg.scale
  crop = crops.centre_crop(np.asarray(lr), RINGING_SIDE)
  per_colour = jnp.asarray(np.stack([k / k.sum()] * 3), jnp.float32)
  settings = {**tiling.fourier_settings(cfg.post), 'tv': tv}
  sr = tiling.solve_photo(crop, None, per_colour, (SIZE // 2, SIZE // 2), s, settings,
                          tiling.plan(crop.shape, s))
  return _gradient_energy(sr) / max(_gradient_energy(resize.bicubic_upscale(crop, s)), 1e-12)


def concurrently(jobs):
  """{name: zero-argument function} -> {name: its result}, the functions run
  on a pool of threads (one per core, at most one per function).

  JAX lets go of Python's lock while a compiled program runs, and a kernel
  estimate of a 128 px image keeps about one core busy: on 2 cores the four
  estimates `features` makes take about half the time side by side, with the
  same kernels on 128 px images and kernels the same to rounding on the 384 px
  crop of a large photo (benchmarks/RESULTS.md, "Blind SR per degradation
  family").
  """
  cores = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
           else os.cpu_count() or 1)  # the cores this process may use
  workers = max(1, min(len(jobs), cores))
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    futures = {name: pool.submit(job) for name, job in jobs.items()}
    return {name: future.result() for name, future in futures.items()}


def features(lr, cfg):
  """What the choice sees in one (H, W, 3) uint8 LR image, and its kernels.

  Returns:
    (dict: 'agreement', 'distinct' (blind vs Gaussian, over the blind kernel's
    squared size), 'blind_variance', 'gauss_variance' (widest, HR px^2),
    'cross' (`disagreement` of the blind kernel and `cross_kernel`'s; 0
    where --blind_cross_max is inf), 'whittle_gap' (`spectral_gap` of the
    blind kernel; None where --blind_whittle_waive is 0), 'noise' (grey
    levels), 'covariance' (the Gaussian's); blind kernel; Gaussian kernel;
    the second chance's kernel (`second_kernel`; None where
    --blind_second_wide_min is inf)).
  """
  s = cfg.scale
  cov = covariance(lr, cfg)
  k_gauss = gaussian(cov, s)
  c = cfg.estimate.blind
  # The independent estimates: the whole image's (with its spectral gap, which
  # needs only it), the two estimates' test's and the second chance's (where
  # they differ), each half's.
  def blind_and_gap():
    k = first_kernel(lr, cov, cfg)
    return k, (spectral_gap(lr, k, s) if c.blind_whittle_waive > 0 else None)

  jobs = {'blind': blind_and_gap}
  if np.isfinite(c.blind_cross_max):
    jobs['cross'] = lambda: cross_kernel(lr, cov, cfg)
  if np.isfinite(c.blind_second_wide_min) and not (
      'cross' in jobs and c.blind_second_estimator == 'autocorr'):
    jobs['second'] = lambda: second_kernel(lr, cov, cfg)
  for i, part in enumerate(halves(lr)):
    jobs[f'half{i}'] = functools.partial(first_kernel, part, cov, cfg, shrink=False)
  k = concurrently({name: _or_none(job) for name, job in jobs.items()})
  if k['blind'] is None or k['half0'] is None or k['half1'] is None:
    raise NoEdges()  # no first kernel, or no halves' test: nothing to choose from
  (k_blind, gap), k_cross = k['blind'], k.get('cross')
  k_second = None  # where the second estimate found no edges: no second chance
  if np.isfinite(c.blind_second_wide_min):
    k_second = k['second'] if 'second' in k else k_cross
  cross = 0.0  # the test off
  if 'cross' in jobs:  # an estimate without edges cannot agree
    cross = (disagreement(widest_variance(k_blind), widest_variance(k_cross))
             if k_cross is not None else np.inf)
  return {
      'agreement': _relative(k['half0'], k['half1']),
      'distinct': _relative(k_blind, k_gauss, by=k_blind),
      'blind_variance': widest_variance(k_blind),
      'cross': cross,
      'whittle_gap': gap,
      'gauss_variance': float(np.linalg.eigvalsh(cov).max()),
      'noise': noise.sigma(lr),
      'covariance': np.asarray(cov).tolist(),
  }, k_blind, k_gauss, k_second


def second_features(lr, k_second, f, cfg, every=False):
  """The second estimate's scores on a uint8 LR image: its halves' agreement
  (each half estimated as it was; only where `--blind_second_agree_max` is
  finite, else None), widest variance, ringing at the blind kernel's prior
  and spectral gap (`spectral_gap`; only where `--blind_second_whittle_max`
  is finite, else None). `every`: all of them, whatever the limits."""
  c, s = cfg.estimate.blind, cfg.scale
  cov = np.asarray(f['covariance'])
  agreement = gap = None
  if every or np.isfinite(c.blind_second_agree_max):
    try:
      agreement = _relative(*(second_kernel(part, cov, cfg) for part in halves(lr)))
    except NoEdges:  # a half without edges: the halves cannot agree
      agreement = np.inf
  if every or np.isfinite(c.blind_second_whittle_max):
    gap = spectral_gap(lr, k_second, s)
  return {'second_agreement': agreement, 'second_variance': widest_variance(k_second),
          'second_ringing': ringing(lr, k_second, cfg, blind_rule.sr_prior(cfg, 'blind', f)),
          'second_gap': gap}


def _block_aligned_crop(img, side, block=8):
  """A central crop of at most `side` px whose corner sits on the image's
  JPEG block grid (multiples of `block` from its top-left corner)."""
  h, w = img.shape[:2]
  top, left = max(h - side, 0) // 2 // block * block, max(w - side, 0) // 2 // block * block
  return img[top:top + side, left:left + side]


def _record(k, choice, confidence, reason, f, candidates):
  """An estimate in `spectral.estimate`'s format with the choice's record."""
  return {**kernel.as_estimate(k), 'choice': choice, 'confidence': confidence, 'reason': reason,
          'noise_sigma': f['noise'], 'blockiness': f['blockiness'],
          'refine': choice != 'bicubic', 'candidates': candidates}


def _bicubic_record(lr, cfg, reason):
  """'bicubic' for an image no blur can be read from, with the reason; its
  kernel is `no_blur`'s."""
  f = {'noise': noise.sigma(crops.centre_crop(lr, ESTIMATE_SIDE)),
       'blockiness': noise.blockiness(_block_aligned_crop(lr, ESTIMATE_SIDE))}
  return _record(no_blur(cfg.scale), 'bicubic', 1.0, reason, f,
                 {'blind': {}, 'gaussian': {}, 'second': {}, 'bicubic': {}})


def estimate(lr, cfg):
  """The chosen kernel of one (H, W, 3) uint8 LR image, `spectral.estimate`'s format
  plus 'choice', 'confidence', 'reason' (why, in words), 'candidates',
  'noise_sigma', 'blockiness', 'refine' and, unless bicubic, 'sr_prior' (for
  the Gaussian also 'sr_solver')."""
  lr = np.asarray(lr)
  crop = crops.centre_crop(lr, ESTIMATE_SIDE)
  if detail(crop) < DETAIL_MIN:
    return _bicubic_record(lr, cfg, f'too little detail (below {DETAIL_MIN} grey levels)')
  try:
    return _estimate_with_detail(lr, crop, cfg)
  except NoEdges:
    return _bicubic_record(lr, cfg, 'no edges to fit a kernel to')


def _estimate_with_detail(lr, crop, cfg):
  """`estimate` of an image with detail: the rule, on its central `crop`, then
  where it gives bicubic the second estimate's chance, the evidence of a
  blur and the denoised upscale, each in turn (`blind_rule`)."""
  c = cfg.estimate.blind
  f, k_blind, k_gauss, k_second = features(crop, cfg)
  # On the photo's own block grid (the centre crop's corner need not lie on it).
  f['blockiness'] = noise.blockiness(_block_aligned_crop(lr, ESTIMATE_SIDE))
  f['ringing'] = (ringing(crop, k_blind, cfg, blind_rule.sr_prior(cfg, 'blind', f))
                  if blind_rule.plausible(f, cfg.scale, c) else None)
  f['gauss_ringing'] = (ringing(crop, k_gauss, cfg, blind_rule.sr_prior(cfg, 'gaussian', f))
                        if blind_rule.needs_gauss_ringing(f, cfg.scale, c) else None)
  ruled, second = blind_rule.choose(f, cfg.scale, c), None
  if ruled.choice == 'bicubic':
    ruled, second = _second_chance(crop, k_second, f, cfg, ruled)
    if ruled.choice == 'blind':
      k_blind = k_second
  f['evidence'] = None
  if ruled.choice == 'bicubic':
    ruled = _evidence_of_a_blur(crop, k_blind, k_gauss, f, cfg, ruled)
  if ruled.choice == 'bicubic' and blind_rule.denoises(f, cfg.scale, c):
    # The rule's bicubic, denoised: how sure, as the rule was.
    narrow = blind_rule.margin(f['blind_variance'] / spectrum.min_variance(cfg.scale),
                               c.blind_denoise_narrow_max)
    ruled = blind_rule.Choice('denoised', min(ruled.confidence, narrow), ruled.reason +
                              '; a noisy image with a narrow blind kernel: denoised')
  choice, confidence, reason = ruled
  companion = {}
  if choice == 'blind' and second is None and c.blind_companion > 0:
    try:
      km = marginal_kernel(crop, np.asarray(f['covariance']), cfg.scale)
      companion = {'companion_kernel': np.stack([km / km.sum()] * 3),
                   'companion_weight': c.blind_companion}
    except NoEdges:  # no second kernel to blend with: the blind kernel's SR image alone
      reason += '; no second kernel to blend with'
  k = k_blind if choice in ('blind', 'denoised') else k_gauss
  candidates = {'blind': {'agreement': f['agreement'], 'distinct_from_gaussian': f['distinct'],
                          'widest_variance': f['blind_variance'], 'cross_disagreement': f['cross'],
                          'spectral_likelihood_gap': f['whittle_gap'], 'ringing': f['ringing']},
                'gaussian': {'covariance': f['covariance'], 'widest_variance': f['gauss_variance'],
                             'ringing': f['gauss_ringing'], 'blur_evidence': f['evidence']},
                'second': second or {},
                'bicubic': {}}
  return {**companion, **_record(k, choice, confidence, reason, f, candidates),
          **({'sr_prior': blind_rule.sr_prior(cfg, choice, f)} if choice != 'bicubic' else {}),
          **({'sr_solver': 'fourier'} if choice == 'gaussian' else {})}


def _second_chance(crop, k_second, f, cfg, ruled):
  """Where the rule gave bicubic (`ruled`), the second estimate's chance
  (`blind_rule.second_chance`; its halves and ringing measured only where
  its width and the hallucination test pass). Returns (the `Choice`, the
  second estimate's scores or None where they were not measured)."""
  c = cfg.estimate.blind
  if k_second is None or not np.isfinite(c.blind_second_wide_min):
    return ruled, None
  wide = {**f, 'second_agreement': 0.0, 'second_ringing': 0.0,
          'second_variance': widest_variance(k_second)}
  if not blind_rule.second_chance(wide, cfg.scale, c):
    return ruled, None
  second = second_features(crop, k_second, f, cfg)
  if not blind_rule.second_chance({**f, **second}, cfg.scale, c):
    return ruled, second
  margins = [blind_rule.margin(second['second_variance'] / spectrum.min_variance(cfg.scale),
                               c.blind_second_wide_min),
             blind_rule.margin(second['second_ringing'], c.blind_second_ringing_max)]
  for key, limit in (('second_agreement', c.blind_second_agree_max),
                     ('second_gap', c.blind_second_whittle_max)):
    if second[key] is not None:
      margins.append(blind_rule.margin(second[key], limit))
  return blind_rule.Choice('blind', min(margins),
                           ruled.reason + '; the second estimate passes its tests'), second


def _evidence_of_a_blur(crop, k_blind, k_gauss, f, cfg, ruled):
  """Where the rule and the second chance gave bicubic (`ruled`), the Gaussian
  if the photo's power spectrum asks for a blur (`blind_rule.last_chance`).
  Fills f['evidence'] (where its limit is finite) and f['gauss_ringing']
  (where the evidence reaches its limit); returns the `Choice`."""
  c = cfg.estimate.blind
  if not np.isfinite(c.blind_evidence_min):
    return ruled
  f['evidence'] = evidence(crop, k_blind, k_gauss, cfg.scale)
  if not f['evidence'] >= c.blind_evidence_min:  # NaN too
    return ruled
  if f['gauss_ringing'] is None:
    f['gauss_ringing'] = ringing(crop, k_gauss, cfg, blind_rule.sr_prior(cfg, 'gaussian', f))
  if not blind_rule.last_chance(f, cfg.scale, c):
    return ruled
  return blind_rule.Choice(
      'gaussian', min(blind_rule.margin(f['evidence'], c.blind_evidence_min),
                      blind_rule.margin(f['gauss_ringing'], c.blind_evidence_ringing_max)),
      ruled.reason + '; the spectrum asks for a blur the Gaussian sees')
