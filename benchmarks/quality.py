r"""PSNR/SSIM of IKE and bicubic on a data set, next to the published numbers.

  python -m benchmarks.quality --dataset=offline --flagfile=flags/demo.flags \
      [--scale=2] [--root=DIR] [--num_images=N] [--seeds=N] \
      [--output_dir=runs/quality] [--results=benchmarks/results/quality_x2.json]

Every `Config` field is a flag, as in `ike_jax.main`. Per seed (`--seed`,
`--seed`+1, ...) the whole data set is trained at once (one
`super_resolve_files` call) into `<output_dir>/seed_<seed>/`. Writes the
results JSON, a Markdown table beside it (`.md`) and a bar chart of the
per-image Y-PSNR gain (`_gain.png`). Both evaluation protocols
(`docs/method.md`, "Evaluation protocols") are measured: Y = Y channel
(BT.601) with a border shave of `scale`; RGB = RGB 0-255, no shave. The
published figures listed beside ours are those of `docs/method.md`,
"Published figures", each with where it appears.
"""

import json
import math
import os
import sys
import time

from absl import flags
import jax
import numpy as np

from benchmarks import datasets
from benchmarks import plots
from ike_jax import cli
from ike_jax import errors
from ike_jax import outputs
from ike_jax import presets

FLAGS = flags.FLAGS

PROTOCOLS = {
    'y': 'Y channel (ITU-R BT.601), border shave = scale (the usual SR protocol)',
    'rgb': 'RGB 0-255, no border shave (what the PyTorch IKE code prints)',
}
METRICS = ('psnr_y', 'ssim_y', 'psnr_rgb', 'ssim_rgb')

_KERNELGAN = 'KernelGAN paper, Table 1, as quoted in the DAN README'
_KERNELGAN_UNCHECKED = 'KernelGAN paper, Table 1 (widely re-quoted, not checked)'
_DIV2KRK_PROTOCOL = 'Y, shave = scale'
IKE_PAGE = 'IKE project page, ablation table'

# The IKE project page's ablation (DIV2K Track 2, x2), one row per preset.
IKE_ABLATION = (
    dict(preset='ablation_1_none', energy=False, tri_channel=False,
         bicubic_residual=False, csr=False, inter=False, psnr=9.375, ssim=0.1326),
    dict(preset='ablation_2_energy', energy=True, tri_channel=False,
         bicubic_residual=False, csr=False, inter=False, psnr=24.333, ssim=0.6412),
    dict(preset='ablation_3_tri', energy=True, tri_channel=True,
         bicubic_residual=False, csr=False, inter=False, psnr=24.589, ssim=0.6613),
    dict(preset='ablation_4_residual', energy=True, tri_channel=True,
         bicubic_residual=True, csr=False, inter=False, psnr=25.003, ssim=0.6975),
    dict(preset='ablation_5_csr', energy=True, tri_channel=True,
         bicubic_residual=True, csr=True, inter=False, psnr=25.122, ssim=0.7128),
    dict(preset='ablation_6_full', energy=True, tri_channel=True,
         bicubic_residual=True, csr=True, inter=True, psnr=25.476, ssim=0.7297),
)
SWITCHES = (('energy', 'L_energy'), ('tri_channel', 'tri-channel'),
            ('bicubic_residual', 'bicubic residual'), ('csr', 'L_CSR^bwd'),
            ('inter', 'L_inter'))


def _ablation_method(row):
  on = [label for key, label in SWITCHES if row[key]]
  return 'IKE ablation: ' + (' + '.join(on) if on else 'none of the five')


