"""The blind choice's rule: which candidate kernel an image gets, how sure and
why, from its scores alone (pure functions of a dict of numbers and
`config.BlindConfig`; the scores are measured by `estimators.blind`).

The choice, with thresholds chosen on the tuning images only (grid search
over crops of each tuning photo under fourteen families, fifteen at x2,
`benchmarks/blind_tuning.py`;
variances in units of the LR pixel's own, `spectrum.min_variance(s)` =
s^2/12 HR px^2):
  'gaussian' first where the blur is Gaussian-shaped: the blind kernel lies
             within `shaped_max` of the Gaussian (`distinct`: their squared
             difference over the blind kernel's squared size), the spectrum sees
             a blur (the Gaussian above its floor) and the Gaussian's SR image
             does not ring (the limit below): the two estimates agree, and the
             Gaussian, fit to the whole spectrum, is the steadier of them;
  'blind'    else where the halves agree (agreement <= agree_max; or, with
             `whittle_waive` > 0, where the blind kernel's spectral-likelihood
             gap is at most it: `ike_jax.whittle`, the photo's power spectrum
             asks for no other blur), so do two
             estimates of the whole image, the edge fit and the edge fit that
             also matches the gradient autocorrelation (`cross`: the |log|
             ratio of their widest variances <= cross_max; where it is
             larger, on the tuning photos, deblurring by it rarely paid), the
             blind kernel is wide (widest variance >= wide_min), and it is
             not a blur the spectrum cannot see (a Gaussian at its floor with a blind kernel
             wider than `hallucination` was, on the tuning photos, a kernel
             found in an unblurred or non-linearly filtered image): camera
             shake, motion, defocus, odd shapes; and the SR image it gives
             does not ring: its gradient energy at most `ringing_max` times
             bicubic's (measured only for a kernel that passed the rest);
  'bicubic'  else, when the image is noisy or finely textured (noise >
             noise_max grey levels), the Gaussian is narrow (widest
             variance <= gauss_min) or its SR image rings (gradient energy
             above `gauss_ringing_per_sd` x sqrt(widest variance) times
             bicubic's): no deblurring, the do-no-harm output;
  'gaussian' else: the spectral Gaussian, as `best_x2`.
Where that gives 'bicubic', the second estimate (`second_estimator`: the
edge-and-autocorrelation fit of `cross`, or the marginal-likelihood estimate
of `ike_jax.marginal`) gets a second chance (`second_chance`, off with
`second_wide_min` = inf): it is the 'blind' kernel if its halves agree
within `second_agree_max` (estimated on the two halves where that is
finite), its spectral-likelihood gap is at most `second_whittle_max`, it is
wider than `second_wide_min`, it is no hallucination (as above) and its SR
image rings at most `second_ringing_max`: it keeps its width where the edge fit
collapses to a delta on texture (docs/method.md, "Blind SR: the kernel choice").
Where it is still 'bicubic' and the photo's power spectrum asks for a blur
(`estimators.blind.evidence`: no blur explains it worse than the likelier of
the Gaussian and the blind kernel by at least `evidence_min`; off with inf),
the Gaussian sits above its floor and its SR image rings at most
`evidence_ringing_max`, the choice is 'gaussian' (`last_chance`).
Where it is still 'bicubic' on an image that is not clean (below), the
blind kernel is near a delta (widest variance <= `denoise_narrow_max`) and
the noise estimate is at least `denoise_noise_min`, the choice is 'denoised'
with `denoise_prior` > 0 (0 in the presets: it did not hold out): the blind
kernel's SR image at that strong TV weight, which removes noise and JPEG
blocks that bicubic would keep (`denoises`; docs/method.md, "Denoised
instead of bicubic").
The SR stage's TV weight follows the image's noise (`sr_prior`): on a clean
image (noise <= clean_max grey levels, no JPEG blocks: blockiness <
blocky_min) the blind kernel is deblurred at `prior` and the Gaussian at the
preset's prior; otherwise at `prior` x `noisy_factor` and at `noisy_prior`
('denoised': at `denoise_prior`).
Each candidate's ringing is measured at the prior it would get.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from ike_jax import spectrum

FLOOR_MARGIN = 1.1   # a Gaussian within this of its floor sees no blur


def _kernel_tests(f, scale, settings):
  """The blind kernel's tests on the kernels alone, in the rule's order:
  [(passed, what a failure means, in words)]. The halves agree (`agrees`),
  so do the two estimates (`cross`; a row measured without the second
  estimate passes), it is wide, and it is not a blur the spectrum cannot see."""
  c = settings
  unit = spectrum.min_variance(scale)
  bv, gv = f['blind_variance'] / unit, f['gauss_variance'] / unit
  return [(agrees(f, c), 'its halves disagree'),
          (f.get('cross', 0.0) <= c.blind_cross_max, 'the two estimates disagree'),
          (bv >= c.blind_wide_min, 'it is too narrow'),
          (not (gv <= FLOOR_MARGIN and bv > c.blind_hallucination), 'the spectrum sees no blur')]


def plausible(f, scale, settings):
  """Whether the blind kernel passes the tests on the kernels alone (`_kernel_tests`)."""
  return all(passed for passed, _ in _kernel_tests(f, scale, settings))


def agrees(f, settings):
  """The halves' test: they agree, or the image's power spectrum asks for no
  other blur (`whittle_gap` within `blind_whittle_waive`; a row measured
  without it must agree)."""
  return f['agreement'] <= settings.blind_agree_max or _waived(f, settings)


def _waived(f, settings):
  gap, waive = f.get('whittle_gap'), settings.blind_whittle_waive
  return waive > 0 and gap is not None and gap <= waive


def last_chance(f, scale, settings):
  """Where the rule and the second chance give bicubic: whether the Gaussian
  is used instead, the spectrum asking for a blur (`f['evidence']` at least
  `--blind_evidence_min`), the Gaussian seeing one (`f['gauss_variance']`
  above its floor) and its SR image ringing at most
  `--blind_evidence_ringing_max` (`f['gauss_ringing']`)."""
  c = settings
  return (np.isfinite(c.blind_evidence_min) and f.get('evidence') is not None
          and f['evidence'] >= c.blind_evidence_min
          and f['gauss_variance'] / spectrum.min_variance(scale) > FLOOR_MARGIN
          and f['gauss_ringing'] <= c.blind_evidence_ringing_max)


def _blind_wins(f, scale, settings):
  """The blind kernel passes every test: the kernel-only ones and its ringing."""
  return plausible(f, scale, settings) and f['ringing'] <= settings.blind_ringing_max


def margin(value, threshold):
  """How far a score sits from its threshold: |log(value / threshold)| clipped to [0, 1]
  (1 where the threshold is infinite or 0: that test is off, or any score is
  past it; 0 where the score could not be measured)."""
  if not np.isfinite(value):
    return 0.0
  if not np.isfinite(threshold) or threshold <= 0:
    return 1.0
  return float(np.clip(abs(np.log(max(value, 1e-6) / threshold)), 0.0, 1.0))


def gaussian_shaped(f, scale, settings):
  """Whether the blind kernel is close to the Gaussian (`distinct` at most
  `shaped_max`) while the spectrum sees a blur (the Gaussian above its floor)."""
  gv = f['gauss_variance'] / spectrum.min_variance(scale)
  return (settings.blind_shaped_max > 0 and f['distinct'] <= settings.blind_shaped_max
          and gv > FLOOR_MARGIN)


def failures(f, scale, settings):
  """The tests the blind kernel fails, in words, in the rule's order (empty
  where it wins; its ringing is measured only where it passes the others)."""
  out = [words for passed, words in _kernel_tests(f, scale, settings) if not passed]
  ring = f.get('ringing')
  if ring is not None and not ring <= settings.blind_ringing_max:
    out.append('its SR image rings' if np.isfinite(ring) else 'its ringing could not be measured')
  return out


class Choice(NamedTuple):
  """What the rule chose, how sure it is and why."""
  choice: str        # 'blind' | 'bicubic' | 'gaussian' | 'denoised'
  confidence: float  # how far the deciding score sits from its threshold: 1 far, 0 on it
  reason: str        # in words: the blind kernel's failed tests, then what decided


def choose(f, scale, settings):
  """The rule above: a `Choice` ('blind' | 'bicubic' | 'gaussian').

  Args:
    f: `features`' dict (variances in HR px^2, noise in grey levels) with
      'ringing' and 'gauss_ringing' (`ringing` of each candidate's SR image)
      wherever the rule reaches them (None elsewhere).
    scale: s.
    settings: `config.BlindConfig`.
  """
  c = settings
  gv = f['gauss_variance'] / spectrum.min_variance(scale)
  # A wider blur, rightly undone, raises the gradient energy more: the limit
  # grows with the Gaussian's widest standard deviation.
  limit = c.blind_gauss_ringing_per_sd * np.sqrt(gv)
  if gaussian_shaped(f, scale, c) and f['gauss_ringing'] <= limit:
    return Choice('gaussian', min(margin(f['distinct'], c.blind_shaped_max),
                                  margin(f['gauss_ringing'], limit)), 'a Gaussian-shaped blur')
  if _blind_wins(f, scale, c):
    bv = f['blind_variance'] / spectrum.min_variance(scale)
    agreement = margin(f['agreement'], c.blind_agree_max)
    if f['agreement'] > c.blind_agree_max:  # passed by the spectral likelihood instead
      agreement = margin(f['whittle_gap'], c.blind_whittle_waive)
    return Choice('blind', min(agreement, margin(bv, c.blind_wide_min),
                               margin(f['ringing'], c.blind_ringing_max),
                               margin(f.get('cross', 0.0), c.blind_cross_max)),
                  'the blind kernel passes every test')
  lost = 'blind kernel: ' + ', '.join(failures(f, scale, c))
  if f['noise'] > c.blind_noise_max:
    return Choice('bicubic', margin(f['noise'], c.blind_noise_max), lost + '; the image is noisy')
  if gv <= c.blind_gauss_min:
    return Choice('bicubic', margin(gv, c.blind_gauss_min), lost + (
        '; the Gaussian is narrow' if np.isfinite(c.blind_gauss_min)
        else '; the fallback is bicubic (--blind_gauss_min=inf)'))
  if not f['gauss_ringing'] <= limit:  # NaN too: a ringing not measured is not passed
    return Choice('bicubic', margin(f['gauss_ringing'], limit), lost + (
        "; the Gaussian's SR image rings" if np.isfinite(f['gauss_ringing'])
        else "; the Gaussian's ringing could not be measured"))
  return Choice('gaussian', min(margin(gv, c.blind_gauss_min), margin(f['gauss_ringing'], limit)),
                lost + '; the Gaussian passes its tests')


def needs_gauss_ringing(f, scale, settings):
  """Whether the rule reaches the Gaussian's ringing test (the blur is
  Gaussian-shaped, or the blind kernel lost, the image is not noisy and the
  Gaussian is wide enough)."""
  c = settings
  return gaussian_shaped(f, scale, c) or (
      not _blind_wins(f, scale, c) and f['noise'] <= c.blind_noise_max
      and f['gauss_variance'] / spectrum.min_variance(scale) > c.blind_gauss_min)


def denoises(f, scale, settings):
  """Where the rule gives bicubic: whether the 'denoised' candidate replaces it
  (`--blind_denoise_prior` > 0, the image not clean, the blind kernel's widest
  variance `f['blind_variance']` at most `--blind_denoise_narrow_max` units,
  the noise `f['noise']` at least `--blind_denoise_noise_min` grey levels)."""
  c = settings
  return (c.blind_denoise_prior > 0 and not is_clean(f, c)
          and f['blind_variance'] / spectrum.min_variance(scale) <= c.blind_denoise_narrow_max
          and f['noise'] >= c.blind_denoise_noise_min)


def is_clean(f, settings):
  """Whether an image counts as clean: noise at most `clean_max` grey levels
  and no JPEG blocks (blockiness below `blocky_min`). `f` holds 'noise' and
  'blockiness'."""
  return f['noise'] <= settings.blind_clean_max and f['blockiness'] < settings.blind_blocky_min


def sr_prior(cfg, choice, f):
  """The SR stage's TV weight with a candidate kernel on an image with
  features `f` ('noise', 'blockiness'): on a clean image (`is_clean`) the
  blind kernel's (`--blind_prior`) or the preset's (`--refine_prior`) for the
  Gaussian; on a noisy or JPEG image the blind kernel's times
  `--blind_noisy_factor`, the Gaussian's `--blind_noisy_prior`; 'denoised'
  (the blind kernel) at `--blind_denoise_prior`."""
  c = cfg.estimate.blind
  if choice == 'denoised':
    return c.blind_denoise_prior
  clean = is_clean(f, c)
  if choice == 'blind':
    return c.blind_prior * (1.0 if clean else c.blind_noisy_factor)
  return cfg.post.refine_prior if clean else c.blind_noisy_prior


def second_chance(f, scale, settings):
  """Whether the second estimate, scored in `f` ('second_agreement',
  'second_variance', 'second_ringing', 'second_gap'; an agreement or gap
  not measured, None, passes), passes its own limits (`blind_second_*`)
  and the hallucination test."""
  c = settings
  agreement, gap = f.get('second_agreement'), f.get('second_gap')
  second = {**f, 'agreement': 0.0 if agreement is None else agreement,
            'blind_variance': f['second_variance'],
            'cross': 0.0, 'whittle_gap': None}  # the gap is the first estimate's
  limits = dataclasses.replace(c, blind_agree_max=c.blind_second_agree_max,
                               blind_wide_min=c.blind_second_wide_min, blind_cross_max=np.inf)
  return (plausible(second, scale, limits) and f['second_ringing'] <= c.blind_second_ringing_max
          and (gap is None or gap <= c.blind_second_whittle_max))
