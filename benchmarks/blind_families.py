"""Blind SR per degradation family: the kernel choice against bicubic and the true kernel.

For each family (`benchmarks.families`) and image, the LR image is made from
the photo's centre crop (256 HR px at x2, 384 at x4; --hr_size another
side) with seed 100 + image index; then measured, in Y-PSNR gain over MATLAB
bicubic (shave = scale):

  spectral  `best_x2` / `best_x4`: the spectral Gaussian and the preset's SR
            stage (`postprocess.final`, the Fourier solver; with
            --linear_light, in linear light)
  blind     `--preset=blind_x2` / `blind_x4`: the chosen kernel and SR prior
            (its estimate and back-projection, as the CLI runs them; with
            --linear_light, as `ike-jax --linear_light` runs them)
  true      back-projection onto the true kernel (the SR stage's ceiling), in
            the space the family blurred (light for the `+light` variants)

with the kernel error of the blind choice and its seconds per image. Rows are
written to --results (JSON) as they come (run again, the same command resumes
an interrupted table: `benchmarks/rows.py`); a markdown table is printed, and
drawn beside the JSON (`<results>.png`: per family the mean gains, each
image a dot).

  python -m benchmarks.blind_families --scale=2 --families=shake,gaussian \
      --images=report --results=benchmarks/results/blind_x2.json
"""

import os
import time

from absl import flags
import jax.numpy as jnp
import numpy as np

from benchmarks import checks
from benchmarks import datasets
from benchmarks import families
from benchmarks import plots
from benchmarks import rows as rows_lib
from ike_jax import cli
from ike_jax import colours
from ike_jax import data
from ike_jax import errors
from ike_jax import estimate
from ike_jax import kernel as kernel_lib
from ike_jax import metrics
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import refine
from ike_jax import resize
from ike_jax.estimators import blind as blind_estimator
from ike_jax.estimators import spectral

FLAGS = flags.FLAGS
SPECTRAL_PRIOR = {2: 1e-4, 4: 3e-4}  # gradient back-projection TV weights (the blind presets)


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', ['shake', 'gaussian'],
                    f'Of {", ".join(families.FAMILIES)}; checks: {", ".join(families.CHECKS)}, '
                    f'{", ".join(families.RESAMPLERS)} (each also with +noise, +jpeg, +readnoise, +n2q90); '
                    f'report only: {", ".join(families.PUBLISHED)}, the camera checks '
                    f'{", ".join(families.CAMERA)}.')
  flags.DEFINE_enum('images', 'report', ['report', 'tuning'], 'Which photos.')
  flags.DEFINE_integer('hr_size', None, 'HR side of the centre crops (a multiple of the scale, at '
                       'most 500 for the report photos); default 256 at x2, 384 at x4.')
  flags.DEFINE_string('results', None, 'JSON written row by row; an existing one measured with '
                      'the same settings is resumed.')
  flags.DEFINE_bool('linear_light', False, 'The presets as `ike-jax --linear_light` runs them: '
                    'the kernels estimated and the photo deblurred in linear light (the true '
                    "kernel's column as without it).")
  checks.define_kernel_set_flags()
  flags.adopt_module_key_flags(checks)  # --help lists them


def back_project(bic, lr, k, origin, prior, s, light=False):
  """uint8 SR: bicubic back-projected onto k (100 steps, TV weight `prior`), as
  `--refine`; `light`: the photo's light deblurred (from its own bicubic), then encoded."""
  if light:
    lr = colours.light_levels(lr)
    bic = np.asarray(resize.matlab_upscale(lr, s))
  sr = refine.back_project(jnp.asarray(data.to_model(bic)), jnp.asarray(data.to_model(lr)),
                           jnp.asarray(k, jnp.float32), s, origin, iterations=100,
                           prior_weight=prior)
  if light:
    return colours.encoded_u8(np.clip((np.asarray(sr) + 1) * 127.5, 0, 255))
  return data.from_model(np.asarray(sr))