# Published figures (`docs/method.md`, "Published figures"), each with where it appears.
REPORTED = (
    dict(method='KernelGAN+ZSSR', dataset='DIV2KRK', scale=2, psnr=30.36,
         ssim=0.8669, protocol=_DIV2KRK_PROTOCOL, source=_KERNELGAN),
    dict(method='KernelGAN+ZSSR', dataset='DIV2KRK', scale=4, psnr=26.81,
         ssim=0.7316, protocol=_DIV2KRK_PROTOCOL, source=_KERNELGAN),
    dict(method='Bicubic', dataset='DIV2KRK', scale=2, psnr=28.73,
         ssim=0.8040, protocol=_DIV2KRK_PROTOCOL, source=_KERNELGAN_UNCHECKED),
    dict(method='Bicubic', dataset='DIV2KRK', scale=4, psnr=25.33,
         ssim=0.6795, protocol=_DIV2KRK_PROTOCOL, source=_KERNELGAN_UNCHECKED),
    dict(method='ZSSR', dataset='DIV2KRK', scale=2, psnr=29.10,
         ssim=0.8215, protocol=_DIV2KRK_PROTOCOL, source=_KERNELGAN_UNCHECKED),
    dict(method='ZSSR', dataset='DIV2KRK', scale=4, psnr=25.61,
         ssim=0.6911, protocol=_DIV2KRK_PROTOCOL, source=_KERNELGAN_UNCHECKED),
    dict(method='DualSR', dataset='DIV2KRK', scale=2, psnr=30.92,
         ssim=0.8728, protocol=_DIV2KRK_PROTOCOL, source='DualSR README'),
    # Circulates beside the DualSR README figure without a source of its own.
    dict(method='DualSR', dataset='DIV2K Track 2 (validation)', scale=2,
         psnr=28.82, ssim=0.8045, protocol='not stated',
         source='unverified: no source named (listed with the DualSR README figure)'),
) + tuple(
    dict(method=_ablation_method(row), dataset='DIV2K Track 2', scale=2,
         psnr=row['psnr'], ssim=row['ssim'],
         protocol='not stated (the IKE code: RGB, no shave)', source=IKE_PAGE)
    for row in IKE_ABLATION)

# (key, header, format) of the measured columns; kernel error only if present.
COLUMNS = (
    ('ike_psnr_y', 'IKE PSNR Y', '.2f'),
    ('ike_ssim_y', 'IKE SSIM Y', '.4f'),
    ('bicubic_psnr_y', 'bicubic PSNR Y', '.2f'),
    ('bicubic_ssim_y', 'bicubic SSIM Y', '.4f'),
    ('gain_psnr_y', 'gain PSNR Y', '+.2f'),
    ('ike_psnr_rgb', 'IKE PSNR RGB', '.2f'),
    ('ike_ssim_rgb', 'IKE SSIM RGB', '.4f'),
    ('bicubic_psnr_rgb', 'bicubic PSNR RGB', '.2f'),
    ('bicubic_ssim_rgb', 'bicubic SSIM RGB', '.4f'),
)


def _is_number(v):
  return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)


def config_value(cfg_dict, name):
  """Field `name` of a config dict: nested (`Config.to_dict()`) or flat (older
  results); None if absent. Field names are unique across the groups."""
  if name in cfg_dict:
    return cfg_dict[name]
  for value in cfg_dict.values():
    if isinstance(value, dict):
      found = config_value(value, name)
      if found is not None:
        return found
  return None


def flat_metrics(result):
  """One image's result dict as {'ike_psnr_y': ..., 'gain_psnr_y': ...}.

  The SR image's scores are under result['metrics']['sr'] ('ike' in results
  written before the rename); the columns keep their 'ike_' names.
  """
  values = {}
  if result.get('status') == 'ok' and 'metrics' in result:
    metrics = result['metrics']
    for who, key_in in (('ike', 'sr' if 'sr' in metrics else 'ike'), ('bicubic', 'bicubic')):
      for key in METRICS:
        values[f'{who}_{key}'] = float(metrics[key_in][key])
    values['gain_psnr_y'] = values['ike_psnr_y'] - values['bicubic_psnr_y']
  if result.get('status') == 'ok' and _is_number(result.get('self_check')):
    values['self_check'] = float(result['self_check'])
  if result.get('status') == 'ok':
    error = result.get('kernel_error', result.get('metrics', {}).get('kernel_error'))
    if _is_number(error):
      values['kernel_error'] = float(error)
    elif isinstance(error, dict):
      values.update({f'kernel_error_{k}': float(v) for k, v in error.items()
                     if _is_number(v)})
  return values


