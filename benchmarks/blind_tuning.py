"""What the blind kernel choice sees, per tuning image and family (tuning only),
and the thresholds read off it.

For every family and tuning photo: the choice's inputs (the halves'
agreement, the blind kernel's distance from the Gaussian, its widest variance,
its spectral-likelihood gap and the ringing of the SR image it gives, the
Gaussian's widest variance, the spectrum's evidence of a blur, the noise
level, the JPEG blockiness; with
--second the second estimate's scores, its gap among them) and the Y-PSNR
gain over bicubic of each
candidate (the blind kernel at the preset's SR prior and at --blind_priors,
the spectral Gaussian through `best_x2`'s / `best_x4`'s SR stage and at
--gauss_priors, bicubic = 0). Rows go to --results as they come (the same
command run again resumes an interrupted table: `benchmarks/rows.py`);
--extend adds the columns a file lacks.

`--search` then reads such a file and grid-searches the choice's thresholds
(`config.BlindConfig`, and the blind TV weight among those measured),
maximising the mean over families of the mean gain less twice the mean
shortfall below -0.05 dB per image; it prints the best settings and their
per-family gains (docs/method.md, "Blind SR: the kernel choice").

  python -m benchmarks.blind_tuning --scale=2 --positions=0,1,2,3,4 --solvers=fourier \
      --blind_priors=3e-3 --results=benchmarks/results/blind_tuning_shrink_x2.json
  python -m benchmarks.blind_tuning --scale=2 --search \
      --results=benchmarks/results/blind_tuning_shrink_x2.json

--companion measures the blind kernel's SR image blended with the marginal
kernel's (`--blind_companion`, at each of COMPANION_WEIGHTS; `--extend
--companion` on a copy of blind_tuning_crops_x2_noise.json made
blind_tuning_crops_x2_companion.json). A preset that blends is searched only
on a table with those columns.
--second_estimator=marginal measures the second chance's columns for the
marginal-likelihood estimate instead (`--extend --second` on a copy of a
table without them: blind_tuning_crops_x2_marginal.json). --width_floor
measures a table with the blind kernel held to that fraction of the marginal
estimate's spread (`--blind_width_floor`).
"""

import dataclasses
import functools
import itertools
import json

from absl import flags
import numpy as np

from benchmarks import blind_families
from benchmarks import checks
from benchmarks import datasets
from benchmarks import families
from benchmarks import rows as rows_lib
from ike_jax import cli
from ike_jax import errors
from ike_jax import metrics
from ike_jax import noise
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import resize
from ike_jax.estimators import blind as blind_estimator
from ike_jax.estimators import blind_rule
from ike_jax.estimators import spectral

FLAGS = flags.FLAGS
PRIORS = (1e-3, 3e-3)  # the gradient solver's TV weights measured with the blind kernel
SOLVERS = ('gradient', 'fourier')
TOLERANCE = 0.05  # dB below bicubic that costs nothing in the search's objective

# The companion blends --companion measures (the marginal kernel's SR image's weight).
COMPANION_WEIGHTS = (0.25, 0.5, 0.75)
# The search's grid (the other thresholds stay at the preset's).
GRID = {'blind_agree_max': (0.5, 0.8, 1.2, 2.0, 3.0, np.inf),
        'blind_wide_min': (2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0),
        'blind_ringing_max': (2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, np.inf),
        'blind_gauss_ringing_per_sd': (0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 2.0, np.inf),
        'blind_gauss_min': (4.0, np.inf),
        'blind_shaped_max': (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8),
        'blind_cross_max': (0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0, np.inf),
        'blind_noise_max': (4.0, 6.0, 10.0),
        'blind_blocky_min': (1.05, 1.1, 1.15, 1.2, 1.3, 1.5, np.inf),
        'blind_noisy_prior': (1e-3, 3e-3),
        'blind_clean_max': (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, np.inf),
        'blind_noisy_factor': (1 / 3, 1.0, 3.0, 10.0),
        'blind_second_agree_max': (0.3, 0.5, 0.8, 1.2, 2.0, np.inf),
        'blind_second_wide_min': (6.0, 10.0, 15.0, 20.0, 30.0, np.inf),
        'blind_second_ringing_max': (3.0, 4.0, 5.0, 6.0),
        'blind_second_whittle_max': (0.2, 0.3, 0.4, 0.5, np.inf),
        'blind_whittle_waive': (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8),
        'blind_denoise_prior': (0.0, 3e-3, 1e-2),
        'blind_denoise_narrow_max': (3.0, 6.0, 12.0, np.inf),
        'blind_denoise_noise_min': (0.0, 0.5, 1.0, 1.3, 1.6, 2.0, 3.0),
        'blind_companion': (0.0,) + COMPANION_WEIGHTS,
        'blind_evidence_min': (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, np.inf),
        'blind_evidence_ringing_max': (2.0, 2.5, 3.0, 4.0, 6.0, np.inf)}