def measure_one(name, index, family, s, hr_size=None, light=False):
  lr, hr, k_true, _ = families.pair(index, family, s, hr_size)
  bic = resize.bicubic_upscale(lr, s)
  base = metrics.compare(bic, hr, s)['psnr_y']
  gain = lambda sr: float(metrics.compare(sr, hr, s)['psnr_y'] - base)
  cfg = presets.config_from_flagfile(presets.preset_path(f'blind_x{s}'))
  seen = colours.light_u8(lr) if light else lr  # what the estimates read
  gaussian = dict(spectral.estimate(seen, cfg), scale=s)
  best = presets.config_from_flagfile(presets.preset_path(f'best_x{s}')).post
  row = {'image': name, 'family': family,
         'spectral': gain(postprocess.photo_sr(None, lr, gaussian, best, s, light=light)[0])}
  t0 = time.perf_counter()
  est = dict(blind_estimator.estimate(seen, estimate.in_light(cfg) if light else cfg), scale=s)
  sr, _ = postprocess.photo_sr(None, lr, est, cfg.post, s, light=light)  # as the pipeline does
  row.update(blind=gain(sr), seconds=time.perf_counter() - t0, choice=est['choice'],
             confidence=est['confidence'], noise_sigma=est['noise_sigma'])
  if k_true is not None:
    origin = (k_true.shape[0] // 2,) * 2
    row.update(true=gain(back_project(bic, lr, k_true, origin, SPECTRAL_PRIOR[s], s,
                                      families.in_light(family))),
               kernel_error=kernel_lib.kernel_error(est['kernel'], k_true),
               kernel_error_spectral=kernel_lib.kernel_error(gaussian['kernel'], k_true))
  return row


def main(argv):
  del argv
  s = FLAGS.scale
  checks.scale(s)
  checks.families(FLAGS.families)
  checks.kernel_sets(FLAGS.families, FLAGS.images, checks.kernel_set_paths())
  ranges = datasets.REPORT_IMAGES if FLAGS.images == 'report' else datasets.TUNING_IMAGES
  names = list(datasets.OFFLINE_IMAGES)
  checks.hr_size(FLAGS.hr_size, s, ranges)
  # The presets' settings too: a rerun after a preset changed measures anew.
  configs = {name: presets.config_from_flagfile(presets.preset_path(name)).to_dict()
             for name in (f'best_x{s}', f'blind_x{s}')}
  table = rows_lib.Rows(FLAGS.results, {'scale': s, 'images': FLAGS.images,
                                        'hr_size': FLAGS.hr_size,
                                        'levin_kernels': FLAGS.levin_kernels,
                                        'usrnet_kernels': FLAGS.usrnet_kernels,
                                        'linear_light': FLAGS.linear_light or None,
                                        'presets': configs},
                        key=lambda r: (r['family'], r['image']), error=errors.UserError)
  per_family = []
  for family in FLAGS.families:
    rows = []
    for i in datasets.indices(ranges):
      row = table.get((family, names[i]))
      kept = row is not None
      if not kept:
        row = measure_one(names[i], i, family, s, FLAGS.hr_size, FLAGS.linear_light)
        table.add(row)  # written row by row: a rerun resumes
      rows.append(row)
      print(f"{family:12s} {row['image']:22s} spectral {row['spectral']:+6.2f}  blind "
            f"{row['blind']:+6.2f} ({row['choice']}, {row['confidence']:.2f})  true "
            f"{row.get('true', float('nan')):+6.2f}  {row['seconds']:.1f} s"
            f"{'  (kept)' if kept else ''}", flush=True)
    mean = lambda key: np.mean([r[key] for r in rows]) if key in rows[0] else float('nan')
    print(f"| {family} x{s} | {mean('spectral'):+.2f} (worst {min(r['spectral'] for r in rows):+.2f}) "
          f"| {mean('blind'):+.2f} (worst {min(r['blind'] for r in rows):+.2f}) | {mean('true'):+.2f} "
          f"| {mean('kernel_error'):.4f} | {mean('kernel_error_spectral'):.4f} "
          f"| {np.median([r['seconds'] for r in rows]):.1f} |", flush=True)
    per_family.append(rows)
  if FLAGS.results:
    gains = lambda key: [[r.get(key, np.nan) for r in rows] for rows in per_family]
    plots.family_gains_png(
        os.path.splitext(FLAGS.results)[0] + '.png', FLAGS.families,
        {f'best_x{s}': gains('spectral'), f'blind_x{s}': gains('blind'),
         'true kernel': gains('true')},
        f'Y-PSNR gain over bicubic, x{s}, {FLAGS.images} photos')


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
