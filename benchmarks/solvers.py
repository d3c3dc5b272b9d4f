r"""The SR stage's two solvers side by side, per degradation family.

For each family (`benchmarks.families`) and image (the LR image made as
`benchmarks.blind_families` makes it), one kernel (`--kernel`: the spectral
Gaussian of `best_x2` / `best_x4`, the true kernel, or `blind_x2` /
`blind_x4`'s non-parametric estimate) and the SR image made from it by
`postprocess.final` with

  fourier   `--refine_solver=fourier` with the preset's settings (data term +
            TV by half-quadratic splitting, whole photos window by window;
            the blind estimate at the blind presets' TV weight)
  unknown   the same with `--refine_boundary=unknown` (no data term beyond
            the LR image's edges)
  gradient  `--refine_solver=gradient`: 100 projected accelerated gradient
            steps, smoothed-TV weight 1e-4 at x2 and 3e-4 at x4 (the gradient
            stage's tuned weights)

in Y-PSNR gain over MATLAB bicubic (shave = scale) and seconds per image
(compile excluded: each solver is run once before timing). Rows are written
to --results (JSON) as they come (the same command run again resumes an
interrupted table: `benchmarks/rows.py`); a markdown table is printed.

  python -m benchmarks.solvers --scale=2 --images=report \
      --results=benchmarks/results/solvers_x2_report.json
  python -m benchmarks.solvers --scale=2 --images=tuning --kernel=true \
      --families=gaussian,shake,motion,disk,mixture --results=...
"""

import dataclasses
import time

from absl import flags
import numpy as np

from benchmarks import checks
from benchmarks import datasets
from benchmarks import families
from benchmarks import rows as rows_lib
from ike_jax import cli
from ike_jax import errors
from ike_jax import metrics
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import resize
from ike_jax.estimators import blind as blind_estimator
from ike_jax.estimators import spectral

FLAGS = flags.FLAGS
GRADIENT_PRIOR = {2: 1e-4, 4: 3e-4}


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', list(families.FAMILIES),
                    f'Of {", ".join(families.FAMILIES)}; report only: '
                    f'{", ".join(families.PUBLISHED)}.')
  flags.DEFINE_enum('images', 'report', ['report', 'tuning'], 'Which photos.')
  checks.define_kernel_set_flags()
  flags.adopt_module_key_flags(checks)  # --help lists them
  flags.DEFINE_string('results', None, 'JSON written row by row; an existing one measured with '
                      'the same settings is resumed.')
  flags.DEFINE_enum('kernel', 'spectral', ['spectral', 'true', 'blind'],
                    "The SR stage's kernel: best_x{2,4}'s spectral Gaussian, the true one, or "
                    "blind_x{2,4}'s non-parametric estimate (at its TV weight).")
  flags.DEFINE_list('priors', [], "Further TV weights of the Fourier stage (mirrored borders), "
                    "each a column 'fourier_<weight>': where the preset's weight leaves the "
                    'ceiling of a noisy family unmeasured.')


SOLVERS = ('fourier', 'unknown', 'gradient')


def solvers(scale, kernel='spectral', priors=()):
  """{name: PostConfig} of the three solvers at this scale, for `kernel`'s SR stage,
  and the Fourier stage at each further TV weight of `priors` ('fourier_<weight>')."""
  post = presets.config_from_flagfile(presets.preset_path(f'best_x{scale}')).post
  if kernel == 'blind':
    blind = presets.config_from_flagfile(presets.preset_path(f'blind_x{scale}'))
    post = dataclasses.replace(post, refine_prior=blind.estimate.blind.blind_prior)
  fourier = dataclasses.replace(post, refine_solver='fourier')
  return {'fourier': fourier,
          'unknown': dataclasses.replace(fourier, refine_boundary='unknown'),
          'gradient': dataclasses.replace(post, refine_solver='gradient', refine_iterations=100,
                                          refine_prior=GRADIENT_PRIOR[scale]),
          **{f'fourier_{p:g}': dataclasses.replace(fourier, refine_prior=p) for p in priors}}


def kernel_config(scale, kernel):
  """The preset whose estimate `kernel` names, read once per run (None for the truth)."""
  if kernel == 'true':
    return None
  return presets.config_from_flagfile(
      presets.preset_path(f"{'blind' if kernel == 'blind' else 'best'}_x{scale}"))


