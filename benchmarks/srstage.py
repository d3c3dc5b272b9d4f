r"""The SR-stage table: each SR stage with the true kernel and with the estimated one.

For every image of a data set with true kernels, the SR stages
(`postprocess.apply`: back-projection, ZSSR, ZSSR then back-projection) are
run from bicubic with (a) the true kernel and (b) the kernel of the
estimator the flags name (`estimate.estimate_batch`; a closed-form one, e.g.
`--generator=spectral`, takes well under a second per image).
The other post-processing settings (ZSSR steps, back-projection prior and
steps) come from the flags. Per row: the Y-PSNR gain over bicubic per image,
its mean, and the seconds per image. A row is one SR stage with one kernel;
rows are written to the JSON as they finish (`benchmarks/rows.py`): the same
command run again keeps the rows measured and measures the rest (the kernels
are estimated only if an estimated-kernel row is missing).

  python -m benchmarks.srstage --flagfile=flags/best_x2.flags --first_image=4 \
      --num_images=8 --stages=refine,zssr,zssr+refine \
      --results=benchmarks/results/srstage_x2.json
"""

import os
import time

from absl import flags
import jax.numpy as jnp
import numpy as np

from benchmarks import quality
from benchmarks import rows as rows_lib
from ike_jax import crops
from ike_jax import data
from ike_jax import errors
from ike_jax import estimate
from ike_jax import metrics
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import resize

FLAGS = flags.FLAGS
STAGES = {'refine': dict(refine=True, zssr=False), 'zssr': dict(zssr=True, refine=False),
          'zssr+refine': dict(zssr=True, refine=True)}


def define_flags():
  flags.DEFINE_list('stages', ['refine', 'zssr', 'zssr+refine'],
                    f'SR stages to run: {", ".join(STAGES)}.')


def _true_kernel(sample):
  k = np.asarray(data.load_kernel(sample.kernel_path), np.float32)
  k = k / k.sum()
  return jnp.asarray(np.stack([k] * 3)), (k.shape[0] // 2, k.shape[1] // 2)


def stage_gain(lr, hr, kern, origin, post, scale, seed=0):
  """Y-PSNR gain over bicubic of one SR stage run from bicubic."""
  bic = resize.bicubic_upscale(lr, scale)
  sr = postprocess.apply(data.to_model(bic), data.to_model(lr), kern, origin, post, scale, seed)
  return (metrics.compare(data.from_model(sr), hr, scale)['psnr_y']
          - metrics.compare(bic, hr, scale)['psnr_y'])


def measure(cfg, samples, stages, results=None, log=print, data_flags=None):
  """{'rows': [{'stage', 'kernel', 'gains': {image: dB}, 'mean_gain', 's_per_image'}]}.

  Rows go to `results` as they come; the rows it holds already, measured with
  the same settings (`data_flags`: the data-set flags), are kept.
  """
  if any(s.kernel_path is None or s.hr_path is None for s in samples):
    raise errors.UserError('every image needs its HR image and true kernel')
  images = []
  for s in samples:
    lr = crops.trim_to_multiple(data.load_image(s.lr_path, log=log), cfg.scale)[0]
    hr = data.load_image(s.hr_path, log=log)[:lr.shape[0] * cfg.scale, :lr.shape[1] * cfg.scale]
    images.append((s.name, lr, hr, {'true': _true_kernel(s)}))
  table = rows_lib.Rows(results, {'estimator': cfg.train.model.generator,
                                  'images': [n for n, *_ in images], 'config': cfg.to_dict(),
                                  'data': data_flags},
                        key=lambda r: (r['stage'], r['kernel']), error=errors.UserError)
  for stage in stages:
    post = cfg.replace(**STAGES[stage]).post
    for which in ('true', 'estimated'):
      if table.get((stage, which)) is not None:
        log(f'{stage:12s} {which:9s} kept')
        continue
      for _, lr, _, kernels in images:
        if which not in kernels:  # estimated once, when first needed
          found = estimate.estimate_batch([{'lr': lr}], cfg, log)[0][0].estimate
          kernels[which] = postprocess.sr_kernel(found, found['scale'], cfg.scale)
      t0, gains = time.perf_counter(), {}
      for name, lr, hr, kernels in images:
        gains[name] = stage_gain(lr, hr, *kernels[which], post, cfg.scale, cfg.run.seed)
      row = {'stage': stage, 'kernel': which, 'gains': gains,
             'mean_gain': float(np.mean(list(gains.values()))),
             's_per_image': (time.perf_counter() - t0) / len(images)}
      table.add(row)  # written row by row: a rerun resumes
      log(f"{stage:12s} {which:9s} mean {row['mean_gain']:+.2f} dB  "
          f"({row['s_per_image']:.1f} s/image)")
  return table.table


def markdown(out):
  names = out['images']
  head = ['SR stage', 'kernel'] + names + ['mean', 's/image']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in out['rows']:
    kernel = 'true' if r['kernel'] == 'true' else out['estimator']
    cells = [r['stage'], kernel] + [f"{r['gains'][n]:+.2f}" for n in names]
    cells += [f"**{r['mean_gain']:+.2f}**", f"{r['s_per_image']:.1f}"]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  bad = [s for s in FLAGS.stages if s not in STAGES]
  if bad or not FLAGS.stages:
    raise errors.UserError(f'--stages takes a comma list of {", ".join(STAGES)}, got '
                           f'{",".join(FLAGS.stages)}')
  cfg = presets.config_from_flag_values(FLAGS)
  samples = quality.load_samples(FLAGS, cfg.scale)
  results = FLAGS.results or os.path.join('benchmarks', 'results', f'srstage_x{cfg.scale}.json')
  out = measure(cfg, samples, FLAGS.stages, results, log=lambda m: print(m, flush=True),
                data_flags=quality.data_flags())
  md = markdown(out)
  outputs.write_bytes_atomic(os.path.splitext(results)[0] + '.md', md.encode())
  print(md)
  print(f'wrote {results}')
  return 0


if __name__ == '__main__':
  presets.define_config_flags(FLAGS)
  quality.define_dataset_flags('runs/srstage')
  define_flags()
  quality.entry(main)
