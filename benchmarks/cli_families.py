"""Blind SR per degradation family through the command line, as a user runs it.

`blind_families` measures each image in one process, calling the estimate
and the SR stage as the CLI does. This benchmark runs the CLI itself: per
family it writes the photos' LR images and HR crops to a folder
(`families.export`: seed 100 + image index, the crops `blind_families`
measures), runs

  ike-jax --input_dir=<family>/lr --hr_dir=<family>/hr --preset=<preset> \
      --output_dir=<family>/out

in a fresh process and reads the gain over bicubic (Y-PSNR, shave = scale)
and the choice from each image's `<stem>_metrics.json`. Rows go to --results
as they come (a family at a time; run again, the same command resumes, and
the CLI itself skips the images a stopped run finished). With --compare (a
`blind_families` results file of the same scale) each family's table row
also gives that file's mean and the largest difference per image.

  python -m benchmarks.cli_families --scale=2 \
      --compare=benchmarks/results/blind_x2_evidence_report.json \
      --results=benchmarks/results/cli_blind_x2_report.json
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import flags
import numpy as np

from benchmarks import checks
from benchmarks import datasets
from benchmarks import families
from benchmarks import rows as rows_lib
from ike_jax import cli
from ike_jax import errors

FLAGS = flags.FLAGS
# The families of RESULTS.md's main table, "Blind SR per degradation family".
MAIN = ('gaussian', 'shake', 'motion', 'disk', 'mixture', 'none', 'gaussian+noise',
        'shake+noise', 'median', 'bilateral', 'diffusion', 'none+noise')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', list(MAIN), 'Families (`benchmarks.families`).')
  flags.DEFINE_enum('images', 'report', ['report', 'tuning'], 'Which photos.')
  flags.DEFINE_string('preset', None, 'The CLI preset; default blind_x<scale>.')
  flags.DEFINE_string('work_dir', None, "Folder for the families' images and the CLI's "
                      'outputs; default a temporary one, removed at the end.')
  flags.DEFINE_string('compare', None, 'A `blind_families` results file to compare with.')
  flags.DEFINE_bool('linear_light', False, 'Run the CLI with --linear_light (then --compare '
                    'takes a file `blind_families --linear_light` wrote).')
  flags.DEFINE_string('results', None, 'JSON written family by family; an existing one '
                      'measured with the same settings is resumed.')
  checks.define_kernel_set_flags()
  flags.adopt_module_key_flags(checks)  # --help lists them


def run_family(folder, family, s, indices, preset, light=False):
  """{image name: (gain, choice)} of one family through the CLI, and its seconds;
  `light`: with --linear_light (its outputs in `out_light/`)."""
  if not os.path.isdir(os.path.join(folder, 'lr')):
    families.export(folder, family, s, indices)
  out_dir = os.path.join(folder, 'out_light' if light else 'out')
  command = [sys.executable, '-m', 'ike_jax.main', f'--input_dir={folder}/lr',
             f'--hr_dir={folder}/hr', f'--preset={preset}', f'--output_dir={out_dir}',
             *(['--linear_light'] if light else [])]
  path = os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')]))
  env = dict(os.environ, PYTHONPATH=path)
  t0 = time.perf_counter()
  done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
  seconds = time.perf_counter() - t0
  if done.returncode != 0:
    raise errors.UserError(f'{family}: the CLI failed ({done.stderr.strip().splitlines()[-1:]})')
  out = {}
  for name in os.listdir(os.path.join(folder, 'lr')):
    stem = os.path.splitext(name)[0]
    with open(os.path.join(out_dir, f'{stem}_metrics.json'), encoding='utf-8') as f:
      record = json.load(f)
    m = record['metrics']
    out[stem] = (m['sr']['psnr_y'] - m['bicubic']['psnr_y'], record['estimate'].get('choice'))
  return out, seconds


def main(argv):
  del argv
  s = FLAGS.scale
  checks.scale(s)
  checks.families(FLAGS.families)
  kernel_files = checks.kernel_set_paths()
  checks.kernel_sets(FLAGS.families, FLAGS.images, kernel_files)
  preset = FLAGS.preset or f'blind_x{s}'
  ranges = datasets.REPORT_IMAGES if FLAGS.images == 'report' else datasets.TUNING_IMAGES
  indices = list(datasets.indices(ranges))
  names = list(datasets.OFFLINE_IMAGES)
  compare = {}
  if FLAGS.compare:
    try:
      with open(FLAGS.compare, encoding='utf-8') as f:
        other = json.load(f)
      other['rows'] = list(other['rows'])
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise errors.UserError(f'--compare={FLAGS.compare}: not a blind_families results file '
                             f'({e})') from None
    if other.get('scale') != s:
      raise errors.UserError(f'--compare={FLAGS.compare} is at x{other.get("scale")}, not x{s}')
    if bool(other.get('linear_light')) != FLAGS.linear_light:
      raise errors.UserError(f'--compare={FLAGS.compare} was measured '
                             f'{"with" if other.get("linear_light") else "without"} '
                             f'--linear_light, this run {"is" if FLAGS.linear_light else "is not"}')
    compare = {(r['family'], r['image']): r['blind'] for r in other['rows']}
  settings = {'scale': s, 'images': FLAGS.images, 'preset': preset, 'compare': FLAGS.compare,
              'linear_light': FLAGS.linear_light or None,
              **{f'{name}_kernels': path for name, path in kernel_files.items()}}
  table = rows_lib.Rows(FLAGS.results, settings,
                        key=lambda r: (r['family'], r['image']), error=errors.UserError)
  work = FLAGS.work_dir or tempfile.mkdtemp(prefix='cli_families_')
  print('| family | CLI mean (worst) | b/g/c | s per image | compared mean | largest difference |')
  print('|---|---|---|---|---|---|')
  for family in FLAGS.families:
    rows = [table.get((family, names[i])) for i in indices]
    if any(r is None for r in rows):
      measured, seconds = run_family(os.path.join(work, f'x{s}', family.replace('+', '_')),
                                     family, s, indices, preset, FLAGS.linear_light)
      rows = []
      for i in indices:
        gain, choice = measured[names[i]]
        row = {'family': family, 'image': names[i], 'gain': gain, 'choice': choice,
               'seconds_per_image': seconds / len(indices)}
        if (family, names[i]) in compare:
          row['compared'] = compare[(family, names[i])]
        table.add(row)
        rows.append(row)
    gains = [r['gain'] for r in rows]
    counts = '/'.join(str(sum(r['choice'] == c for r in rows))
                      for c in ('blind', 'gaussian', 'bicubic'))
    line = (f"| {family} | {np.mean(gains):+.2f} ({min(gains):+.2f}) | {counts} "
            f"| {rows[0]['seconds_per_image']:.1f} |")
    if all('compared' in r for r in rows):
      diff = max(abs(r['gain'] - r['compared']) for r in rows)
      line += f" {np.mean([r['compared'] for r in rows]):+.2f} | {diff:.3f} |"
    else:
      line += ' | |'
    print(line, flush=True)
  if not FLAGS.work_dir:
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