def sr_kernel(lr, k_true, s, kernel, cfg):
  """(per-colour kernel, origin) of the SR stage: `kernel`'s estimate of `lr` under
  the preset `cfg` (`kernel_config`), or the truth."""
  if kernel == 'true':
    k = np.asarray(k_true, np.float32)
    return np.stack([k] * 3), (k.shape[0] // 2,) * 2
  if kernel == 'blind':
    k = np.asarray(blind_estimator.first_kernel(lr, blind_estimator.covariance(lr, cfg), cfg),
                   np.float32)
    return np.stack([k] * 3), (blind_estimator.SIZE // 2,) * 2
  return postprocess.sr_kernel(spectral.estimate(lr, cfg), s, s)


def measure_one(name, index, family, s, posts, kernel='spectral', cfg=None):
  """One image's row: each solver's gain and seconds (`cfg`: `kernel_config`'s, read
  here when not given)."""
  lr, hr, k_true, _ = families.pair(index, family, s)
  if kernel == 'true' and k_true is None:
    raise ValueError(f'{family} has no true kernel')
  base = metrics.compare(resize.bicubic_upscale(lr, s), hr, s)['psnr_y']
  cfg = kernel_config(s, kernel) if cfg is None else cfg
  k, origin = sr_kernel(lr, k_true, s, kernel, cfg)
  row = {'image': name, 'family': family}
  for solver, post in posts.items():
    postprocess.final(None, lr, k, origin, post, s)  # compiled outside the timing
    t0 = time.perf_counter()
    sr = postprocess.final(None, lr, k, origin, post, s)
    row[f'{solver}_s'] = time.perf_counter() - t0
    row[solver] = float(metrics.compare(sr, hr, s)['psnr_y'] - base)
  return row


def main(argv):
  del argv
  s = FLAGS.scale
  checks.scale(s)
  checks.families(FLAGS.families)
  priors = checks.numbers('priors', FLAGS.priors)
  checks.kernel_sets(FLAGS.families, FLAGS.images, checks.kernel_set_paths())
  posts = solvers(s, FLAGS.kernel, priors)
  kernel_cfg = kernel_config(s, FLAGS.kernel)
  ranges = datasets.REPORT_IMAGES if FLAGS.images == 'report' else datasets.TUNING_IMAGES
  names = list(datasets.OFFLINE_IMAGES)
  results = rows_lib.Rows(FLAGS.results, {
      'scale': s, 'images': FLAGS.images, 'kernel': FLAGS.kernel, 'levin_kernels': FLAGS.levin_kernels,
      'usrnet_kernels': FLAGS.usrnet_kernels,
      'settings': {k: dataclasses.asdict(v) for k, v in posts.items()}},
                         key=lambda r: (r['family'], r['image']), error=errors.UserError)
  extra = [name for name in posts if name not in SOLVERS]
  table = [f'| family ({FLAGS.kernel} kernel) | fourier (worst) | unknown borders | gradient '
           + ''.join(f'| {name} ' for name in extra) + '| s/img fourier | unknown | gradient |',
           '|---|---|---|---|' + '---|' * len(extra) + '---|---|---|']
  for family in FLAGS.families:
    rows = []
    for i in datasets.indices(ranges):
      row = results.get((family, names[i]))
      kept = row is not None
      if not kept:
        row = measure_one(names[i], i, family, s, posts, FLAGS.kernel, kernel_cfg)
        results.add(row)  # written row by row: a rerun resumes
      rows.append(row)
      print(f"{family:15s} {row['image']:22s} " + '  '.join(
          f'{solver} {row[solver]:+6.2f}' for solver in posts) + ('  (kept)' if kept else ''),
            flush=True)
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # pylint: disable=cell-var-from-loop
    table.append(f'| {family} x{s} | ' + ' | '.join(
        f'{mean(solver):+.2f} ({min(r[solver] for r in rows):+.2f})' for solver in posts)
                 + ' | ' + ' | '.join(f"{np.median([r[f'{solver}_s'] for r in rows]):.2f}"
                                      for solver in SOLVERS) + ' |')
    print(table[-1], flush=True)
  print('\n'.join(table))


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
