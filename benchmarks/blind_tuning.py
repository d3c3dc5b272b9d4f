"""What the blind kernel choice sees, per tuning image and family (tuning only),
and the thresholds read off it.

For every family and tuning photo: the choice's inputs (the halves'
agreement, the blind kernel's distance from the Gaussian, its widest variance
and the ringing of the SR image it gives, the Gaussian's widest variance, the
noise level) and the Y-PSNR gain over bicubic of each candidate (the blind
kernel at two SR priors, the spectral Gaussian through `best_x2`'s /
`best_x4`'s SR stage, bicubic = 0). Rows go to --results as they come.

`--search` then reads such a file and grid-searches the choice's thresholds
(`config.BlindConfig`), maximising the mean over families of the mean gain
less twice the mean shortfall below -0.05 dB per image; it prints the best
settings and their per-family gains (docs/method.md, "Blind SR: the kernel
choice").

  python -m benchmarks.blind_tuning --scale=2 --results=benchmarks/results/blind_tuning_x2.json
  python -m benchmarks.blind_tuning --scale=2 --positions=1,2,3,4 --solvers=fourier \
      --results=benchmarks/results/blind_tuning_crops_x2.json
  python -m benchmarks.blind_tuning --scale=2 --search \
      --results=benchmarks/results/blind_tuning_x2.json,benchmarks/results/blind_tuning_crops_x2.json
"""

import dataclasses
import itertools
import json

from absl import app
from absl import flags
import numpy as np

from benchmarks import blind_families
from benchmarks import datasets
from benchmarks import families
from ike_jax import metrics
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import resize
from ike_jax.estimators import blind as blind_estimator
from ike_jax.estimators import spectral

FLAGS = flags.FLAGS
PRIORS = (1e-3, 3e-3)  # the gradient solver's TV weights measured with the blind kernel
SOLVERS = ('gradient', 'fourier')
TOLERANCE = 0.05  # dB below bicubic that costs nothing in the search's objective

# The search's grid (the other thresholds stay at the preset's).
GRID = {'blind_agree_max': (0.5, 0.8, 1.2, 2.0),
        'blind_wide_min': (8.0, 10.0, 15.0, 20.0, 30.0),
        'blind_ringing_max': (2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, np.inf),
        'blind_gauss_ringing_per_sd': (0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 2.0, np.inf),
        'blind_gauss_min': (4.0, np.inf)}


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', [f for f in families.FAMILIES if f != 'none+noise'], 'Families.')
  flags.DEFINE_list('results', None, 'JSON written row by row; with --search, the files read.')
  flags.DEFINE_list('positions', ['0'], 'HR crops of each tuning photo (families.crop: 0 the '
                    'centre, 1-4 the quadrants), each with its own degradation seed.')
  flags.DEFINE_list('solvers', list(SOLVERS), "SR stages measured with the blind kernel.")
  flags.DEFINE_bool('search', False, 'Grid-search the thresholds on --results instead of measuring.')


def measure(s, cfg):
  names = list(datasets.OFFLINE_IMAGES)
  best = presets.config_from_flagfile(presets.preset_path(f'best_x{s}')).post
  out = {'scale': s, 'rows': []}
  for family, position, i in itertools.product(FLAGS.families, map(int, FLAGS.positions),
                                               datasets.indices(datasets.TUNING_IMAGES)):
    lr, hr, _, _ = families.pair(i, family, s, position=position)
    bic = resize.bicubic_upscale(lr, s)
    base = metrics.compare(bic, hr, s)['psnr_y']
    gain = lambda sr: float(metrics.compare(sr, hr, s)['psnr_y'] - base)  # pylint: disable=cell-var-from-loop
    feats, k_blind, k_gauss = blind_estimator.features(lr, cfg)
    del feats['covariance']
    origin = (blind_estimator.SIZE // 2,) * 2
    gaussian = spectral.estimate(lr, cfg)
    row = {'family': family, 'image': names[i], 'position': position, **feats,
           'gaussian': gain(postprocess.final(None, lr, *postprocess.sr_kernel(gaussian, s, s),
                                              best, s)),
           'gauss_ringing': blind_estimator.ringing(lr, k_gauss, cfg, 'gaussian'),
           'ringing_fourier': blind_estimator.ringing(lr, k_blind, cfg)}
    for solver in FLAGS.solvers:
      if solver == 'fourier':
        post = dataclasses.replace(cfg.post, refine=True, refine_solver='fourier',
                                   refine_prior=blind_estimator.sr_prior(cfg, 'blind'))
        row['blind_fourier'] = gain(postprocess.final(
            None, lr, np.stack([k_blind] * 3).astype(np.float32), origin, post, s))
      else:
        for prior in PRIORS:
          row[f'blind_gradient_{prior:g}'] = gain(
              blind_families.back_project(bic, lr, k_blind, origin, prior, s))
    out['rows'].append(row)
    print(' '.join(f'{k} {v:.3f}' if isinstance(v, float) else f'{k} {v}'
                   for k, v in row.items()), flush=True)
    if FLAGS.results:
      outputs.write_json(FLAGS.results[0], out)


def outcome(rows, s, settings, solver):
  """{family: [gain of the chosen candidate per image]} under `settings`, the
  blind kernel's SR image by `solver` (its ringing is always the Fourier stage's)."""
  per_family = {}
  for r in rows:
    choice, _ = blind_estimator.choose({**r, 'ringing': r['ringing_fourier']}, s, settings)
    blind = r['blind_fourier'] if solver == 'fourier' else r[f'blind_gradient_{settings.blind_prior:g}']
    g = {'blind': blind, 'gaussian': r['gaussian'], 'bicubic': 0.0}[choice]
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
    raise app.UsageError(f'{FLAGS.results[0]} has no {", ".join(sorted(missing))}: measure '
                         'the tuning set with this version first')
  start, solver = cfg.estimate.blind, cfg.post.refine_solver
  scored = []
  for values in itertools.product(*GRID.values()):
    settings = dataclasses.replace(start, **dict(zip(GRID, values)))
    scored.append((objective(outcome(rows, s, settings, solver)), values, settings))
  scored.sort(key=lambda t: -t[0])
  print(f'SR stage of the blind kernel: {solver}')
  print(f'preset: {objective(outcome(rows, s, start, solver)):+.3f}  ' +
        '  '.join(f'{k}={getattr(start, k):g}' for k in GRID))
  for score, values, _ in scored[:8]:
    print(f'{score:+.3f}  ' + '  '.join(f'{k}={v:g}' for k, v in zip(GRID, values)))
  for name, settings in (('preset', start), ('best', scored[0][2])):
    per_family = outcome(rows, s, settings, solver)
    print(name, ' '.join(f'{fam} {np.mean(g):+.2f} ({min(g):+.2f})' for fam, g in per_family.items()))


def main(argv):
  del argv
  s = FLAGS.scale
  cfg = presets.config_from_flagfile(presets.preset_path(f'blind_x{s}'))
  if FLAGS.search:
    search(s, cfg)
  else:
    measure(s, cfg)


if __name__ == '__main__':
  define_flags()
  app.run(main)
