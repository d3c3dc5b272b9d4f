r"""The training step per preset, fused and unfused: time, FLOPs, memory, peak.

  python -m benchmarks.speed [--presets=paper_x2,paper_x4,demo] \
      [--variants=fused,unfused] [--steps=N] [--warmup=K] [--repeats=R] \
      [--budget_s=S] [--crop=C] [--set=blocks=1] [--nocomponents] \
      [--results=benchmarks/results/speed_<host>.json]

Every (preset, variant) row runs in its own subprocess (`--_one=preset:variant`,
which prints one JSON line; `benchmarks.timing`), and so does the machine's
peak (a float32 matmul and a convolution, `--_one=peak`). Per row: compile
time (the step compiled ahead of time, `jit(...).lower(...).compile()`; that
one executable is then timed and cost-analysed), the median seconds per step
over `--steps` steps after `--warmup` (each step ended by `block_until_ready`;
median and IQR over `--repeats` repeat medians; `--budget_s` lowers the steps
per repeat when steps are slow, e.g. the unfused paper presets on a CPU), the
step's FLOPs from XLA's cost analysis, achieved FLOP/s against the measured
peak, peak memory (the device's peak bytes where the backend reports them,
else the growth of the process's RSS high-water mark, compilation included)
and a per-component breakdown (G forward/inverse, U, D, UD jitted separately).
Variants ending in `_lax` compute every convolution with `lax.conv`
(`ike_jax.layers.ROUTES` off), to measure what the faster routes gain.

Non-training presets stage by stage: `benchmarks.stages`; the authors'
PyTorch code side by side: `benchmarks.side_by_side`; many images at once:
`benchmarks.throughput`. The JSON and a Markdown table beside it (`.md`) are
rewritten after every row.
"""

import sys
import time

from absl import flags
import numpy as np

from benchmarks import timing
from ike_jax import cli
from ike_jax import errors

FLAGS = flags.FLAGS
VARIANTS = {'fused': ['--fuse_linear'], 'unfused': ['--nofuse_linear'],
            # D, UD and U in bf16 (f32 accumulation): for accelerators.
            'fused_bf16': ['--fuse_linear', '--compute_dtype=bfloat16'],
            # Every convolution through lax.conv (`ike_jax.layers.ROUTES` off):
            # what the 1x1-as-matmul and FFT routes gain.
            'fused_lax': ['--fuse_linear'], 'unfused_lax': ['--nofuse_linear']}


# -------------------------------------------------------------- train step --

def train_config(cfg):
  """The `TrainConfig` a run of `cfg` trains with (the train step's static
  argument): at the estimator's training scale, as the pipeline trains."""
  from ike_jax import estimate  # pylint: disable=g-import-not-at-top
  return estimate.training_config(cfg)


def step_inputs(cfg, images_u8, seeds, n_steps):
  """(states, plans, static train config, step function) for `n_steps` steps.

  With several devices the images are split over them as `loop.fit` does
  (padding copies of the first image make the count divide the devices) and
  the step is `train.sharded_train_step`; otherwise `train.train_step_batched`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ike_jax import crops  # pylint: disable=g-import-not-at-top
  from ike_jax import data  # pylint: disable=g-import-not-at-top
  from ike_jax import loop  # pylint: disable=g-import-not-at-top
  from ike_jax import train  # pylint: disable=g-import-not-at-top
  static = train_config(cfg)
  sharding, n_pad = loop.image_sharding(len(images_u8))
  images_u8 = list(images_u8) + [images_u8[0]] * n_pad
  seeds = list(seeds) + [seeds[0]] * n_pad
  plans = train.stack_plans([crops.plan_crops(im, static.scale, static.crop, n_steps, int(sd))
                             for im, sd in zip(images_u8, seeds)])
  models = loop.pad_images([data.to_model(crops.trim_to_multiple(im, static.scale)[0])
                            for im in images_u8])
  states = train.init_states(jnp.asarray(seeds, jnp.int32), jnp.asarray(models), static)
  step_fn = train.train_step_batched
  if sharding.mesh.size > 1:
    states, plans = jax.device_put((states, plans), sharding)
    step_fn = train.sharded_train_step(sharding.mesh)
  return states, plans, static, step_fn


def step_flops(cfg, batch=1, compiled=True):
  """FLOPs of one batched train step from XLA's cost analysis, nothing run.

  `compiled=False` analyses the lowered (unoptimised) module: no compilation,
  so it takes seconds even for large configs.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ike_jax import crops  # pylint: disable=g-import-not-at-top
  from ike_jax import train  # pylint: disable=g-import-not-at-top
  static = train_config(cfg)
  side = timing.image_side(static.crop)
  states = jax.eval_shape(lambda: train.init_states(
      jnp.zeros((batch,), jnp.int32), jnp.zeros((batch, side, side, 3)), static))
  n = train.PLAN_BUCKET
  plans = crops.CropPlan(g_corners=jnp.zeros((batch, n, 2), jnp.int32),
                         d_corners=jnp.zeros((batch, n, 2), jnp.int32))
  lowered = train.train_step_batched.lower(states, plans, static)
  return timing.cost_flops(lowered.compile() if compiled else lowered)


