r"""The paper_x2 training step against the authors' PyTorch code, on one machine.

  python -m benchmarks.side_by_side --torch_src=<the authors' src/ folder> \
      [--variants=fused] [--steps=5] [--repeats=3] [--budget_s=30] \
      [--torch_steps=8] [--torch_warmup=2] [--nocomponents] \
      [--results=benchmarks/results/side_by_side_<host>.json]

Our rows are `benchmarks.speed` rows of `flags/paper_x2.flags` (each in its own
subprocess); then the authors' `train.py` runs (through
`benchmarks/torch_ref/record.py`, which times each iteration) at the same
settings, their README's x2 command line, on the same image and with as many
threads as cores. The ratio compares two measurements of one sitting: run the
script several times and take the median ratio. `--torch_src` is a copy of
their `src/` (never committed here); it needs torch, opencv-python-headless and
tqdm (not in requirements.txt). The JSON and a Markdown table beside it
(`.md`) are rewritten after every row.
"""

import json
import os
import subprocess
import sys

from absl import flags
import numpy as np

from benchmarks import speed
from benchmarks import timing
from ike_jax import cli
from ike_jax import errors

FLAGS = flags.FLAGS
# The authors' PyTorch code at the settings of `flags/paper_x2.flags`: their
# README's x2 command line.
TORCH_PRESET = 'paper_x2'
TORCH_ARGS = ('--z_up', 'ZSSR', '--INN', '--test', '--tri_channel', '--use_res', '--linear',
              '--other_loss', 'interpolation_loss', 'cycle_consistency', '--scale_factor',
              '0.5', '--INN_down', 'space2depth')
TORCH_CROP = 128  # their Config's input_crop_size; train.py has no flag for it
TORCH_RECORDER = os.path.join(timing.ROOT, 'benchmarks', 'torch_ref', 'record.py')


