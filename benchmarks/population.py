r"""A population of kernel estimators against single runs, from quality reports.

Both sides are `benchmarks.quality` results on the same images: single runs
over several seeds, and one or more `--population=N` runs (members: seeds
seed..seed+N-1). Per image it prints the single runs' mean, spread (std and
min..max over seeds) of the Y-PSNR gain over bicubic and of the kernel error,
beside each population's; and the wall time per image of each side. Writes
the table as Markdown and the numbers as JSON, never over an existing
--results (a summary of whole reports, made in a moment: nothing to resume).

  python -m benchmarks.quality --flagfile=flags/kernelgan_x2.flags --seeds=3 \
      --first_image=4 --num_images=4 --results=runs/single.json
  python -m benchmarks.quality --flagfile=flags/kernelgan_x2.flags --population=3 \
      --first_image=4 --num_images=4 --results=runs/pop.json
  python -m benchmarks.population --single=runs/single.json --population_results=runs/pop.json \
      --results=benchmarks/results/population_report.json
"""

import os

from absl import flags
import numpy as np

from benchmarks import quality
from benchmarks import rows as rows_lib
from ike_jax import cli
from ike_jax import errors
from ike_jax import outputs

FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run (tests import this module beside others' flags)."""
  flags.DEFINE_string('single', None, 'quality.py results of single runs (several seeds).')
  flags.DEFINE_multi_string('population_results', [], 'quality.py results of --population runs.')
  flags.DEFINE_string('results', None, 'Where the JSON goes (the .md beside it).')


def _per_image(report):
  """{image: {'gain': [per seed], 'kernel_error': [per seed]}} of ok runs."""
  out = {}
  for run in report['per_seed']:
    for img in run['images']:
      if img['status'] != 'ok':
        continue
      row = out.setdefault(img['name'], {'gain': [], 'kernel_error': []})
      row['gain'].append(img['values']['gain_psnr_y'])
      if 'kernel_error' in img['values']:
        row['kernel_error'].append(img['values']['kernel_error'])
  return out


def _wall_per_image(report):
  walls = [run['timings']['wall_s'] / max(len(run['images']), 1) for run in report['per_seed']]
  return float(np.mean(walls))


def _label(report):
  cfg = report['config']
  run = cfg.get('run', {})
  post = cfg.get('post', {})
  return f"population {run.get('population', 1)} ({post.get('consensus', '?')})"


def compare(single, populations):
  """The comparison rows and summary (see the module docstring)."""
  singles = _per_image(single)
  pops = [(_label(p), _per_image(p)) for p in populations]
  rows = []
  for name, s in singles.items():
    row = {'image': name, 'single_gain_mean': float(np.mean(s['gain'])),
           'single_gain_std': float(np.std(s['gain'])),
           'single_gain_min': float(np.min(s['gain'])), 'single_gain_max': float(np.max(s['gain'])),
           'single_kernel_error_mean': float(np.mean(s['kernel_error'])) if s['kernel_error'] else None}
    for label, p in pops:
      if name in p:
        row[f'{label} gain'] = float(np.mean(p[name]['gain']))
        row[f'{label} kernel_error'] = (float(np.mean(p[name]['kernel_error']))
                                        if p[name]['kernel_error'] else None)
    rows.append(row)
  seeds = len(single['per_seed'])
  per_seed_means = [np.mean([img['values']['gain_psnr_y'] for img in run['images']
                             if img['status'] == 'ok']) for run in single['per_seed']]
  summary = {'images': len(rows), 'single_seeds': seeds,
             'single_mean_gain': float(np.mean(per_seed_means)),
             'single_mean_gain_std_over_seeds': float(np.std(per_seed_means)),
             'single_wall_s_per_image': _wall_per_image(single)}
  for (label, _), report in zip(pops, populations):
    summary[f'{label} mean gain'] = float(np.mean([r[f'{label} gain'] for r in rows
                                                  if f'{label} gain' in r]))
    summary[f'{label} wall_s_per_image'] = _wall_per_image(report)
  return rows, summary, [label for label, _ in pops]


def markdown(rows, summary, labels):
  head = ['image', 'single: gain mean ± std (min..max)', 'single: kernel error']
  for label in labels:
    head += [f'{label}: gain', f'{label}: kernel error']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  fmt = lambda v, f: '' if v is None else format(v, f)
  for r in rows:
    cells = [r['image'],
             f"{r['single_gain_mean']:+.2f} ± {r['single_gain_std']:.2f} "
             f"({r['single_gain_min']:+.2f}..{r['single_gain_max']:+.2f})",
             fmt(r['single_kernel_error_mean'], '.4f')]
    for label in labels:
      cells += [fmt(r.get(f'{label} gain'), '+.2f'), fmt(r.get(f'{label} kernel_error'), '.4f')]
    lines.append('| ' + ' | '.join(cells) + ' |')
  mean = ["**mean**", f"{summary['single_mean_gain']:+.2f} ± "
          f"{summary['single_mean_gain_std_over_seeds']:.2f} (std over {summary['single_seeds']} "
          'seeds of the image mean)', '']
  for label in labels:
    mean += [f"{summary[f'{label} mean gain']:+.2f}", '']
  lines.append('| ' + ' | '.join(mean) + ' |')
  walls = [f"single run {summary['single_wall_s_per_image']:.0f} s"] + [
      f"{label} {summary[f'{label} wall_s_per_image']:.0f} s" for label in labels]
  lines += ['', 'Wall time per image (2-core CPU, compile included): ' + ', '.join(walls) + '.']
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS.single or not FLAGS.population_results:
    raise errors.UserError('give --single and at least one --population_results')
  rows_lib.new_file(FLAGS.results, errors.UserError)
  single = quality.load_report(FLAGS.single)
  populations = [quality.load_report(p) for p in FLAGS.population_results]
  rows, summary, labels = compare(single, populations)
  md = markdown(rows, summary, labels)
  print(md)
  if FLAGS.results:
    outputs.write_json(FLAGS.results, {'rows': rows, 'summary': summary,
                                       'single': FLAGS.single,
                                       'population': FLAGS.population_results})
    outputs.write_bytes_atomic(os.path.splitext(FLAGS.results)[0] + '.md', (md + '\n').encode())


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
