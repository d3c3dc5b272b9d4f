r"""The SR stage's two solvers side by side, per degradation family.

For each family (`benchmarks.families`) and image (the LR image made as
`benchmarks.blind_families` makes it), the kernel of `best_x2` / `best_x4`
(the spectral Gaussian) is estimated once and the SR image made by
`postprocess.final` with

  fourier   `--refine_solver=fourier` with the preset's settings (data term +
            TV by half-quadratic splitting, whole photos window by window)
  gradient  `--refine_solver=gradient`: 100 projected accelerated gradient
            steps, smoothed-TV weight 1e-4 at x2 and 3e-4 at x4 (the gradient
            stage's tuned weights)

in Y-PSNR gain over MATLAB bicubic (shave = scale) and seconds per image
(compile excluded: each solver is run once before timing). Rows are written
to --results (JSON) as they come; a markdown table is printed.

  python -m benchmarks.solvers --scale=2 --images=report \
      --results=benchmarks/results/solvers_x2_report.json
"""

import dataclasses
import time

from absl import app
from absl import flags
import numpy as np

from benchmarks import datasets
from benchmarks import families
from ike_jax import metrics
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import resize
from ike_jax.estimators import spectral

FLAGS = flags.FLAGS
GRADIENT_PRIOR = {2: 1e-4, 4: 3e-4}


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', list(families.FAMILIES), f'Of {", ".join(families.FAMILIES)}.')
  flags.DEFINE_enum('images', 'report', ['report', 'tuning'], 'Which photos.')
  flags.DEFINE_string('results', None, 'JSON written row by row.')


def solvers(scale):
  """{name: PostConfig} of the two solvers at this scale."""
  post = presets.config_from_flagfile(presets.preset_path(f'best_x{scale}')).post
  return {'fourier': dataclasses.replace(post, refine_solver='fourier'),
          'gradient': dataclasses.replace(post, refine_solver='gradient', refine_iterations=100,
                                          refine_prior=GRADIENT_PRIOR[scale])}


def measure_one(name, index, family, s, posts):
  """One image's row: each solver's gain and seconds."""
  lr, hr, _, _ = families.pair(index, family, s)
  base = metrics.compare(resize.bicubic_upscale(lr, s), hr, s)['psnr_y']
  cfg = presets.config_from_flagfile(presets.preset_path(f'best_x{s}'))
  est = spectral.estimate(lr, cfg)
  k, origin = postprocess.sr_kernel(est, s, s)
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
  posts = solvers(s)
  ranges = datasets.REPORT_IMAGES if FLAGS.images == 'report' else datasets.TUNING_IMAGES
  names = list(datasets.OFFLINE_IMAGES)
  out = {'scale': s, 'images': FLAGS.images,
         'settings': {k: dataclasses.asdict(v) for k, v in posts.items()}, 'rows': []}
  table = ['| family | fourier | gradient | fourier - gradient (worst) | s/img fourier | s/img gradient |',
           '|---|---|---|---|---|---|']
  for family in FLAGS.families:
    rows = []
    for i in datasets.indices(ranges):
      row = measure_one(names[i], i, family, s, posts)
      rows.append(row)
      out['rows'].append(row)
      print(f"{family:15s} {row['image']:22s} fourier {row['fourier']:+6.2f}  gradient "
            f"{row['gradient']:+6.2f}", flush=True)
      if FLAGS.results:
        outputs.write_json(FLAGS.results, out)  # atomic, row by row
    mean = lambda key: float(np.mean([r[key] for r in rows]))
    worst = min(r['fourier'] - r['gradient'] for r in rows)
    table.append(f"| {family} x{s} | {mean('fourier'):+.2f} | {mean('gradient'):+.2f} | "
                 f"{mean('fourier') - mean('gradient'):+.2f} ({worst:+.2f}) | "
                 f"{np.median([r['fourier_s'] for r in rows]):.2f} | "
                 f"{np.median([r['gradient_s'] for r in rows]):.2f} |")
    print(table[-1], flush=True)
  print('\n'.join(table))


if __name__ == '__main__':
  define_flags()
  app.run(main)