def measure_train_step(cfg, images_u8, seeds, steps, warmup, repeats, log=None,
                       budget_s=None):
  """Times the batched train step on stacked images; one dict of results.

  The step is compiled once, ahead of time; the same executable gives XLA's
  cost analysis and memory plan and is the one timed.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from ike_jax import train  # pylint: disable=g-import-not-at-top
  log = log or (lambda m: None)
  n_steps = 1 + max(warmup, 0) + max(repeats, 1) * max(steps, 1)
  rss0, t0 = timing.maxrss_bytes(), time.perf_counter()
  states, plans, static, step_fn = step_inputs(cfg, images_u8, seeds, n_steps)
  jax.block_until_ready(states)
  init_s = time.perf_counter() - t0  # init_states' compile included
  log(f'timing {len(seeds)} image(s), crop {static.crop}, x{static.scale}, '
      f'{"fused" if static.fused else "unfused"}: compile + 1 + {warmup} + {repeats} x {steps} '
      'steps')
  t0 = time.perf_counter()
  compiled = step_fn.lower(states, plans, static).compile()
  compile_s = time.perf_counter() - t0
  holder = [states]

  def call():
    holder[0], metrics = compiled(holder[0], plans)  # the static config is baked in
    jax.block_until_ready((holder[0], metrics))

  t = timing.time_calls(call, steps, warmup, repeats, budget_s)
  rss1, dev_peak = timing.maxrss_bytes(), timing.device_peak_bytes()
  finite = bool(np.all(np.asarray(train.params_finite_batched(holder[0]))))
  flops = timing.cost_flops(compiled)
  med = t['median_s']
  out = {
      'batch': len(seeds), 'devices': jax.device_count(), 'crop': static.crop, 'scale': static.scale,
      'blocks': static.model.blocks, 'fused': static.fused, 'iterations': cfg.run.iterations,
      'image_side': int(images_u8[0].shape[0]),
      'compile_s': compile_s, 'first_step_s': t['first_s'], 'init_s': init_s,
      'step_s': med, 'step_iqr_s': t['iqr_s'], 'step_min_s': t['min_s'],
      'repeat_medians_s': t['repeat_medians_s'],
      'timed_steps': t['steps'] * len(t['repeat_medians_s']),
      'steps_per_s': 1.0 / med,
      's_per_3000_steps': 3000 * med, 's_per_image_run': cfg.run.iterations * med,
      'flops_per_step': flops, 'flops_per_s': None if flops is None else flops / med,
      'peak_rss_mib': rss1 / 2**20, 'rss_growth_mib': (rss1 - rss0) / 2**20,
      'device_peak_mib': None if dev_peak is None else dev_peak / 2**20,
      'xla_buffers_mib': {k: v / 2**20 for k, v in timing.xla_memory(compiled).items()},
      'params_finite': finite,
  }
  out['memory_mib'] = (out['device_peak_mib'] if out['device_peak_mib'] is not None
                       else out['rss_growth_mib'])
  out['memory_source'] = ('device peak_bytes_in_use' if out['device_peak_mib'] is not None
                          else 'growth of ru_maxrss from before the states were built')
  return out


# -------------------------------------------------------------- components --

def component_functions(cfg, seed=0):
  """(name, calls per step, note, jitted fn, args) for each piece of a step.

  Calls per step follow `train.train_step` for cfg's losses; the sum of calls x
  time is what the pieces account for when run apart (no cross-piece fusion).
  Parameters come from `train.init_states` (one compile, shared with the step's).
  G is the estimator the config names (`ike_jax.estimators`).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ike_jax import estimators  # pylint: disable=g-import-not-at-top
  from ike_jax import nets  # pylint: disable=g-import-not-at-top
  from ike_jax import train  # pylint: disable=g-import-not-at-top
  cfg = train_config(cfg)
  est = estimators.of(cfg)
  dtype = cfg.model.compute_dtype
  s, c = cfg.scale, cfg.crop
  dc, nz = c // s, s * s - 1
  side = timing.image_side(c)
  states = jax.device_get(train.init_states(
      jnp.asarray([seed], jnp.int32), jnp.zeros((1, side, side, 3), jnp.float32), cfg))
  g, u, d, d_sn, ud, ud_sn = jax.tree.map(
      lambda a: a[0], (states.g, states.u, states.d, states.d_sn, states.ud, states.ud_sn))
  rng = np.random.default_rng(seed)
  normal = lambda *shape: (0.5 * rng.standard_normal(shape)).astype(np.float32)
  x, z, z_up = normal(3, c, c, 1), normal(3, dc, dc, nz), normal(3, c, c, nz)
  d_in, ud_in = normal(1, dc, dc, 3), normal(1, c, c, 3)
  total = lambda t: sum(jnp.sum(l) for l in jax.tree.leaves(t))

  def g_fwd(g, x):
    return est.forward(est.prepare(g, cfg), x, cfg)

  def g_inv(g, x, z_up):
    return est.inverse(est.prepare(g, cfg), x, z_up, cfg)

  def d_out(p, img):
    return nets.d_apply(p, d_sn, img, dtype)[0]

  def ud_out(p, img):
    return nets.d_apply(p, ud_sn, img, dtype)[0]

  losses = set(cfg.loss.losses)
  u_step = bool({'tv', 'inter', 'csr'} & losses)
  csr = u_step and 'csr' in losses
  recompute = csr and cfg.quirks.recompute_ud_fake
  grad = lambda f, argnums=0: jax.jit(jax.grad(lambda *a: total(f(*a)), argnums=argnums))
  pieces = [
      ('G fwd', 1, f'x {x.shape}; after the G step', jax.jit(g_fwd), (g, x)),
      ('G fwd+bwd', 1, 'G step (grad wrt G)', grad(lambda g, x: g_fwd(g, x)[0]), (g, x)),
      ('G inv fwd+bwd', int(u_step), f'LR grid {c}x{c}; U step (grad wrt G, z_up)',
       grad(g_inv, (0, 2)), (g, x, z_up)),
      ('G inv fwd', int(recompute), "UD's fake recomputed", jax.jit(g_inv), (g, x, z_up)),
      ('U fwd+bwd', int(u_step), f'z {z.shape}', grad(lambda u, z: nets.u_apply(u, z, s, dtype=dtype)),
       (u, z)),
      ('U fwd', int(recompute), "UD's fake recomputed", jax.jit(lambda u, z: nets.u_apply(u, z, s, dtype=dtype)),
       (u, z)),
      ('D fwd+bwd', 3, f'{d_in.shape}; G step + real, fake', grad(d_out, (0, 1)), (d, d_in)),
      ('UD fwd+bwd', (2 + s * s) if csr else 0, f'{ud_in.shape}; U step + real + {s * s} tiles',
       grad(ud_out, (0, 1)), (ud, ud_in)),
  ]
  if not est.HAS_INVERSE:  # e.g. deep_linear: no G^-1 in its step
    pieces = [p for p in pieces if not p[0].startswith('G inv')]
  if cfg.fused:
    pieces.append(('G fuse', 0, 'composing the 11x11 kernels; inside the G rows',
                   jax.jit(lambda g: est.prepare(g, cfg)), (g,)))
  return pieces


def measure_components(cfg, steps, warmup, repeats, log=None, names=None, budget_s=None):
  """Time and cost-analysis FLOPs of each piece of the step (or of `names`)."""
  import jax  # pylint: disable=g-import-not-at-top
  log = log or (lambda m: None)
  rows = []
  for name, calls, note, fn, args in component_functions(cfg):
    if names is not None and name not in names:
      continue
    log(f'component {name}')
    args = jax.device_put(args)
    compiled = fn.lower(*args).compile()
    t = timing.time_calls(timing.blocking(compiled, *args), steps, warmup, repeats, budget_s)
    flops = timing.cost_flops(compiled)
    rows.append({'name': name, 'calls_per_step': calls, 'note': note,
                 's': t['median_s'], 'iqr_s': t['iqr_s'], 'flops': flops,
                 'flops_per_s': None if flops is None else flops / t['median_s']})
  return rows


# -------------------------------------------------------------------- peak --

def measure_peak(steps, warmup, repeats, matmul=2048, conv=(1, 256, 256, 64, 64),
                 budget_s=None):
  """Measured float32 GFLOP/s of a square matmul and a 3x3 SAME convolution."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ike_jax import layers  # pylint: disable=g-import-not-at-top
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  n = matmul
  a, b = jax.random.normal(k1, (n, n)), jax.random.normal(k2, (n, n))
  nb, h, w, ci, co = conv
  x, kern = jax.random.normal(k1, (nb, h, w, ci)), jax.random.normal(k2, (3, 3, ci, co))
  out = {}
  for name, fn, args, flops in (
      ('matmul', jax.jit(jnp.matmul), (a, b), 2.0 * n ** 3),
      ('conv', jax.jit(layers.conv), (x, kern), 2.0 * nb * h * w * 9 * ci * co)):
    compiled = fn.lower(*args).compile()
    t = timing.time_calls(timing.blocking(compiled, *args), steps, warmup, repeats, budget_s)
    out[name] = {'flops': flops, 'cost_analysis_flops': timing.cost_flops(compiled),
                 's': t['median_s'], 'iqr_s': t['iqr_s'],
                 'gflops_per_s': flops / t['median_s'] / 1e9}
  out['matmul']['shape'] = f'{n}x{n} @ {n}x{n}'
  out['conv']['shape'] = f'NHWC {nb}x{h}x{w}x{ci} * HWIO 3x3x{ci}x{co}'
  out['peak_gflops_per_s'] = max(out['matmul']['gflops_per_s'], out['conv']['gflops_per_s'])
  return out


# ---------------------------------------------------------------- one row --

def speed_row(preset, variant, *, crop=None, sets=(), steps=10, warmup=2, repeats=3,
              components=True, log=None, budget_s=None):
  """Measures one (preset, variant) row in this process."""
  cfg = timing.load_config(preset, timing.overrides_for(crop, sets, VARIANTS[variant]))
  if variant.endswith('_lax'):
    from ike_jax import layers  # pylint: disable=g-import-not-at-top
    layers.ROUTES = False  # this row's own process, before anything is traced
  row = {'preset': preset, 'variant': variant,
         'overridden': bool(crop is not None or sets), 'config': cfg.to_dict()}
  row.update(measure_train_step(cfg, [timing.sample_image(cfg.train.crop)], [cfg.run.seed],
                                steps, warmup, repeats, log, budget_s))
  if components:
    row['components'] = measure_components(cfg, steps, warmup, repeats, log,
                                           budget_s=budget_s)
  return row


# ---------------------------------------------------------------- report --

def xla_buffers_mib(row):
  b = row.get('xla_buffers_mib') or {}
  return b['argument'] + b['temp'] if 'argument' in b and 'temp' in b else None


def peak_lines(peak):
  """The peak-kernel table, or nothing when the peak was not measured."""
  if not peak or 'error' in peak:
    return []
  lines = ['| peak kernel | shape | GFLOP/s |', '|---|---|---|']
  for k in ('matmul', 'conv'):
    lines.append(f'| {k} f32 | {peak[k]["shape"]} | {peak[k]["gflops_per_s"]:.1f} |')
  return lines + ['']


def component_lines(row):
  """Where a step's time goes: its pieces jitted apart."""
  comps = row.get('components')
  if not comps:
    return []
  accounted = sum(c['calls_per_step'] * c['s'] for c in comps)
  lines = ['', f'### Components: {row["preset"]} {row["variant"]} (crop {row["crop"]}, '
           f'x{row["scale"]})', '', '| component | input; where in the step | calls/step '
           '| ms/call | GFLOP/call | GFLOP/s | share of accounted |',
           '|---|---|---|---|---|---|---|']
  for c in comps:
    share = 100 * c['calls_per_step'] * c['s'] / accounted if accounted else None
    gf = None if c['flops'] is None else c['flops'] / 1e9
    rate = None if c['flops_per_s'] is None else c['flops_per_s'] / 1e9
    lines.append(f'| {c["name"]} | {c["note"]} | {c["calls_per_step"]} | {1e3 * c["s"]:.3g} '
                 f'| {timing.fmt_value(gf)} | {timing.fmt_value(rate)} '
                 f'| {timing.fmt_value(share, "{:.0f}%")} |')
  lines.append(f'\nAccounted: {accounted:.4g} s vs a measured step of {row["step_s"]:.4g} s.')
  return lines


def markdown(report):
  fmt = timing.fmt_value
  peak = report.get('peak', {})
  peak_g = peak.get('peak_gflops_per_s')
  s = report['settings']
  lines = [timing.title('Training speed', report['machine']), '',
           f'Steps: 1 compile + 1 first + {s["warmup"]} warm-up + {s["repeats"]} x (up to) '
           f'{s["steps"]} timed (fewer when slow: about {s.get("budget_s")} s timed per row); '
           's/step = median of the repeat medians (IQR over repeats).', '']
  lines += peak_lines(peak)
  lines += ['| preset | variant | crop | compile s | s/step (IQR) | timed steps | steps/s '
            '| s / 3000 steps | GFLOP/step | GFLOP/s | % of peak | memory MiB '
            '| XLA buffers MiB |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in report['rows']:
    if 'error' in r:
      lines.append(f'| {r["preset"]} | {r["variant"]} | error: {r["error"]} |')
      continue
    gflop, rate, frac = timing.flop_cells(r, peak_g)
    lines.append(
        f'| {r["preset"]} | {r["variant"]} | {r["crop"]} | {r["compile_s"]:.1f} '
        f'| {r["step_s"]:.4g} ({r["step_iqr_s"]:.2g}) | {r.get("timed_steps", "—")} '
        f'| {r["steps_per_s"]:.3g} | {r["s_per_3000_steps"]:.4g} | {fmt(gflop)} '
        f'| {fmt(rate)} | {fmt(frac, "{:.1f}")} | {r["memory_mib"]:.0f} '
        f'| {fmt(xla_buffers_mib(r), "{:.0f}")} |')
  sources = sorted({r['memory_source'] for r in report['rows'] if 'memory_source' in r})
  lines += ['', '% of peak: achieved GFLOP/s over the faster of the two peak kernels. Memory: '
            + '; '.join(sources) + ' (on CPU this includes XLA\'s compile-time memory). XLA '
            'buffers: the compiled step\'s arguments + temporaries from its memory analysis '
            '(outputs alias the donated state).']
  for r in report['rows']:
    lines += component_lines(r)
  return '\n'.join(lines) + '\n'


def write_report(report, path):
  return timing.write_report(report, path, markdown)


# -------------------------------------------------------------------- main --

def define_flags(flag_values=FLAGS):
  kw = dict(flag_values=flag_values)
  timing.define_common_flags(flag_values)
  flags.DEFINE_integer('crop', None, 'Override the presets\' crop.', **kw)
  flags.DEFINE_multi_string('set', [], 'Any Config flag for every row, e.g. '
                            '--set=blocks=1 (repeatable).', **kw)
  flags.DEFINE_list('presets', ['paper_x2', 'paper_x4', 'demo'],
                    'Presets (flags/<name>.flags).', **kw)
  flags.DEFINE_list('variants', ['fused', 'unfused'], 'Any of ' + ', '.join(VARIANTS) + '.',
                    **kw)
  flags.DEFINE_bool('components', True, 'Also time G, U, D and UD apart.', **kw)
  flags.DEFINE_bool('peak', True, 'Also measure the machine\'s peak (a matmul and a conv).',
                    **kw)
  flags.DEFINE_integer('peak_matmul', 2048, 'Side of the peak matmul.', **kw)
  flags.DEFINE_list('peak_conv', ['1', '256', '256', '64', '64'],
                    'Peak conv N,H,W,Cin,Cout (3x3 kernel).', **kw)


def child_main(one):
  """`--_one=peak` or `--_one=preset:variant`: one row, printed as JSON."""
  log = lambda m: print(m, file=sys.stderr, flush=True)
  if one == 'peak':
    result = measure_peak(FLAGS.steps, FLAGS.warmup, FLAGS.repeats, FLAGS.peak_matmul,
                          tuple(int(v) for v in FLAGS.peak_conv), FLAGS.budget_s)
  else:
    preset, variant = one.split(':')
    result = speed_row(preset, variant, crop=FLAGS.crop, sets=FLAGS.set, steps=FLAGS.steps,
                       warmup=FLAGS.warmup, repeats=FLAGS.repeats,
                       components=FLAGS.components, log=log, budget_s=FLAGS.budget_s)
  result['machine'] = timing.machine_info()
  timing.emit(result)


def check_variants(variants):
  bad = [v for v in variants if v not in VARIANTS]
  if bad:
    raise errors.UserError(f'--variants takes {",".join(VARIANTS)}; got {",".join(bad)}')


def main(argv):
  del argv
  if FLAGS._one:  # pylint: disable=protected-access
    return child_main(FLAGS._one)  # pylint: disable=protected-access
  check_variants(FLAGS.variants)
  for p in FLAGS.presets:
    timing.load_config(p)  # fail early on a missing preset
  args = timing.child_args(sys.argv)
  log = lambda m: print(m, flush=True)
  report = {'machine': {}, 'settings': {'steps': FLAGS.steps, 'warmup': FLAGS.warmup,
                                        'repeats': FLAGS.repeats, 'budget_s': FLAGS.budget_s,
                                        'crop': FLAGS.crop, 'set': FLAGS.set},
            'peak': {'error': 'not measured'}, 'rows': []}
  if FLAGS.peak:
    log('peak: matmul and conv')
    report['peak'] = timing.run_child(['benchmarks.speed', '--_one=peak'] + args,
                                      FLAGS.row_timeout, log)
    report['machine'] = report['peak'].pop('machine', None) or report['machine']
  path = FLAGS.results or timing.default_results('speed')
  for preset in FLAGS.presets:
    for variant in FLAGS.variants:
      log(f'{preset} {variant}')
      row = timing.run_child(['benchmarks.speed', f'--_one={preset}:{variant}'] + args,
                             FLAGS.row_timeout, log)
      report['machine'] = row.pop('machine', None) or report['machine']
      report['rows'].append({'preset': preset, 'variant': variant, **row})
      if 'error' not in row:
        log(f'  {row["step_s"]:.4g} s/step, compile {row["compile_s"]:.1f} s')
      write_report(report, path)  # row by row: a timeout loses nothing measured
  return timing.finish(report, path, markdown, log, any('error' in r for r in report['rows']))


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
