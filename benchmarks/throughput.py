r"""Images per hour against the number of images trained together.

  python -m benchmarks.throughput [--flagfile=flags/demo.flags] \
      [--batch_sizes=1,2,4,8] [--steps=N] [--warmup=K] [--repeats=R] \
      [--budget_s=S] [--crop=C] [--blocks=1] [--pipeline --lr_side=128] \
      [--results=benchmarks/results/throughput_<host>.json]

Every `Config` field is a flag, as in `ike_jax.main`; without `--flagfile` the
demo preset is read first.

B images (scikit-image's bundled photos, centre-cropped or mirror-tiled to
`max(2 crop, 128)` px) are stacked and trained by one vmapped step. Each B runs
in its own subprocess (`--_one=B`), timed by `benchmarks.speed.measure_train_step`.
Per image-step time = median step time / B; images per hour =
3600 B / (step time x the preset's iterations), compile time reported apart
(and once more amortised over one run). With several devices (an accelerator
host, or `XLA_FLAGS=--xla_force_host_platform_device_count=4` on a CPU) the
images are split over them as `ike_jax.main` splits them.

`--pipeline` times what a user runs instead of one step: the whole CLI path
(`pipeline.super_resolve_files`: load, estimate, SR, post-process, write) on B
LR images of `--lr_side` px, once cold (compiles included) and once more into
a fresh folder (warm). Use it for presets whose kernel estimate does not train
(best_x2, best_x4), or for a whole training run.

The JSON and a Markdown table beside it (`.md`) are rewritten after every row.
"""

import os
import sys

from absl import flags
import numpy as np

from benchmarks import checks
from benchmarks import speed
from benchmarks import timing
from ike_jax import cli
from ike_jax import errors
from ike_jax import presets

FLAGS = flags.FLAGS
DEFAULT_FLAGFILE = os.path.join(timing.FLAGS_DIR, 'demo.flags')


def throughput_row(cfg, batch, *, steps=10, warmup=2, repeats=3, log=None, budget_s=None):
  """Measures training `batch` images at once with `cfg`, in this process."""
  images = timing.photos(batch, timing.image_side(cfg.train.crop))
  seeds = [cfg.run.seed + i for i in range(batch)]
  row = speed.measure_train_step(cfg, images, seeds, steps, warmup, repeats, log, budget_s)
  step = row['step_s']
  row['per_image_step_s'] = step / batch
  iterations = cfg.run.iterations
  row['images_per_hour'] = 3600.0 * batch / (step * iterations)
  row['images_per_hour_incl_compile'] = 3600.0 * batch / (step * iterations + row['compile_s'])
  if row['flops_per_step'] is not None:
    row['flops_per_image_step'] = row['flops_per_step'] / batch
  return row


def pipeline_row(cfg, batch, lr_side, log=None):
  """Times the CLI path on `batch` LR photos of `lr_side` px, cold then warm."""
  import tempfile  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from ike_jax import pipeline  # pylint: disable=g-import-not-at-top
  log = log or (lambda m: None)
  with tempfile.TemporaryDirectory() as tmp:
    jobs = []
    for k, img in enumerate(timing.photos(batch, lr_side)):
      path = os.path.join(tmp, f'lr_{k:03d}.png')
      iio.imwrite(path, img)
      jobs.append(pipeline.Job(path))
    walls, results = [], None
    for run in ('cold', 'warm'):
      t0 = time.perf_counter()
      results = pipeline.super_resolve_files(jobs, cfg, os.path.join(tmp, run), log=log)
      walls.append(time.perf_counter() - t0)
  stages = {}
  for name in ('estimate_s', 'inference_s', 'post_s', 'compile_s', 'train_s'):
    vals = [r['timings'][name] for r in results if name in r.get('timings', {})]
    if vals:
      stages[name] = float(np.mean(vals))
  return {'batch': batch, 'devices': jax.device_count(), 'lr_side': lr_side,
          'cold_s': walls[0], 'warm_s': walls[1], 'per_image_s': walls[1] / batch,
          'images_per_hour': 3600.0 * batch / walls[1],
          'images_per_hour_incl_compile': 3600.0 * batch / walls[0],
          'stages_per_image_s': stages,
          'ok': sum(r.get('status') != 'diverged' for r in results)}


def pipeline_markdown(report):
  s = report['settings']
  lines = [timing.title('Throughput, whole CLI path', report['machine']), '',
           f'Preset {s["flagfile"]}, x{s["scale"]}, LR {s["lr_side"]} px; each B run twice '
           '(cold: compiles included; warm: a fresh output folder).', '',
           '| images (B) | cold s | warm s | s per image (warm) | images/hour '
           '| images/hour incl. compile | estimate s/image | SR s/image | post s/image |',
           '|---|---|---|---|---|---|---|---|---|']
  fmt = timing.fmt_value
  for r in report['rows']:
    if 'error' in r:
      lines.append(f'| {r["batch"]} | error: {r["error"]} |')
      continue
    st = r['stages_per_image_s']
    lines.append(f'| {r["batch"]} | {r["cold_s"]:.1f} | {r["warm_s"]:.1f} '
                 f'| {r["per_image_s"]:.3g} | {r["images_per_hour"]:.3g} '
                 f'| {r["images_per_hour_incl_compile"]:.3g} | {fmt(st.get("estimate_s"))} '
                 f'| {fmt(st.get("inference_s"))} | {fmt(st.get("post_s"))} |')
  return '\n'.join(lines) + '\n'