def mean_std(values):
  """Mean and standard deviation (sample, ddof=1; 0 for one value)."""
  v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
  if not v.size:
    return float('nan'), float('nan')
  return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def summarize(names, per_seed_values):
  """Per image and overall mean ± std over seeds.

  Args:
    names: image names.
    per_seed_values: per seed, a list (one per image) of `flat_metrics` dicts.
  Returns:
    (images, mean): images is a list of {'name', 'mean', 'std', 'seeds'};
    mean is {'mean', 'std'} over seeds of the per-seed mean over images.
  """
  keys = sorted({k for seed in per_seed_values for img in seed for k in img})
  images = []
  for i, name in enumerate(names):
    row = {'name': name, 'mean': {}, 'std': {}, 'seeds': 0}
    row['seeds'] = sum(bool(seed[i]) for seed in per_seed_values)
    for key in keys:
      row['mean'][key], row['std'][key] = mean_std(
          [seed[i].get(key) for seed in per_seed_values])
    images.append(row)
  overall = {'mean': {}, 'std': {}}
  for key in keys:
    per_seed = [mean_std([img.get(key) for img in seed])[0] for seed in per_seed_values]
    overall['mean'][key], overall['std'][key] = mean_std(per_seed)
  return images, overall


def _timings(results, wall_s, num_images):
  ok = [r for r in results if r.get('status') == 'ok' and 'timings' in r]
  t = ok[0]['timings'] if ok else {}
  step_s = t.get('step_s', float('nan'))
  return {
      'wall_s': wall_s,
      'compile_s': t.get('compile_s', float('nan')),
      'train_s': t.get('total_s', float('nan')),
      'step_s': step_s,                              # one step, all images
      'step_s_per_image': step_s / max(num_images, 1),
      'inference_s': sum(r['timings'].get('inference_s', 0.0) for r in ok),
      'post_s': sum(r['timings'].get('post_s', 0.0) for r in ok),  # ZSSR / back-projection
  }


def _device():
  import jax  # pylint: disable=g-import-not-at-top
  d = jax.devices()[0]
  return f'{d.platform}: {getattr(d, "device_kind", d)}'


def measure(cfg, samples, output_dir, *, seeds=1, overwrite=False, batch_size=0, log=print,
            dataset=None):
  """Super-resolves `samples` once per seed and scores them.

  Returns the report dict (what the results JSON holds, less run details).
  """
  from ike_jax import pipeline  # pylint: disable=g-import-not-at-top  (JAX is slow to import)
  from ike_jax import estimate  # pylint: disable=g-import-not-at-top
  if seeds < 1:
    raise errors.UserError(f'--seeds must be positive, got {seeds}')
  if not samples:
    raise errors.UserError('the data set has no images')
  if not any(s.hr_path for s in samples):
    log('warning: no image has a ground-truth HR image; no PSNR/SSIM can be measured')
  jobs = [pipeline.Job(s.lr_path, s.hr_path, s.kernel_path) for s in samples]
  names = [s.name for s in samples]
  per_seed = []
  for seed in range(cfg.run.seed, cfg.run.seed + seeds):
    folder = os.path.join(output_dir, f'seed_{seed}')
    log(f'seed {seed}: {len(jobs)} images -> {folder}')
    t0 = time.perf_counter()
    results = pipeline.super_resolve_files(
        jobs, cfg.replace(seed=seed), folder,
        pipeline.Options(overwrite=overwrite, batch_size=batch_size), log=log)
    wall = time.perf_counter() - t0
    per_seed.append({
        'seed': seed, 'output_dir': folder,
        'timings': _timings(results, wall, len(jobs)),
        'images': [{'name': n, 'status': r.get('status'), 'values': flat_metrics(r)}
                   for n, r in zip(names, results)],
    })
  images, overall = summarize(
      names, [[img['values'] for img in s['images']] for s in per_seed])
  return {
      'dataset': dataset, 'scale': cfg.scale, 'config': cfg.to_dict(), 'device': _device(),
      'method': estimate.method_label(cfg),
      'seeds': [s['seed'] for s in per_seed], 'protocols': PROTOCOLS,
      'per_seed': per_seed, 'images': images, 'mean': overall,
      'reported': [dict(r) for r in REPORTED],
  }


def fmt(mean, std, number_format, with_std):
  """'25.12', or '25.12 ± 0.03' with `with_std`; '—' for a missing value."""
  if mean is None or not math.isfinite(mean):
    return '—'
  text = format(mean, number_format)
  if with_std and std is not None and math.isfinite(std):
    text += ' ± ' + format(std, number_format.lstrip('+'))
  return text


