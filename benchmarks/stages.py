r"""Presets that train nothing (best_x2, best_x4), stage by stage, on one LR photo.

  python -m benchmarks.stages [--presets=best_x2,best_x4] [--lr_side=0] \
      [--repeats=3] [--results=benchmarks/results/stages_<host>.json]

Times, as the pipeline runs them (median over `--repeats` after a first call
that compiles), the kernel estimate, the bicubic start and the SR stage (the
preset's `--refine_solver`, on the whole image), with XLA's FLOP count of the
SR stage (the only compiled stage) and the
machine's peak (`benchmarks.speed`'s matmul and convolution) to set it against.
Each preset runs in its own subprocess (`--_one=preset`). The LR photo is one of
the offline set, `--lr_side` px (0: 128 at x2, 96 at x4, the report images'
sizes). The JSON and a Markdown table beside it (`.md`) are rewritten after
every row.
"""

import sys
import time

from absl import flags
import numpy as np

from benchmarks import speed
from benchmarks import timing
from ike_jax import cli
from ike_jax import errors

FLAGS = flags.FLAGS
REPORT_LR_SIDE = {2: 128, 4: 96}  # LR px of the report images


def stage_row(preset, lr_side=0, repeats=3, log=None):
  """Stage by stage, one LR photo, for a preset whose estimator does not train.

  Times (median over `repeats`, after a compiling call) the kernel estimate,
  the bicubic start and the SR stage as the pipeline runs them, with XLA's
  FLOP count of the SR stage.
  Raises:
    ValueError: for a preset that trains, or one without --refine.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ike_jax import data  # pylint: disable=g-import-not-at-top
  from ike_jax import estimate  # pylint: disable=g-import-not-at-top
  from ike_jax import estimators  # pylint: disable=g-import-not-at-top
  from ike_jax import kernel  # pylint: disable=g-import-not-at-top
  from ike_jax import postprocess  # pylint: disable=g-import-not-at-top
  from ike_jax import refine  # pylint: disable=g-import-not-at-top
  from ike_jax import solve  # pylint: disable=g-import-not-at-top
  from ike_jax import tiling  # pylint: disable=g-import-not-at-top
  log = log or (lambda m: None)
  cfg = timing.load_config(preset)
  lr_side = lr_side or REPORT_LR_SIDE[cfg.scale]
  est_mod = estimators.of(cfg)
  if est_mod.TRAINS or not cfg.post.refine:
    raise ValueError(f'{preset}: stage rows are for non-training presets with --refine')
  lr = timing.photos(1, lr_side)[0]
  s, post = cfg.scale, cfg.post
  est = est_mod.estimate(lr, cfg)
  k, origin = postprocess.sr_kernel(est, estimate.training_config(cfg).scale, s,
                                    post.lever_kernel_taps)
  sr0 = jnp.asarray(estimate.bicubic_start(lr, s))
  lr_m = jnp.asarray(data.to_model(lr))
  stages = {'estimate': lambda: est_mod.estimate(lr, cfg),
            'bicubic': lambda: estimate.bicubic_start(lr, s),
            'sr stage': lambda: postprocess.apply(sr0, lr_m, k, origin, post, s)}
  rows = []
  for name, fn in stages.items():
    log(f'stage {name}')
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    t = timing.time_calls(fn, 1, 0, repeats)
    rows.append({'name': name, 'first_s': first, 's': t['median_s'], 'iqr_s': t['iqr_s']})
  if post.refine_solver == 'fourier':
    compiled = solve.solve.lower(lr_m, jnp.asarray(k, jnp.float32), sr0, scale=s,
                                 origin=tuple(origin), **tiling.fourier_settings(post)).compile()
  else:
    compiled = refine._back_project.lower(  # pylint: disable=protected-access
        sr0, lr_m, jnp.asarray(k, jnp.float32), 1.0, post.refine_prior, 3e-2, scale=s,
        origin=kernel.static_origin(k, origin), iterations=post.refine_iterations).compile()
  flops = timing.cost_flops(compiled)
  rows[-1]['flops'] = flops
  rows[-1]['flops_per_s'] = None if flops is None else flops / rows[-1]['s']
  return {'preset': preset, 'lr_side': lr_side, 'scale': s,
          'solver': post.refine_solver, 'kernel_size': int(np.shape(k)[-1]),
          'stages': rows, 'total_s': sum(r['s'] for r in rows)}


def markdown(report):
  fmt = timing.fmt_value
  peak = report.get('peak') or {}
  peak_g = peak.get('peak_gflops_per_s')
  lines = [timing.title('Stages of non-training presets', report['machine']), '']
  lines += speed.peak_lines(peak)
  for r in report['rows']:
    if 'error' in r:
      lines += [f'### {r["preset"]}: error: {r["error"]}', '']
      continue
    lines += [f'### {r["preset"]} (LR {r["lr_side"]} px, x{r["scale"]}, '
              f'{r["kernel_size"]}x{r["kernel_size"]} kernel, {r["solver"]} SR stage)', '',
              '| stage | first call s | s (IQR) | GFLOP | GFLOP/s | % of peak | share |',
              '|---|---|---|---|---|---|---|']
    for st in r['stages']:
      rate = None if st.get('flops_per_s') is None else st['flops_per_s'] / 1e9
      frac = None if rate is None or not peak_g else 100 * rate / peak_g
      gf = None if st.get('flops') is None else st['flops'] / 1e9
      lines.append(f'| {st["name"]} | {st["first_s"]:.3g} | {st["s"]:.3g} ({st["iqr_s"]:.2g}) '
                   f'| {fmt(gf)} | {fmt(rate)} | {fmt(frac, "{:.1f}")} '
                   f'| {100 * st["s"] / r["total_s"]:.0f}% |')
    lines.append('')
  return '\n'.join(lines)


def write_report(report, path):
  return timing.write_report(report, path, markdown)


def define_flags(flag_values=FLAGS):
  kw = dict(flag_values=flag_values)
  timing.define_common_flags(flag_values)
  flags.DEFINE_list('presets', ['best_x2', 'best_x4'], 'Non-training presets with --refine '
                    '(flags/<name>.flags).', **kw)
  flags.DEFINE_integer('lr_side', 0, 'LR side of the photo; 0: 128 at x2, 96 at x4 (the '
                       'report images\' sizes).', **kw)
  flags.DEFINE_bool('peak', True, 'Also measure the machine\'s peak (benchmarks.speed).', **kw)


def main(argv):
  del argv
  log = lambda m: print(m, flush=True)
  if FLAGS._one:  # pylint: disable=protected-access
    row = stage_row(FLAGS._one, FLAGS.lr_side, FLAGS.repeats,  # pylint: disable=protected-access
                    lambda m: print(m, file=sys.stderr, flush=True))
    row['machine'] = timing.machine_info()
    timing.emit(row)
    return 0
  if not FLAGS.presets:
    raise errors.UserError('--presets names no preset')
  for p in FLAGS.presets:
    timing.load_config(p)  # fail early on a missing preset
  report = {'machine': {}, 'settings': {'repeats': FLAGS.repeats, 'lr_side': FLAGS.lr_side},
            'peak': {'error': 'not measured'}, 'rows': []}
  if FLAGS.peak:
    log('peak: matmul and conv')
    report['peak'] = timing.run_child(
        ['benchmarks.speed', '--_one=peak', f'--repeats={FLAGS.repeats}'], FLAGS.row_timeout,
        log)
    report['machine'] = report['peak'].pop('machine', None) or report['machine']
  path = FLAGS.results or timing.default_results('stages')
  for preset in FLAGS.presets:
    log(f'{preset} stages')
    row = timing.run_child(['benchmarks.stages', f'--_one={preset}'] + timing.child_args(sys.argv),
                           FLAGS.row_timeout, log)
    report['machine'] = row.pop('machine', None) or report['machine']
    report['rows'].append({'preset': preset, **row})
    write_report(report, path)  # row by row
  return timing.finish(report, path, markdown, log, any('error' in r for r in report['rows']))


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
