"""Kernel estimators compared on the tuning families: kernel error, gain, seconds.

Every image is deblurred by every estimator's kernel, with no choice among
them: the Fourier SR stage at one TV weight (--prior), Y-PSNR gain over MATLAB
bicubic (shave = scale). On the tuning photos only (`datasets.TUNING_IMAGES`),
the crops at --positions (`families.crop`), per family:

  spectral   the spectral Gaussian (`ike_jax.spectrum`, as `best_x2`)
  blind_r<N> the non-parametric kernel (`ike_jax.edge_fit`: at the LR pitch,
             N alternations per pyramid level, carried to the HR pitch)
  blind_settled  the preset's estimate: blind_r<preset's rounds> then its
             settling alternations at the low L0 threshold (`edge_fit.estimate`)
  blind_ac   the same at the preset's rounds, its k-step also fitting the
             image's gradient autocorrelation (weight --autocorr)
  shrink     the blind kernel made milder at the SR pitch (`edge_fit.shrink`)
  marginal   the marginal-likelihood estimate (`ike_jax.marginal`, from the
             spectral Gaussian, at the LR pitch, carried to the HR pitch)
  blind_floor  blind_settled, its settling rounds holding at least --width_floor
             of the marginal estimate's spread (`edge_fit.hold_width`)
  lr_oracle  the kernel fitted at the LR pitch to the true sharp LR image (the
             HR crop blurred by the LR pixel's footprint and sampled), then
             carried to the HR pitch as the blind kernel is: what the LR-pitch
             estimate would give with a perfect latent image
  phase_true phase retrieval (`ike_jax.phase`, --phase_starts random starts)
             from the Fourier magnitude of the true kernel carried to the LR
             pitch, each candidate settled (`PHASE_ROUNDS` alternations at
             L0 threshold `PHASE_LAM`), carried to the HR pitch, and the one
             the photo's spectrum likes best kept (`ike_jax.whittle.nll`;
             blind to a mirror image): how far the estimate gets when the
             magnitude is right
  phase_spectrum  the same from the magnitude the photo's spectrum gives: the
             spectral likelihood's descent from blind_settled's kernel
             (`whittle.refine`, 100 steps) carried to the LR pitch
  true       the true kernel (the SR stage's ceiling)
  oracle_then_<N>  with --from_truth: N alternations of the estimate's finest
             level started at lr_oracle's kernel (does the alternation keep a
             true kernel, or drift from it?); oracle_then_tv: 5 rounds of
             `edge_fit.polish` (k-steps on a TV latent image) from the oracle;
             blind_then_tv: 3 rounds of it from the preset's estimate

--estimators picks some of them (true always comes along; phase_* only when
named). Rows go to
--results as they come (the same command run again resumes an interrupted
table: `benchmarks/rows.py`); a markdown table of means is printed.
(docs/method.md, "The non-parametric kernel estimate".)

  python -m benchmarks.blind_estimators --scale=2 --families=shake,motion,disk,mixture,gaussian \
      --results=benchmarks/results/blind_estimators_x2.json

--sharp_prior instead prints `edge_fit.SHARP_AUTOCORR` as measured: the mean
gradient autocorrelation of the tuning photos' sharp LR crops; --sharp_mixture
`marginal.MIXTURE_WEIGHTS` and `MIXTURE_VARIANCES`, the Gaussian mixture of
their differences.
"""

import time

from absl import flags
import jax.numpy as jnp
import numpy as np

from benchmarks import blind_tuning
from benchmarks import checks
from benchmarks import datasets
from benchmarks import degradations
from benchmarks import families
from benchmarks import rows as rows_lib
from ike_jax import edge_fit
from ike_jax import cli
from ike_jax import errors
from ike_jax import kernel as kernel_lib
from ike_jax import marginal
from ike_jax import metrics
from ike_jax import phase
from ike_jax import presets
from ike_jax import resize
from ike_jax import spectrum
from ike_jax import whittle
from ike_jax.estimators import blind as blind_estimator

FLAGS = flags.FLAGS
# The estimators compared (blind_r<N> stands for each --rounds; --from_truth adds its rows).
NAMES = ('spectral', 'blind_r', 'blind_settled', 'blind_ac', 'shrink', 'marginal', 'blind_floor',
         'lr_oracle', 'phase_true', 'phase_spectrum')