def md_table(header, rows):
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def _columns(report):
  keys = set(report['mean']['mean'])
  columns = [c for c in COLUMNS if c[0] in keys]
  columns += [(k, k.replace('_', ' '), '.4g') for k in sorted(keys)
              if k.startswith('kernel_error')]
  if 'self_check' in keys:
    columns.append(('self_check', 'self-check (grey levels)', '.3f'))
  return columns


def measured_table(report):
  """Per-image rows and the mean row, both protocols."""
  with_std = len(report['seeds']) > 1
  columns = _columns(report)
  rows = []
  for img in report['images']:
    rows.append([img['name']] + [fmt(img['mean'].get(k), img['std'].get(k), number_format, with_std)
                                 for k, _, number_format in columns])
  m = report['mean']
  rows.append(['**mean**'] + [fmt(m['mean'].get(k), m['std'].get(k), number_format, with_std)
                              for k, _, number_format in columns])
  return md_table(['image'] + [h for _, h, _ in columns], rows)


def reported_table(reported=REPORTED):
  rows = [[r['method'], r['dataset'], f"x{r['scale']}",
           f"{r['psnr']:.2f}" if round(r['psnr'], 2) == r['psnr'] else f"{r['psnr']:.3f}",
           f"{r['ssim']:.4f}", r['protocol'], r['source']] for r in reported]
  return md_table(['method', 'data set', 'scale', 'PSNR (dB)', 'SSIM', 'protocol',
                   'source'], rows)


def timings_table(report):
  rows = []
  for s in report['per_seed']:
    t = s['timings']
    rows.append([s['seed'], f"{t['wall_s']:.1f}", f"{t['compile_s']:.1f}",
                 f"{t['train_s']:.1f}", f"{t['step_s']:.4f}",
                 f"{t['step_s_per_image']:.4f}", f"{t['inference_s']:.1f}",
                 f"{t.get('post_s', float('nan')):.1f}"])
  return md_table(['seed', 'wall (s)', 'compile (s)', 'train (s)', 's/step (all images)',
                   's/step per image', 'inference (s)', 'post-processing (s)'], rows)


def markdown(report):
  cfg = report['config']
  seeds = report['seeds']
  n_bad = sum(img['status'] != 'ok' for s in report['per_seed'] for img in s['images'])
  lines = [
      f"# IKE quality: {report.get('dataset', '?')} x{report['scale']}",
      '',
      f"{len(report['images'])} image(s); crop {config_value(cfg, 'crop')}, "
      f"{config_value(cfg, 'iterations')} iterations, "
      f"seeds {', '.join(map(str, seeds))}; device {report['device']}.",
      f"Y: {PROTOCOLS['y']}. RGB: {PROTOCOLS['rgb']}.",
      f"The 'IKE' columns are the SR image of this config: {report.get('method', 'IKE')}.",
  ]
  if len(seeds) > 1:
    lines.append(f'Cells are mean ± std over {len(seeds)} seeds; the mean row is the mean '
                 'over images, then mean ± std of that over seeds.')
  if n_bad:
    lines.append(f'{n_bad} image run(s) did not finish (diverged); they are left out of means.')
  lines += ['', '## Measured', '', measured_table(report), '',
            '## Timings', '', timings_table(report), '',
            '## Published figures', '',
            'Not measured here (`docs/method.md`, "Published figures"); each row names where '
            'its figure appears. The data sets and protocols differ from the offline '
            'stand-in.', '',
            reported_table(report['reported']), '']
  return '\n'.join(lines)