SEARCHED = ('blind_agree_max', 'blind_wide_min', 'blind_ringing_max',
            'blind_gauss_ringing_per_sd', 'blind_gauss_min')


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', list(families.FAMILIES), 'Families.')
  flags.DEFINE_list('results', None, 'JSON written row by row (an existing one measured with the '
                    'same settings is resumed); with --search, the files read.')
  flags.DEFINE_list('positions', ['0'], 'HR crops of each tuning photo (families.crop: 0 the '
                    'centre, 1-4 the quadrants), each with its own degradation seed.')
  flags.DEFINE_list('solvers', list(SOLVERS), "SR stages measured with the blind kernel.")
  flags.DEFINE_list('blind_priors', [], "Further TV weights at which the blind kernel's "
                    'Fourier SR image and its ringing are measured (the search then tries them).')
  flags.DEFINE_list('gauss_priors', [], "Further TV weights at which the spectral Gaussian's "
                    'SR image and its ringing are measured (the search then tries them).')
  flags.DEFINE_bool('second', False, "Also measure the second estimate's columns (its "
                    'scores and gain, for --blind_second_*: the second chance); with '
                    '--extend, add them.')
  flags.DEFINE_enum('second_estimator', None, ['autocorr', 'marginal'], "The second chance's "
                    "estimate --second measures (default: the preset's --blind_second_estimator); "
                    "recorded in --results as 'second_estimator'.")
  flags.DEFINE_bool('companion', False, "Also measure the blind kernel's SR image blended with "
                    "the marginal kernel's at each of COMPANION_WEIGHTS (for --blind_companion); "
                    'with --extend, add them.')
  flags.DEFINE_float('width_floor', None, "The blind kernel's --blind_width_floor to measure "
                     "with (default: the preset's); recorded in --results as 'width_floor'.")
  flags.DEFINE_bool('extend', False, 'Add the columns this version measures and --results lacks '
                    '(--blind_priors, --gauss_priors, blockiness, cross, whittle_gap) to its '
                    'rows, in place.')
  flags.DEFINE_list('search_keys', list(SEARCHED), f'Settings the search varies, of {", ".join(GRID)} '
                    '(the rest stay at the preset\'s; blind_prior too when measured at several).')
  flags.DEFINE_bool('search', False, 'Grid-search the thresholds on --results instead of measuring.')