PHASE_LAM = 2e-4   # L0 threshold of the phase-retrieval candidates' settling alternations
PHASE_ROUNDS = 5


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', ['shake', 'motion', 'disk', 'mixture', 'gaussian'],
                    'Linear families of benchmarks.families (a true kernel is needed).')
  flags.DEFINE_list('positions', ['0', '1'], 'HR crops of each tuning photo (families.crop).')
  flags.DEFINE_list('rounds', ['6', '12'], 'Alternations per level of the blind estimates compared.')
  flags.DEFINE_float('prior', 3e-3, "TV weight of the Fourier SR stage (the blind kernel's).")
  flags.DEFINE_float('autocorr', 0.03, "Weight of blind_ac's autocorrelation fit.")
  flags.DEFINE_bool('from_truth', False, 'Also oracle_then_<N>: N alternations of the '
                    "estimate's finest level started at lr_oracle's kernel (N = 1 and the "
                    "preset's rounds): whether the alternation keeps a true kernel.")
  flags.DEFINE_float('polish_tv', 1e-3, 'TV weight of the latent image of the --from_truth '
                     'rows oracle_then_tv and blind_then_tv (edge_fit.polish).')
  flags.DEFINE_list('estimators', [n for n in NAMES if not n.startswith('phase_')],
                    'Which estimators to compare (true always; phase_* only when named).')
  flags.DEFINE_integer('phase_starts', 16, 'Random starts of the phase_* estimators.')
  flags.DEFINE_integer('phase_seed', 0, 'Seed of the phase_* estimators\' random starts.')
  flags.DEFINE_bool('phase_mirror', False, 'The phase_* estimators then choose between their '
                    'kernel and its mirror image by the SR image\'s gradient energy.')
  flags.DEFINE_float('width_floor', 0.5, "blind_floor's fraction of the marginal estimate's "
                     'spread.')
  flags.DEFINE_bool('sharp_mixture', False, "Print the sharp photos' gradient mixture "
                    '(marginal.MIXTURE_*) instead of comparing estimators.')
  flags.DEFINE_string('results', None, 'JSON written row by row; an existing one measured with '
                      'the same settings is resumed.')
  flags.DEFINE_bool('sharp_prior', False, 'Print the sharp photos\' gradient autocorrelation '
                    '(edge_fit.SHARP_AUTOCORR) instead of comparing estimators.')


def sharp_lr(hr, scale):
  """The true sharp LR image (grey, model units): the HR crop blurred by the LR
  pixel's own footprint and sampled."""
  return blind_estimator._grey(degradations.to_uint8(  # pylint: disable=protected-access
      degradations.blur_subsample(hr, blind_estimator.no_blur(scale), scale)))


def sharp_prior(scale):
  """Mean gradient autocorrelation (radius 3) of the tuning photos' sharp LR
  crops, centre and four quadrants, the cell photo left out (one disc on a flat
  background: no texture to speak of)."""
  names = list(datasets.OFFLINE_IMAGES)
  found = []
  for i in datasets.indices(datasets.TUNING_IMAGES):
    if names[i] == 'cell':
      continue
    for position in range(5):
      _, hr, _, _ = families.pair(i, 'none', scale, position=position)
      found.append(edge_fit.gradient_autocorrelation(sharp_lr(hr, scale), 3))
  r = np.mean(found, axis=0)
  r = 0.5 * (r + r[::-1, ::-1])
  return r / r[3, 3]


def sharp_mixture(scale):
  """(weights, variances) of the zero-mean Gaussian mixture of the unit
  differences of the tuning photos' sharp LR crops (centre and first quadrant),
  `marginal.fit_mixture`."""
  found = []
  for i in datasets.indices(datasets.TUNING_IMAGES):
    for position in (0, 1):
      _, hr, _, _ = families.pair(i, 'none', scale, position=position)
      x = sharp_lr(hr, scale)
      found += [np.diff(x, axis=0).ravel(), np.diff(x, axis=1).ravel()]
  return marginal.fit_mixture(np.concatenate(found))