def load_report(path):
  """A results JSON written by `write_report`; a user error if unreadable."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as err:
    raise errors.UserError(f'{path}: cannot read a quality report ({errors.one_line(err)})') from None


def side_paths(results_path):
  root = os.path.splitext(results_path)[0]
  return {'json': results_path, 'md': root + '.md', 'gain_png': root + '_gain.png'}


def write_report(report, results_path):
  """Writes the JSON, the Markdown and the gain chart; returns their paths."""
  paths = side_paths(results_path)
  try:
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
  except OSError as err:
    raise errors.OutputError(f'cannot create {os.path.dirname(results_path)}: {err}') from err
  outputs.write_json(paths['json'], report)
  outputs.write_bytes_atomic(paths['md'], markdown(report).encode('utf-8'))
  gains = [img['mean'].get('gain_psnr_y', float('nan')) for img in report['images']]
  if any(math.isfinite(g) for g in gains):
    plots.gain_bar_png(paths['gain_png'], [img['name'] for img in report['images']], gains)
  else:
    del paths['gain_png']
  return paths


DATA_FLAGS = ('dataset', 'root', 'first_image', 'num_images', 'hr_size', 'kind', 'split')


def data_flags(flag_values=FLAGS):
  """{flag: value} of the `define_dataset_flags` that pick the images (what a
  results table's rows depend on)."""
  return {name: flag_values[name].value for name in DATA_FLAGS}


def define_dataset_flags(output_dir, flag_values=FLAGS):
  """Flags that pick the data set and where results go (shared with ablation)."""
  kw = dict(flag_values=flag_values)
  flags.DEFINE_string('dataset', 'offline',
                      'div2k, div2krk, realsr or offline (a stand-in built from '
                      "scikit-image's photos).", **kw)
  flags.DEFINE_string('root', None, 'Data set folder; for offline, its cache folder.', **kw)
  flags.DEFINE_integer('num_images', None, 'Use only N images (from --first_image on).', **kw)
  flags.DEFINE_integer('first_image', 0, 'Skip the images before this index (e.g. a tuning '
                       'subset, to report on the rest).', **kw)
  flags.DEFINE_integer('hr_size', 256, 'offline: HR side of each image.', **kw)
  flags.DEFINE_string('kind', 'div2krk', 'offline: the degradation.', **kw)
  flags.DEFINE_string('split', 'valid', 'div2k: train or valid.', **kw)
  flags.DEFINE_integer('seeds', 1, 'Seeds to run (--seed, --seed+1, ...).', **kw)
  flags.DEFINE_string('output_dir', output_dir, 'Where the SR images are written.', **kw)
  flags.DEFINE_string('results', None, 'Results JSON; the .md and _gain.png go beside it.',
                      **kw)
  flags.DEFINE_bool('overwrite', False, 'Replace earlier outputs in --output_dir (quality: '
                    'and an earlier --results).', **kw)
  flags.DEFINE_integer('batch_size', 0, 'Images trained at once (0: all). On a CPU, 1 is '
                       'fastest (see benchmarks/RESULTS.md, throughput).', **kw)


def load_samples(flag_values, scale):
  """The data set the flags name, at `scale`."""
  kw = {}
  name = flag_values.dataset.lower()
  if name == 'offline':
    kw = dict(kind=flag_values.kind, hr_size=flag_values.hr_size,
              num_images=(None if flag_values.num_images is None
                          else flag_values.first_image + flag_values.num_images))
  elif name in ('div2k', 'div2k_track2'):
    kw = dict(split=flag_values.split)
  samples = datasets.load_dataset(flag_values.dataset, flag_values.root, scale, **kw)
  first = flag_values.first_image
  if first < 0:
    raise errors.UserError(f'--first_image must be >= 0, got {first}')
  if flag_values.num_images is not None:
    if flag_values.num_images < 1:
      raise errors.UserError(f'--num_images must be positive, got {flag_values.num_images}')
    return samples[first:first + flag_values.num_images]
  return samples[first:]


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  cfg = presets.config_from_flag_values(FLAGS)
  results = FLAGS.results or os.path.join('benchmarks', 'results', f'quality_x{cfg.scale}.json')
  if os.path.lexists(results) and not FLAGS.overwrite:
    raise errors.UserError(f'--results={results} exists: pass --overwrite to replace it, or '
                           'give another --results')
  samples = load_samples(FLAGS, cfg.scale)
  batch_size = FLAGS.batch_size
  if not batch_size and jax.default_backend() == 'cpu':
    batch_size = 1  # faster per image on a CPU (RESULTS.md, throughput)
  report = measure(cfg, samples, FLAGS.output_dir, seeds=FLAGS.seeds,
                   overwrite=FLAGS.overwrite, batch_size=batch_size,
                   log=lambda m: print(m, flush=True),
                   dataset=FLAGS.dataset)
  report.update(root=FLAGS.root, argv=sys.argv[1:])
  paths = write_report(report, results)
  print(markdown(report))
  print('wrote ' + ', '.join(paths.values()))
  return 0


def entry(main_fn=main):
  """Runs `main_fn` under absl; a user error is one line and exit status 2."""
  cli.run_app(main_fn)


if __name__ == '__main__':
  presets.define_config_flags(FLAGS)
  define_dataset_flags('runs/quality')
  entry()