def measure(s, cfg):
  names = list(datasets.OFFLINE_IMAGES)
  best = presets.config_from_flagfile(presets.preset_path(f'best_x{s}')).post
  header = {'scale': s, 'width_floor': cfg.estimate.blind.blind_width_floor,
            'solvers': FLAGS.solvers, 'blind_priors': FLAGS.blind_priors,
            'gauss_priors': FLAGS.gauss_priors, 'second': FLAGS.second,
            'companion': FLAGS.companion}
  if FLAGS.second:
    header['second_estimator'] = cfg.estimate.blind.blind_second_estimator
  table = rows_lib.Rows(FLAGS.results[0] if FLAGS.results else None, header,
                        key=lambda r: (r['family'], r['position'], r['image']),
                        error=errors.UserError)
  for family, position, i in itertools.product(FLAGS.families, map(int, FLAGS.positions),
                                               datasets.indices(datasets.TUNING_IMAGES)):
    if table.get((family, position, names[i])) is not None:
      continue
    lr, hr, _, _ = families.pair(i, family, s, position=position)
    bic = resize.bicubic_upscale(lr, s)
    base = metrics.compare(bic, hr, s)['psnr_y']
    gain = lambda sr: float(metrics.compare(sr, hr, s)['psnr_y'] - base)  # pylint: disable=cell-var-from-loop
    feats, k_blind, k_gauss, k_cross = blind_estimator.features(lr, cfg)
    blind_prior = cfg.estimate.blind.blind_prior
    del feats['covariance']
    if feats['whittle_gap'] is None:  # the preset does not read it; the search may
      feats['whittle_gap'] = blind_estimator.spectral_gap(lr, k_blind, s)
    origin = (blind_estimator.SIZE // 2,) * 2
    gaussian = spectral.estimate(lr, cfg)
    row = {'family': family, 'image': names[i], 'position': position, **feats,
           'gaussian': gain(postprocess.final(None, lr, *postprocess.sr_kernel(gaussian, s, s),
                                              best, s)),
           # at the preset's --refine_prior (the JPEG prior: gaussian_columns)
           'gauss_ringing': blind_estimator.ringing(lr, k_gauss, cfg, cfg.post.refine_prior),
           'ringing_fourier': blind_estimator.ringing(lr, k_blind, cfg, blind_prior),
           'evidence': blind_estimator.evidence(lr, k_blind, k_gauss, s)}
    for solver in FLAGS.solvers:
      if solver == 'fourier':
        row['blind_fourier'] = gain(blind_sr(lr, k_blind, cfg, blind_prior))
        # the same under its prior's name, beside the others
        row[f'blind_fourier_{blind_prior:g}'] = row['blind_fourier']
        row[f'ringing_fourier_{blind_prior:g}'] = row['ringing_fourier']
        for prior in map(float, FLAGS.blind_priors):  # the blind kernel's SR image at other priors
          row[f'blind_fourier_{prior:g}'] = gain(blind_sr(lr, k_blind, cfg, prior))
          row[f'ringing_fourier_{prior:g}'] = blind_estimator.ringing(lr, k_blind, cfg, prior)
      else:
        for prior in PRIORS:
          row[f'blind_gradient_{prior:g}'] = gain(
              blind_families.back_project(bic, lr, k_blind, origin, prior, s))
    row.update(gaussian_columns(lr, hr, cfg, best, row))
    kernels = _Kernels(lr, cfg, k_blind, k_cross)
    if FLAGS.second:
      row.update(second_columns(lr, hr, cfg, row, kernels))
    if FLAGS.companion:
      row.update(companion_columns(lr, hr, cfg, row, kernels))
    table.add(row)  # written row by row: a rerun resumes
    print(' '.join(f'{k} {v:.3f}' if isinstance(v, float) else f'{k} {v}'
                   for k, v in row.items()), flush=True)


def gaussian_columns(lr, hr, cfg, best, row):
  """The columns of `row` still missing: the LR image's blockiness, and the
  spectral Gaussian's SR gain ('gaussian_<p>', `best`'s SR stage) and ringing
  ('gauss_ringing_<p>') at each TV weight p of --gauss_priors."""
  s = cfg.scale
  out = {} if 'blockiness' in row else {'blockiness': noise.blockiness(lr)}
  priors = [float(p) for p in FLAGS.gauss_priors if f'gaussian_{float(p):g}' not in row]
  if not priors:
    return out
  base = metrics.compare(resize.bicubic_upscale(lr, s), hr, s)['psnr_y']
  gaussian = spectral.estimate(lr, cfg)
  k_gauss = blind_estimator.gaussian(gaussian['covariance'], s)
  for prior in priors:
    post = dataclasses.replace(best, refine_prior=prior)
    sr = postprocess.final(None, lr, *postprocess.sr_kernel(gaussian, s, s), post, s)
    out[f'gaussian_{prior:g}'] = float(metrics.compare(sr, hr, s)['psnr_y'] - base)
    out[f'gauss_ringing_{prior:g}'] = blind_estimator.ringing(lr, k_gauss, cfg, prior)
  return out


class _Kernels:
  """One LR image's spectral covariance, blind kernel, the two estimates'
  test's other estimate and the second chance's, each estimated as
  `blind_estimator.features` makes it, at most once and only when a column
  asks for it."""

  def __init__(self, lr, cfg, blind=None, second=None):
    self.lr, self.cfg, self._blind, self._second = lr, cfg, blind, second

  @functools.cached_property
  def covariance(self):
    return blind_estimator.covariance(self.lr, self.cfg)

  @property
  def blind(self):
    if self._blind is None:
      self._blind = blind_estimator.first_kernel(self.lr, self.covariance, self.cfg)
    return self._blind

  @property
  def second(self):
    if self._second is None:
      self._second = blind_estimator.second_kernel(self.lr, self.covariance, self.cfg)
    return self._second

  @functools.cached_property
  def marginal(self):
    return blind_estimator.marginal_kernel(self.lr, self.covariance, self.cfg.scale)

  @functools.cached_property
  def cross(self):
    return blind_estimator.cross_kernel(self.lr, self.covariance, self.cfg)


def second_columns(lr, hr, cfg, row, kernels):
  """The second estimate's columns where `row` lacks them: its scores
  (`blind_estimator.second_features`, all of them) and 'second_gain', its
  Fourier SR image's gain at the blind kernel's prior (a row measured before
  the spectral gap gets only 'second_gap')."""
  if 'second_gain' in row and row.get('second_gap') is not None:
    return {}
  s = cfg.scale
  if 'second_gain' in row:
    return {'second_gap': blind_estimator.spectral_gap(lr, kernels.second, s)}
  f = {'covariance': kernels.covariance, 'noise': row['noise'],
       'blockiness': row.get('blockiness', 0.0)}
  out = blind_estimator.second_features(lr, kernels.second, f, cfg, every=True)
  prior = blind_rule.sr_prior(cfg, 'blind', f)
  base = metrics.compare(resize.bicubic_upscale(lr, s), hr, s)['psnr_y']
  out['second_gain'] = float(metrics.compare(blind_sr(lr, kernels.second, cfg, prior), hr,
                                             s)['psnr_y'] - base)
  return out


def companion_columns(lr, hr, cfg, row, kernels):
  """The blind kernel's Fourier SR image blended with the marginal kernel's
  (`postprocess.companion_sr`, made once; `postprocess.blend`) at each of COMPANION_WEIGHTS, at the blind
  kernel's prior for the row ('companion_<weight>_<prior>'), where `row` lacks them."""
  prior = blind_rule.sr_prior(cfg, 'blind', {'blockiness': 0.0, **row})
  keys = {w: f'companion_{w:g}_{prior:g}' for w in COMPANION_WEIGHTS}
  if all(key in row for key in keys.values()):
    return {}
  s = cfg.scale
  base = metrics.compare(resize.bicubic_upscale(lr, s), hr, s)['psnr_y']
  post = dataclasses.replace(cfg.post, refine=True, refine_solver='fourier', refine_prior=prior)
  sr = blind_sr(lr, kernels.blind, cfg, prior)
  other = postprocess.companion_sr(lr, {'origin': (blind_estimator.SIZE // 2,) * 2,
                                        'companion_kernel': np.stack([kernels.marginal] * 3)},
                                   post, s)
  return {key: float(metrics.compare(postprocess.blend(sr, other.copy(), w), hr, s)['psnr_y']
                     - base) for w, key in keys.items()}


def blind_prior_columns(lr, hr, cfg, row, kernels):
  """The blind kernel's columns at each --blind_priors weight `row` lacks
  ('blind_fourier_<p>', 'ringing_fourier_<p>')."""
  priors = [float(p) for p in FLAGS.blind_priors if f'blind_fourier_{float(p):g}' not in row]
  if not priors:
    return {}
  s = cfg.scale
  base = metrics.compare(resize.bicubic_upscale(lr, s), hr, s)['psnr_y']
  out = {}
  for prior in priors:
    sr = blind_sr(lr, kernels.blind, cfg, prior)
    out[f'blind_fourier_{prior:g}'] = float(metrics.compare(sr, hr, s)['psnr_y'] - base)
    out[f'ringing_fourier_{prior:g}'] = blind_estimator.ringing(lr, kernels.blind, cfg, prior)
  return out


def cross_column(row, kernels):
  """{'cross': ...} where `row` lacks it (a table measured before the two
  estimates' test): the |log| ratio of the row's blind variance to the widest
  variance of `blind_estimator.cross_kernel`'s."""
  if 'cross' in row:
    return {}
  return {'cross': blind_estimator.disagreement(row['blind_variance'],
                                                blind_estimator.widest_variance(kernels.cross))}


def whittle_column(lr, cfg, row, kernels):
  """{'whittle_gap': ...} where `row` lacks it (a table measured before the
  spectral likelihood test)."""
  if row.get('whittle_gap') is not None:
    return {}
  return {'whittle_gap': blind_estimator.spectral_gap(lr, kernels.blind, cfg.scale)}


def evidence_column(lr, cfg, row, kernels):
  """{'evidence': ...} (`blind_estimator.evidence`) where `row` lacks it."""
  if row.get('evidence') is not None:
    return {}
  s = cfg.scale
  k_gauss = blind_estimator.gaussian(kernels.covariance, s)
  return {'evidence': blind_estimator.evidence(lr, kernels.blind, k_gauss, s)}


def extend(s, cfg):
  """`gaussian_columns`, `cross_column`, `whittle_column`, `evidence_column` and `blind_prior_columns` for every
  row of --results[0], written back row by row."""
  names = list(datasets.OFFLINE_IMAGES)
  best = presets.config_from_flagfile(presets.preset_path(f'best_x{s}')).post
  path = FLAGS.results[0]
  with open(path, encoding='utf-8') as f:
    out = json.load(f)
  floor = cfg.estimate.blind.blind_width_floor
  if out.get('width_floor', 0.0) != floor:  # a table measured before the record: no floor
    raise errors.UserError(f"{path} was measured with --width_floor={out.get('width_floor', 0.0)}"
                           f', not {floor}: its new columns would mix two blind kernels')
  if FLAGS.second:
    wanted = cfg.estimate.blind.blind_second_estimator
    # a table measured before the record holds the autocorrelation fit's
    if out.setdefault('second_estimator', 'autocorr') != wanted and any(
        'second_gain' in row for row in out['rows']):
      raise errors.UserError(f"{path}'s second-estimate columns are {out['second_estimator']}'s, "
                             f'not {wanted}\'s: extend a copy without them')
    out['second_estimator'] = wanted
  for n, row in enumerate(out['rows']):
    lr, hr, _, _ = families.pair(names.index(row['image']), row['family'], s,
                                 position=row['position'])
    kernels = _Kernels(lr, cfg)  # each estimated once, where a missing column needs it
    row.update(gaussian_columns(lr, hr, cfg, best, row))
    row.update(cross_column(row, kernels))
    row.update(whittle_column(lr, cfg, row, kernels))
    row.update(evidence_column(lr, cfg, row, kernels))
    row.update(blind_prior_columns(lr, hr, cfg, row, kernels))
    if FLAGS.second:
      row.update(second_columns(lr, hr, cfg, row, kernels))
    if FLAGS.companion:
      row.update(companion_columns(lr, hr, cfg, row, kernels))
    if n % 20 == 19 or n == len(out['rows']) - 1:
      outputs.write_json(path, out)
      print(f'{n + 1}/{len(out["rows"])} rows', flush=True)


def blind_sr(lr, k, cfg, prior):
  """uint8 SR image of the blind kernel through the Fourier stage at TV weight `prior`."""
  post = dataclasses.replace(cfg.post, refine=True, refine_solver='fourier', refine_prior=prior)
  origin = (blind_estimator.SIZE // 2,) * 2
  return postprocess.final(None, lr, np.stack([k] * 3).astype(np.float32), origin, post, cfg.scale)


def _blind_columns(row, settings):
  """(gain, ringing) of the blind kernel's Fourier SR image at the prior the
  rule gives it (`sr_prior`): the columns measured at that prior, else the
  preset's where the row has no others (KeyError where it has others, but
  not that prior)."""
  prior = settings.blind_prior * (1.0 if _clean(row, settings) else settings.blind_noisy_factor)
  if settings.blind_companion > 0:  # blended with the marginal kernel's (--companion's columns)
    return (row[f'companion_{settings.blind_companion:g}_{prior:g}'],
            row.get(f'ringing_fourier_{prior:g}', row['ringing_fourier']))
  if any(k.startswith('blind_fourier_') for k in row):
    return row[f'blind_fourier_{prior:g}'], row[f'ringing_fourier_{prior:g}']
  return row['blind_fourier'], row['ringing_fourier']


def _gaussian_columns(row, settings):
  """(gain, ringing) of the Gaussian's SR image at the prior the rule gives it:
  the noisy prior's columns on an image that is not clean (where measured),
  else the preset's."""
  prior = settings.blind_noisy_prior
  if not _clean(row, settings) and f'gaussian_{prior:g}' in row:
    return row[f'gaussian_{prior:g}'], row[f'gauss_ringing_{prior:g}']
  return row['gaussian'], row['gauss_ringing']


def _clean(row, settings):
  """`is_clean` on a row (a row measured before the blockiness counts as unblocked)."""
  return blind_rule.is_clean({'blockiness': 0.0, **row}, settings)


def outcome(rows, s, settings, solver):
  """{family: [gain of the chosen candidate per image]} under `settings`, the
  blind kernel's SR image by `solver` (its ringing is always the Fourier stage's)."""
  per_family = {}
  for r in rows:
    gain, ring = _blind_columns(r, settings)
    gauss, gauss_ring = _gaussian_columns(r, settings)
    choice, _, _ = blind_rule.choose({**r, 'ringing': ring, 'gauss_ringing': gauss_ring},
                                     s, settings)
    if (choice == 'bicubic' and np.isfinite(settings.blind_second_wide_min)
        and 'second_gain' in r and blind_rule.second_chance(r, s, settings)):
      choice, gain = 'blind', r['second_gain']
    if choice == 'bicubic' and blind_rule.last_chance({**r, 'gauss_ringing': gauss_ring},
                                                            s, settings):
      choice = 'gaussian'
    if choice == 'bicubic' and blind_rule.denoises(r, s, settings):
      choice = 'denoised'
    blind = gain if solver == 'fourier' else r[f'blind_gradient_{settings.blind_prior:g}']
    g = {'blind': blind, 'gaussian': gauss, 'bicubic': 0.0,
         'denoised': r.get(f'blind_fourier_{settings.blind_denoise_prior:g}')}[choice]
    per_family.setdefault(r['family'], []).append(g)
  return per_family


def objective(per_family):
  return float(np.mean([np.mean(g) - 2 * np.mean(np.maximum(-TOLERANCE - np.asarray(g), 0))
                        for g in per_family.values()]))


def search(s, cfg):
  rows = []
  for path in FLAGS.results:
    with open(path, encoding='utf-8') as f:
      rows += json.load(f)['rows']
  print(f'{len(rows)} rows')
  missing = {'gauss_ringing', 'ringing_fourier'} - set(rows[0])
  if missing:
    raise errors.UserError(f'{FLAGS.results[0]} has no {", ".join(sorted(missing))}: measure '
                           'the tuning set with this version first')
  start, solver = cfg.estimate.blind, cfg.post.refine_solver
  if start.blind_companion > 0 and not any(k.startswith('companion_') for k in rows[0]):
    raise errors.UserError(f'{FLAGS.results[0]} has no companion columns and the preset blends '
                           'with the marginal kernel (--blind_companion): add them with '
                           '--extend --companion first')
  if ((np.isfinite(start.blind_evidence_min) or 'blind_evidence_min' in FLAGS.search_keys)
      and 'evidence' not in rows[0]):
    raise errors.UserError(f'{FLAGS.results[0]} has no evidence column (--blind_evidence_min): '
                           'add it with --extend first')
  noisy = f'gaussian_{start.blind_noisy_prior:g}'
  unmeasured = sum(1 for r in rows if not _clean(r, start) and noisy not in r)
  if unmeasured:  # `_gaussian_columns` scores them at the preset's prior
    print(f'note: {unmeasured} rows that are not clean have no {noisy} and are scored at the '
          f'clean prior: add it with --extend --gauss_priors={start.blind_noisy_prior:g}')
  names = {k[len('blind_fourier_'):] for k in rows[0] if k.startswith('blind_fourier_')}
  grid = {k: GRID[k] for k in FLAGS.search_keys}
  if names:
    grid['blind_prior'] = tuple(sorted(map(float, names)))
  scored = []
  for values in itertools.product(*grid.values()):
    settings = dataclasses.replace(start, **dict(zip(grid, values)))
    priors = (settings.blind_prior, settings.blind_prior * settings.blind_noisy_factor)
    if settings.blind_denoise_prior > 0:
      priors += (settings.blind_denoise_prior,)
    if names and any(f'{p:g}' not in names for p in priors):
      continue  # a blind prior the rows were not measured at
    if settings.blind_companion > 0 and any(
        f'companion_{settings.blind_companion:g}_{p:g}' not in rows[0] for p in priors[:2]):
      continue  # a blend the rows were not measured at
    scored.append((objective(outcome(rows, s, settings, solver)), values, settings))
  scored.sort(key=lambda t: -t[0])
  print(f'SR stage of the blind kernel: {solver}')
  print(f'preset: {objective(outcome(rows, s, start, solver)):+.3f}  ' +
        '  '.join(f'{k}={getattr(start, k):g}' for k in grid))
  for score, values, _ in scored[:8]:
    print(f'{score:+.3f}  ' + '  '.join(f'{k}={v:g}' for k, v in zip(grid, values)))
  for name, settings in (('preset', start), ('best', scored[0][2])):
    per_family = outcome(rows, s, settings, solver)
    print(name, ' '.join(f'{fam} {np.mean(g):+.2f} ({min(g):+.2f})' for fam, g in per_family.items()))


def main(argv):
  del argv
  s = FLAGS.scale
  checks.scale(s)
  checks.families(FLAGS.families)
  checks.positions(FLAGS.positions)
  checks.numbers('blind_priors', FLAGS.blind_priors)
  checks.numbers('gauss_priors', FLAGS.gauss_priors)
  cfg = presets.config_from_flagfile(presets.preset_path(f'blind_x{s}'))
  changes = {}
  if FLAGS.second_estimator:
    changes['blind_second_estimator'] = FLAGS.second_estimator
  if FLAGS.width_floor is not None:
    changes['blind_width_floor'] = FLAGS.width_floor
  cfg = dataclasses.replace(cfg, estimate=dataclasses.replace(
      cfg.estimate, blind=dataclasses.replace(cfg.estimate.blind, **changes)))
  if FLAGS.search:
    search(s, cfg)
  elif FLAGS.extend:
    extend(s, cfg)
  else:
    measure(s, cfg)


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