def lr_oracle(hr, y, k0, scale):
  """The LR-pitch kernel step on the true sharp LR image (an LR-pitch kernel)."""
  n = k0.shape[0]
  sharp = sharp_lr(hr, scale)
  k_lr = edge_fit.kernel_step(jnp.asarray(sharp, jnp.float32), jnp.asarray(y, jnp.float32),
                              jnp.asarray(k0, jnp.float32), 1, 0.0, iterations=400,
                              border=n // 2 + 1)
  return np.asarray(k_lr, np.float64)


def to_hr(k_lr, scale):
  """An LR-pitch kernel carried to the HR pitch as the blind estimate's is, centred."""
  k = edge_fit.lr_to_hr_kernel(k_lr, scale, blind_estimator.SIZE, blind_estimator.APERTURE)
  return edge_fit.centre_kernel(k, kernel_lib.kernel_center(blind_estimator.SIZE, scale))


def phase_kernel(lr, k_lr_magnitude, scale, count, seed=0, mirror_cfg=None):
  """The phase_* estimators: `count` phase retrievals (random starts from
  `seed`) of an LR-pitch kernel's magnitude, each settled at the LR pitch and
  carried to the HR pitch; the one of lowest spectral negative
  log-likelihood (HR kernel). With `mirror_cfg` (a config) then
  `mirror_test`: the spectrum cannot tell a kernel from its mirror image."""
  y = blind_estimator._grey(lr)  # pylint: disable=protected-access
  power = whittle.power(y)
  best, best_nll = None, np.inf
  for start in phase.candidates(k_lr_magnitude, count, seed=seed):
    k = to_hr(edge_fit.estimate(y, start, 1, levels=1, rounds_per_level=1, lam=PHASE_LAM,
                                lam_ratio=1.0, settle_rounds=PHASE_ROUNDS - 1,
                                settle_lam=PHASE_LAM, resize=resize.imresize_matlab), scale)
    nll = float(whittle.nll(power, jnp.asarray(k, jnp.float32), scale))
    if nll < best_nll:
      best, best_nll = k, nll
  return best if mirror_cfg is None else mirror_test(lr, best, mirror_cfg)


def mirror_test(lr, k, cfg):
  """An HR kernel or its mirror image (centred as the blind kernel), whichever
  SR image has more gradient energy (`blind_estimator.ringing` at TV 1e-3,
  `cfg`'s scale and SR stage): a mirrored blur, undone, adds less edge than
  the true one."""
  mirror = edge_fit.centre_kernel(k[::-1, ::-1],
                                  kernel_lib.kernel_center(blind_estimator.SIZE, cfg.scale))
  if blind_estimator.ringing(lr, mirror, cfg, 1e-3) > blind_estimator.ringing(lr, k, cfg, 1e-3):
    return mirror
  return k


def estimators(lr, hr, cfg, k_true=None):
  """{name: (HR kernel, seconds)} of one LR image, for the --estimators asked for
  (`k_true`, the true HR kernel, for phase_true)."""
  s = cfg.scale
  wanted = set(FLAGS.estimators)
  c = cfg.estimate.blind
  out = {}
  t0 = time.perf_counter()
  cov = spectrum.blur_covariance(metrics.rgb_to_y(np.asarray(lr, np.float64)), s,
                                 cfg.estimate.spectral)
  seconds = time.perf_counter() - t0

  def timed(name, fn, key=None):
    if name in wanted:
      t0 = time.perf_counter()
      k = fn()
      out[key or name] = (k, time.perf_counter() - t0)

  if 'spectral' in wanted:
    out['spectral'] = (np.asarray(kernel_lib.gaussian_kernel(cov, blind_estimator.SIZE, s),
                                  np.float64), seconds)
  for rounds in map(int, FLAGS.rounds):
    timed('blind_r', lambda: blind_estimator.blind_kernel(lr, cov, s, 0.0, rounds, 0.0),  # pylint: disable=cell-var-from-loop
          key=f'blind_r{rounds}')
  timed('blind_settled', lambda: blind_estimator.blind_kernel(
      lr, cov, s, 0.0, c.blind_rounds, 0.0, blind_estimator.settling(c)))
  timed('blind_ac', lambda: blind_estimator.blind_kernel(lr, cov, s, 0.0, c.blind_rounds,
                                                         FLAGS.autocorr))
  timed('shrink', lambda: blind_estimator.blind_kernel(lr, cov, s, 1e-3, c.blind_rounds, 0.0))
  timed('marginal', lambda: blind_estimator.marginal_kernel(lr, cov, s))
  timed('blind_floor', lambda: blind_estimator.blind_kernel(
      lr, cov, s, 0.0, c.blind_rounds, 0.0, blind_estimator.settling(c), floor=FLAGS.width_floor))
  side = blind_estimator.lr_side(s)
  if k_true is not None:
    timed('phase_true', lambda: phase_kernel(lr, edge_fit._zoom_kernel(k_true, side), s,  # pylint: disable=protected-access
                                             FLAGS.phase_starts, FLAGS.phase_seed,
                                             cfg if FLAGS.phase_mirror else None))

  def from_spectrum():  # from blind_settled's kernel (its seconds counted here too)
    if 'blind_settled' in out:
      settled, before = out['blind_settled']
    else:
      t0 = time.perf_counter()
      settled = blind_estimator.blind_kernel(lr, cov, s, 0.0, c.blind_rounds, 0.0,
                                             blind_estimator.settling(c))
      before = time.perf_counter() - t0
    t0 = time.perf_counter()
    power = whittle.power(blind_estimator._grey(lr))  # pylint: disable=protected-access
    k_hr, _ = whittle.refine(power, jnp.asarray(settled, jnp.float32), s, steps=100)
    k_lr = edge_fit._zoom_kernel(np.asarray(k_hr, np.float64), side)  # pylint: disable=protected-access
    k = phase_kernel(lr, k_lr, s, FLAGS.phase_starts, FLAGS.phase_seed,
                     cfg if FLAGS.phase_mirror else None)
    return k, before + time.perf_counter() - t0

  if 'phase_spectrum' in wanted:
    out['phase_spectrum'] = from_spectrum()
  if 'lr_oracle' not in wanted:
    return out
  y = blind_estimator._grey(lr)  # pylint: disable=protected-access
  k0 = np.asarray(kernel_lib.gaussian_kernel(np.asarray(cov) / s ** 2,
                                             blind_estimator.lr_side(s), 1), np.float64)
  t0 = time.perf_counter()
  k_lr = lr_oracle(hr, y, k0, s)
  out['lr_oracle'] = (to_hr(k_lr, s), time.perf_counter() - t0)
  if FLAGS.from_truth:
    # The same alternation as the estimate's finest level, started at the
    # oracle: does it stay there (is the truth its fixed point)?
    for rounds in (1, cfg.estimate.blind.blind_rounds):
      t0 = time.perf_counter()
      k = edge_fit.estimate(y, k_lr, 1, levels=1, rounds_per_level=rounds,
                            resize=resize.imresize_matlab)
      out[f'oracle_then_{rounds}'] = (to_hr(k, s), time.perf_counter() - t0)
    # The same from the oracle and from the estimate with the TV latent image.
    t0 = time.perf_counter()
    k = edge_fit.polish(y, k_lr, FLAGS.polish_tv, rounds=5)
    out['oracle_then_tv'] = (to_hr(np.asarray(k, np.float64), s), time.perf_counter() - t0)
    k_est = edge_fit.estimate(y, k0, 1, rounds_per_level=cfg.estimate.blind.blind_rounds,
                              resize=resize.imresize_matlab)
    t0 = time.perf_counter()
    k = edge_fit.polish(y, k_est, FLAGS.polish_tv, rounds=3)
    out['blind_then_tv'] = (to_hr(np.asarray(k, np.float64), s), time.perf_counter() - t0)
  return out


def main(argv):
  del argv
  s = FLAGS.scale
  checks.scale(s)
  checks.families(FLAGS.families)
  checks.positions(FLAGS.positions)
  if FLAGS.sharp_prior:
    print(np.array2string(sharp_prior(s), precision=3, separator=', ', suppress_small=True))
    return
  if FLAGS.sharp_mixture:
    weights, variances = sharp_mixture(s)
    print('weights', ', '.join(f'{v:.4g}' for v in weights))
    print('standard deviations', ', '.join(f'{v:.4g}' for v in np.sqrt(variances)))
    return
  unknown = set(FLAGS.estimators) - set(NAMES)
  if unknown:
    raise errors.UserError(f'--estimators: no {", ".join(sorted(unknown))}; '
                           f'there are {", ".join(NAMES)}')
  cfg = presets.config_from_flagfile(presets.preset_path(f'blind_x{s}'))
  names = list(datasets.OFFLINE_IMAGES)
  settings = ('rounds', 'prior', 'autocorr', 'from_truth', 'polish_tv', 'estimators',
              'phase_starts', 'phase_seed', 'phase_mirror', 'width_floor')
  table = rows_lib.Rows(FLAGS.results, {'scale': s, **{k: FLAGS[k].value for k in settings}},
                        key=lambda r: (r['family'], r['image'], r['position']),
                        error=errors.UserError)
  for family in FLAGS.families:
    rows = []
    for i in datasets.indices(datasets.TUNING_IMAGES):
      for position in map(int, FLAGS.positions):
        row = table.get((family, names[i], position))
        if row is not None:
          rows.append(row)
          continue
        lr, hr, k_true, _ = families.pair(i, family, s, position=position)
        base = metrics.compare(resize.bicubic_upscale(lr, s), hr, s)['psnr_y']
        row = {'family': family, 'image': names[i], 'position': position}
        found = {**estimators(lr, hr, cfg, k_true), 'true': (k_true, 0.0)}
        for name, (k, seconds) in found.items():
          sr = blind_tuning.blind_sr(lr, k / k.sum(), cfg, FLAGS.prior)
          row[name] = {'gain': float(metrics.compare(sr, hr, s)['psnr_y'] - base),
                       'kernel_error': kernel_lib.kernel_error(k, k_true), 'seconds': seconds}
        rows.append(row)
        table.add(row)  # written row by row: a rerun resumes
        print(f'{family:9s} {row["image"]:12s} {position} ' + '  '.join(
            f'{n} {row[n]["gain"]:+.2f}/{row[n]["kernel_error"]:.4f}' for n in found), flush=True)
    names_found = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    for n in names_found:
      g = [r[n]['gain'] for r in rows]
      print(f"| {family} | {n} | {np.mean([r[n]['kernel_error'] for r in rows]):.4f} "
            f"| {np.mean(g):+.2f} | {np.median(g):+.2f} | {min(g):+.2f} "
            f"| {np.median([r[n]['seconds'] for r in rows]):.2f} |", flush=True)


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
