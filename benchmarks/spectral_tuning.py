r"""Tuning sweep of the spectral estimate + back-projection, on tuning images only.

Cases: the tuning photos (`datasets.TUNING_IMAGES`), each degraded
DIV2KRK-style with three fixed kernel seeds (its own index i, 1000 + i and
2000 + i), so that a setting is judged on 12 image-kernel pairs that no report
figure uses. Each `--setting` is a semicolon-separated list of flat config
overrides applied on top of the flags: the SR stage's (e.g.
`refine_prior=1e-4`) or the spectral fit's (`spectral_band_lo=0.08`,
`spectral_band_hi=0.3`, `spectral_phases=4`, `spectral_variance_scale=0.9`). Per
setting: mean and worst Y-PSNR gain over bicubic, median kernel error, seconds
per image. A row is one setting, written to --results as it comes
(`benchmarks/rows.py`): the same command run again keeps the settings measured
and measures the rest; the .md beside it is made from all the rows at the end.

  python -m benchmarks.spectral_tuning --flagfile=flags/best_x2.flags \
      --setting= --setting='refine_prior=1e-4' \
      --setting='spectral_band_hi=0.3;spectral_phases=4' \
      --results=benchmarks/results/spectral_tuning_x2.json
"""

import os
import time

from absl import flags
import numpy as np

from benchmarks import datasets
from benchmarks import degradations
from benchmarks import quality
from benchmarks import rows as rows_lib
from benchmarks import srstage
from ike_jax import config
from ike_jax import errors
from ike_jax import estimate
from ike_jax import kernel
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import presets
from ike_jax.estimators import spectral

FLAGS = flags.FLAGS
KERNEL_SEEDS = (0, 1000, 2000)  # added to the image index


def define_flags():
  flags.DEFINE_multi_string('setting', [''], 'Overrides, "a=1;b=2" (repeatable; empty: the flags).')
  flags.DEFINE_string('results', None, 'Where the JSON goes (the .md beside it).')


def cases(scale):
  """(name, uint8 LR, uint8 HR, true kernel) for every tuning image and kernel seed."""
  hr_size = 256 if scale == 2 else 384
  out = []
  for i in datasets.indices(datasets.TUNING_IMAGES):
    name = list(datasets.OFFLINE_IMAGES)[i]
    hr = datasets.center_crop(datasets.OFFLINE_IMAGES[name](), hr_size)
    for seed in KERNEL_SEEDS:
      lr, k, _ = degradations.degrade(hr, 'div2krk', scale, seed + i)
      out.append((f'{name}/{seed + i}', degradations.to_uint8(lr), np.asarray(hr), k))
  return out


def parse_setting(text):
  """'a=1;b=2' -> {flat config field: value text}."""
  over = {}
  for item in filter(None, (t.strip() for t in text.split(';'))):
    key, sep, value = item.partition('=')
    if not sep:
      raise errors.UserError(f'--setting takes name=value items, got {item!r}')
    over[key] = value
  return over


def evaluate(cfg, pairs):
  """Mean / worst gain, median kernel error and s/image of one setting."""
  scale = estimate.training_config(cfg).scale
  gains, errs, t0 = [], [], time.perf_counter()
  for _, lr, hr, k in pairs:
    est = spectral.estimate(lr, cfg)
    kern, origin = postprocess.sr_kernel(est, scale, cfg.scale)
    gains.append(srstage.stage_gain(lr, hr, kern, origin, cfg.post, cfg.scale))
    errs.append(kernel.kernel_error(est['kernel'], k))
  return {'mean_gain': float(np.mean(gains)), 'min_gain': float(np.min(gains)),
          'median_kernel_error': float(np.median(errs)),
          's_per_image': (time.perf_counter() - t0) / len(pairs)}


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  base = presets.config_from_flag_values(FLAGS)
  if base.train.model.generator != 'spectral':
    raise errors.UserError('this sweep is of --generator=spectral')
  pairs = cases(base.scale)
  results = FLAGS.results or os.path.join('benchmarks', 'results',
                                          f'spectral_tuning_x{base.scale}.json')
  configs = {}
  for setting in FLAGS.setting:  # every setting checked before any is measured
    try:
      configs[setting or '(flags)'] = base.replace(**{
          k: _typed(getattr_flat(base, k), v) for k, v in parse_setting(setting).items()})
    except (KeyError, TypeError, ValueError) as err:
      raise errors.UserError(f'--setting {setting!r}: {errors.one_line(err)}') from None
    estimate.check(configs[setting or '(flags)'])
  table = rows_lib.Rows(results, {'cases': [n for n, *_ in pairs], 'config': base.to_dict()},
                        key=lambda r: r['setting'], error=errors.UserError)
  for setting, cfg in configs.items():
    row = table.get(setting)
    kept = row is not None
    if not kept:
      row = dict(setting=setting, **evaluate(cfg, pairs))
      table.add(row)  # written row by row: a rerun resumes
    print(f"{row['setting']:40s} mean {row['mean_gain']:+.2f} dB  worst {row['min_gain']:+.2f}  "
          f"kernel error {row['median_kernel_error']:.4f}  {row['s_per_image']:.1f} s/image"
          f"{'  (kept)' if kept else ''}", flush=True)
  out = table.table
  lines = ['| setting | mean gain (dB) | worst gain (dB) | median kernel error | s/image |',
           '|---|---|---|---|---|']
  lines += [f"| {r['setting']} | {r['mean_gain']:+.2f} | {r['min_gain']:+.2f} | "
            f"{r['median_kernel_error']:.4f} | {r['s_per_image']:.1f} |" for r in out['rows']]
  outputs.write_bytes_atomic(os.path.splitext(results)[0] + '.md', ('\n'.join(lines) + '\n').encode())
  print('\n'.join(lines))
  return 0


def _typed(current, text):
  """`text` as the type of the field's current value."""
  if isinstance(current, bool):
    if text.lower() not in ('true', 'false', '1', '0'):
      raise ValueError(f'expected true or false, got {text!r}')
    return text.lower() in ('true', '1')
  return type(current)(text)


def getattr_flat(cfg, name):
  """The value of a flat config field (`Config.flat_dict`)."""
  flat = config.flat_dict(cfg)
  if name not in flat:
    raise KeyError(f'no config field {name!r}')
  return flat[name]


if __name__ == '__main__':
  presets.define_config_flags(FLAGS)
  define_flags()
  quality.entry(main)