def markdown(report):
  s = report['settings']
  lines = [timing.title('Throughput', report['machine']), '',
           f'Preset {s["flagfile"]} (crop {s["crop_used"]}, x{s["scale"]}, '
           f'{s["iterations"]} iterations, {"fused" if s["fused"] else "unfused"}); '
           f'1 compiling + {s["warmup"]} warm-up + {s["repeats"]} x (up to) {s["steps"]} timed '
           'steps.', '',
           '| images (B) | compile s | s/step (IQR) | timed steps | s per image-step | images/hour '
           '| images/hour incl. compile | x vs B=1 | GFLOP/image-step | memory MiB |',
           '|---|---|---|---|---|---|---|---|---|---|']
  fmt = timing.fmt_value
  base = next((r['images_per_hour'] for r in report['rows']
               if r.get('batch') == 1 and 'error' not in r), None)
  for r in report['rows']:
    if 'error' in r:
      lines.append(f'| {r["batch"]} | error: {r["error"]} |')
      continue
    gf = r.get('flops_per_image_step')
    lines.append(
        f'| {r["batch"]} | {r["compile_s"]:.1f} | {r["step_s"]:.4g} ({r["step_iqr_s"]:.2g}) '
        f'| {r.get("timed_steps", "—")} | {r["per_image_step_s"]:.4g} '
        f'| {r["images_per_hour"]:.3g} | {r["images_per_hour_incl_compile"]:.3g} '
        f'| {fmt(None if not base else r["images_per_hour"] / base, "{:.2f}")} '
        f'| {fmt(None if gf is None else gf / 1e9)} | {r["memory_mib"]:.0f} |')
  sources = sorted({r['memory_source'] for r in report['rows'] if 'memory_source' in r})
  lines += ['', 'Memory: ' + '; '.join(sources) + ' (on CPU this includes XLA\'s compile-time '
            'memory; the JSON has the compiled step\'s buffer sizes).']
  return '\n'.join(lines) + '\n'


def write_report(report, path):
  to_markdown = pipeline_markdown if report['settings'].get('pipeline') else markdown
  return timing.write_report(report, path, to_markdown)


def define_flags(flag_values=FLAGS):
  kw = dict(flag_values=flag_values)
  timing.define_common_flags(flag_values)
  presets.define_config_flags(flag_values)
  flags.DEFINE_list('batch_sizes', ['1', '2', '4', '8'], 'Images trained together.', **kw)
  flags.DEFINE_bool('pipeline', False, 'Time the whole CLI path (cold and warm) on B LR '
                    'images instead of one training step.', **kw)
  flags.DEFINE_integer('lr_side', 128, 'LR side of the --pipeline images.', **kw)


def with_default_flagfile(argv):
  """`argv` with `--flagfile=<demo preset>` first unless it names a flagfile."""
  if any(a.lstrip('-').startswith('flagfile') for a in argv[1:]):
    return list(argv)
  return [argv[0], '--flagfile=' + DEFAULT_FLAGFILE] + list(argv[1:])


def _flagfiles(argv):
  return [a.split('=', 1)[1] for a in argv[1:] if a.lstrip('-').startswith('flagfile=')]


def main(argv):
  del argv
  cfg = presets.config_from_flag_values(FLAGS)
  if FLAGS._one:  # pylint: disable=protected-access
    log = lambda m: print(m, file=sys.stderr, flush=True)
    batch = int(FLAGS._one)  # pylint: disable=protected-access
    if FLAGS.pipeline:
      row = pipeline_row(cfg, batch, FLAGS.lr_side, log=log)
    else:
      row = throughput_row(cfg, batch, steps=FLAGS.steps, warmup=FLAGS.warmup,
                           repeats=FLAGS.repeats, log=log, budget_s=FLAGS.budget_s)
    row['machine'] = timing.machine_info()
    timing.emit(row)
    return 0
  sizes = checks.numbers('batch_sizes', FLAGS.batch_sizes, int)
  if not sizes:
    raise errors.UserError('--batch_sizes names no batch size')
  args = [a for a in _ARGV[1:] if not a.startswith(('--_one', '--results'))]
  rows = []
  report = {
      'machine': {},
      'settings': {'flagfile': ','.join(_flagfiles(_ARGV)), 'crop_used': cfg.train.crop,
                   'scale': cfg.scale, 'iterations': cfg.run.iterations,
                   'fused': cfg.train.fused, 'pipeline': FLAGS.pipeline,
                   'lr_side': FLAGS.lr_side,
                   'steps': FLAGS.steps, 'warmup': FLAGS.warmup, 'repeats': FLAGS.repeats,
                   'budget_s': FLAGS.budget_s, 'argv': _ARGV[1:], 'config': cfg.to_dict()},
      'rows': rows,
  }
  path = FLAGS.results or timing.default_results('throughput')
  for b in sizes:
    print(f'B = {b}', flush=True)
    row = timing.run_child(['benchmarks.throughput', f'--_one={b}'] + args, FLAGS.row_timeout)
    report['machine'] = row.pop('machine', None) or report['machine']
    rows.append({'batch': b, **row})
    if 'error' in row:
      print(f'  error: {row["error"]}', flush=True)
    elif FLAGS.pipeline:
      print(f'  cold {row["cold_s"]:.1f} s, warm {row["warm_s"]:.1f} s, '
            f'{row["images_per_hour"]:.3g} images/hour', flush=True)
    else:
      print(f'  {row["step_s"]:.4g} s/step, {row["images_per_hour"]:.3g} images/hour', flush=True)
    paths, text = write_report(report, path)  # row by row: a timeout loses nothing measured
  print(text)
  print(f'wrote {paths["json"]} and {paths["md"]}')
  return 1 if any('error' in r for r in rows) else 0


_ARGV = sys.argv

if __name__ == '__main__':
  define_flags()
  _ARGV = with_default_flagfile(sys.argv)
  cli.run_app(main, argv=_ARGV)