def torch_row(src, steps=8, warmup=2, timeout=3600, log=print):
  """Times the authors' PyTorch `train.py` at paper_x2 settings, in a subprocess.

  `src` is a copy of their `src/` folder (outside this repository); the image
  is the one the paper_x2 row trains on. Returns the median and IQR of the
  per-iteration seconds after `warmup` iterations (`record.py`'s STEP_TIMES).
  """
  import tempfile  # pylint: disable=g-import-not-at-top
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  src = os.path.abspath(src)
  if not os.path.isfile(os.path.join(src, 'train.py')):
    return {'error': f'--torch_src={src} has no train.py (give their src/ folder)'}
  with tempfile.TemporaryDirectory() as tmp:
    os.makedirs(os.path.join(tmp, 'in'))
    iio.imwrite(os.path.join(tmp, 'in', 'sample.png'), timing.sample_image(TORCH_CROP))
    times = os.path.join(tmp, 'times.json')
    env = dict(os.environ, STEP_TIMES=times)
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count()))
    cmd = [sys.executable, TORCH_RECORDER, src, '0', '-i', os.path.join(tmp, 'in'),
           '-e', os.path.join(tmp, 'in'), '-o', os.path.join(tmp, 'out'),
           '--max_iters', str(steps + warmup)] + list(TORCH_ARGS)
    log('pytorch: ' + ' '.join(cmd[1:]))
    try:
      proc = subprocess.run(cmd, cwd=timing.ROOT, env=env, timeout=timeout, check=False,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired:
      return {'error': f'timed out after {timeout} s'}
    if not os.path.isfile(times):
      log(proc.stdout[-2000:])
      return {'error': f'exit status {proc.returncode}, no step times'}
    with open(times) as f:
      rec = json.load(f)
  step = np.asarray(rec['step_s'][warmup:], np.float64)
  if step.size == 0:
    return {'error': f'{len(rec["step_s"])} iterations recorded, none after the warm-up'}
  q1, q3 = np.percentile(step, [25, 75])
  return {'preset': TORCH_PRESET, 'variant': 'pytorch', 'crop': TORCH_CROP, 'warmup': warmup,
          'step_s': float(np.median(step)), 'step_iqr_s': float(q3 - q1),
          'timed_steps': int(step.size), 'all_step_s': rec['step_s'],
          'torch_version': rec['torch_version'], 'threads': rec['threads'],
          'exit_status': proc.returncode}


def torch_speedup(row, torch_s_per_step):
  """PyTorch's s/step over ours, for un-overridden paper_x2 rows only."""
  if (not torch_s_per_step or row.get('preset') != TORCH_PRESET or row.get('overridden')
      or row.get('variant') == 'pytorch' or 'step_s' not in row):
    return None
  return torch_s_per_step / row['step_s']


def torch_step_s(report):
  """The PyTorch row's s/step measured in this report's run, or None."""
  row = report.get('torch')
  return None if not row or 'error' in row else row['step_s']


def markdown(report):
  fmt = timing.fmt_value
  peak = report.get('peak') or {}
  peak_g = peak.get('peak_gflops_per_s')
  torch_s = torch_step_s(report)
  lines = [timing.title('The paper_x2 step against the authors\' PyTorch code',
                        report['machine']), '']
  lines += speed.peak_lines(peak)
  lines += ['| preset | variant | compile s | s/step (IQR) | timed steps | GFLOP/step '
            '| GFLOP/s | % of peak | vs PyTorch |', '|---|---|---|---|---|---|---|---|---|']
  for r in report['rows']:
    if 'error' in r:
      lines.append(f'| {r["preset"]} | {r["variant"]} | error: {r["error"]} |')
      continue
    gflop, rate, frac = timing.flop_cells(r, peak_g)
    lines.append(
        f'| {r["preset"]} | {r["variant"]} | {r["compile_s"]:.1f} '
        f'| {r["step_s"]:.4g} ({r["step_iqr_s"]:.2g}) | {r.get("timed_steps", "—")} '
        f'| {fmt(gflop)} | {fmt(rate)} | {fmt(frac, "{:.1f}")} '
        f'| {fmt(torch_speedup(r, torch_s), "{:.1f}x")} |')
  t = report.get('torch')
  if t and 'error' in t:
    lines.append(f'| {TORCH_PRESET} | pytorch | error: {t["error"]} |')
  elif t:
    lines.append(f'| {TORCH_PRESET} | pytorch (torch {t["torch_version"]}, {t["threads"]} '
                 f'threads) | — | {t["step_s"]:.4g} ({t["step_iqr_s"]:.2g}) '
                 f'| {t["timed_steps"]} | — | — | — | 1.0x |')
  lines += ['', 'vs PyTorch: the authors\' PyTorch code\'s s/step (their `train.py` at '
            'paper_x2 settings on the same image, each iteration from its crop to its learner '
            f'update, after the first {(t or {}).get("warmup", "few")}) over ours; '
            f'{TORCH_PRESET} rows without overrides only.']
  for r in report['rows']:
    lines += speed.component_lines(r)
  return '\n'.join(lines) + '\n'


def write_report(report, path):
  return timing.write_report(report, path, markdown)


def define_flags(flag_values=FLAGS):
  kw = dict(flag_values=flag_values)
  timing.define_common_flags(flag_values)
  flags.DEFINE_string('torch_src', None, 'The authors\' PyTorch `src/` folder (a copy outside '
                      'this repository).', **kw)
  flags.DEFINE_list('variants', ['fused'], 'Our paper_x2 rows: any of '
                    + ', '.join(speed.VARIANTS) + '.', **kw)
  flags.DEFINE_bool('components', False, 'Also time G, U, D and UD apart.', **kw)
  flags.DEFINE_bool('peak', True, 'Also measure the machine\'s peak (benchmarks.speed).', **kw)
  flags.DEFINE_integer('torch_steps', 8, 'Timed PyTorch iterations.', **kw)
  flags.DEFINE_integer('torch_warmup', 2, 'Untimed first PyTorch iterations.', **kw)
  flags.mark_flag_as_required('torch_src', flag_values=flag_values)


def main(argv):
  del argv
  speed.check_variants(FLAGS.variants)
  if not os.path.isfile(os.path.join(FLAGS.torch_src, 'train.py')):  # before timing our side
    raise errors.UserError(f'--torch_src={FLAGS.torch_src} has no train.py (give their src/ '
                           'folder)')
  log = lambda m: print(m, flush=True)
  timing_args = [f'--steps={FLAGS.steps}', f'--warmup={FLAGS.warmup}',
                 f'--repeats={FLAGS.repeats}', f'--budget_s={FLAGS.budget_s}']
  report = {'machine': {}, 'settings': {'steps': FLAGS.steps, 'warmup': FLAGS.warmup,
                                        'repeats': FLAGS.repeats, 'budget_s': FLAGS.budget_s,
                                        'torch_src': FLAGS.torch_src},
            'peak': {'error': 'not measured'}, 'rows': []}
  if FLAGS.peak:
    log('peak: matmul and conv')
    report['peak'] = timing.run_child(['benchmarks.speed', '--_one=peak'] + timing_args,
                                      FLAGS.row_timeout, log)
    report['machine'] = report['peak'].pop('machine', None) or report['machine']
  path = FLAGS.results or timing.default_results('side_by_side')
  comps = '--components' if FLAGS.components else '--nocomponents'
  for variant in FLAGS.variants:
    log(f'{TORCH_PRESET} {variant}')
    row = timing.run_child(['benchmarks.speed', f'--_one={TORCH_PRESET}:{variant}', comps]
                           + timing_args, FLAGS.row_timeout, log)
    report['machine'] = row.pop('machine', None) or report['machine']
    report['rows'].append({'preset': TORCH_PRESET, 'variant': variant, **row})
    write_report(report, path)  # row by row: a timeout loses nothing measured
  log(f'{TORCH_PRESET} pytorch ({FLAGS.torch_src})')
  report['torch'] = torch_row(FLAGS.torch_src, FLAGS.torch_steps, FLAGS.torch_warmup,
                              FLAGS.row_timeout, log)
  failed = any('error' in r for r in report['rows'] + [report['torch']])
  return timing.finish(report, path, markdown, log, failed)


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
