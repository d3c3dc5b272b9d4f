r"""Training speed per preset, fused and unfused: time, FLOPs, memory, peak.

  python -m benchmarks.speed [--presets=paper_x2,paper_x4,demo] \
      [--variants=fused,unfused] [--steps=N] [--warmup=K] [--repeats=R] \
      [--budget_s=S] [--crop=C] [--set=blocks=1] [--nocomponents] \
      [--torch_src=<the authors' src/ folder>] \
      [--results=benchmarks/results/speed_<host>.json]

Every (preset, variant) row runs in its own subprocess (`--_one=preset:variant`,
which prints one JSON line), so compile caches, the memory high-water mark and
thread pools never mix between rows (and without JAX_COMPILATION_CACHE_DIR, so
compile times are real compiles); the machine's peak (a float32 matmul and a
convolution, `--_one=peak`) is measured the same way. Per row: compile time
(first step minus a steady step), the median seconds per step over `--steps`
steps after `--warmup` (each step ended by `block_until_ready`; median and IQR
over `--repeats` repeat medians; `--budget_s` lowers the steps per repeat when
steps are slow, e.g. the unfused paper presets on a CPU), the step's FLOPs from
XLA's cost analysis, achieved FLOP/s against the measured peak, peak memory
(the device's peak bytes where the backend reports them, else the growth of the
process's RSS high-water mark, compilation included) and a per-component
breakdown (G forward/inverse, U, D, UD jitted separately). Variants ending in
`_lax` compute every convolution with `lax.conv` (`ike_jax.layers.ROUTES`
off), to measure what the faster routes gain.

With `--torch_src`, the authors' PyTorch `train.py` (through
`benchmarks/torch_ref/record.py`, which times each iteration) runs after our
rows, on the same image at paper_x2 settings and with as many threads as
cores, so the "vs PyTorch" ratio compares two measurements of one sitting.
Needs torch, opencv-python-headless and tqdm (not in requirements.txt). The
JSON and a Markdown table beside it (`.md`) are rewritten after every row.
"""

import datetime
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS_DIR = os.path.join(ROOT, 'flags')
SAMPLE = os.path.join(ROOT, 'samples', 'astronaut_lr_x2.png')
RESULT_PREFIX = 'BENCH_JSON '
VARIANTS = {'fused': ['--fuse_linear'], 'unfused': ['--nofuse_linear'],
            # D, UD and U in bf16 (f32 accumulation): for accelerators.
            'fused_bf16': ['--fuse_linear', '--compute_dtype=bfloat16'],
            # Every convolution through lax.conv (`ike_jax.layers.ROUTES` off):
            # what the 1x1-as-matmul and FFT routes gain.
            'fused_lax': ['--fuse_linear'], 'unfused_lax': ['--nofuse_linear']}

# The authors' PyTorch code, timed in the same run (`--torch_src`), at the
# settings of `flags/paper_x2.flags`: their README's x2 command line.
TORCH_PRESET = 'paper_x2'
TORCH_ARGS = ('--z_up', 'ZSSR', '--INN', '--test', '--tri_channel', '--use_res', '--linear',
              '--other_loss', 'interpolation_loss', 'cycle_consistency', '--scale_factor',
              '0.5', '--INN_down', 'space2depth')
REPORT_LR_SIDE = {2: 128, 4: 96}  # LR px of the report images (`stage_row`)
TORCH_CROP = 128  # their Config's input_crop_size; train.py has no flag for it
TORCH_RECORDER = os.path.join(ROOT, 'benchmarks', 'torch_ref', 'record.py')


def define_common_flags(flag_values=FLAGS):
  """Flags shared with `benchmarks.throughput`."""
  kw = dict(flag_values=flag_values)
  flags.DEFINE_integer('steps', 10, 'Timed steps per repeat.', **kw)
  flags.DEFINE_integer('warmup', 2, 'Untimed steps after the compiling one.', **kw)
  flags.DEFINE_integer('repeats', 3, 'Repeats of --steps timed steps.', **kw)
  flags.DEFINE_float('budget_s', 120, 'Timed seconds per measurement, about: fewer steps '
                     'per repeat (>= 1) when steps are slow. 0: always --steps.', **kw)
  flags.DEFINE_string('results', None, 'Results JSON (a .md is written beside).', **kw)
  flags.DEFINE_integer('row_timeout', 7200, 'Seconds before a row\'s subprocess is killed.', **kw)
  flags.DEFINE_string('_one', None, 'Internal: measure one row and print it as JSON.', **kw)


# ----------------------------------------------------------------- helpers --

def overrides_for(crop=None, sets=(), extra=()):
  """Flagfile overrides: `--set` values, then crop, then `extra` (which win)."""
  args = ['--' + s.lstrip('-') for s in sets]
  if crop is not None:
    args.append(f'--crop={crop}')
  return args + list(extra)


def load_config(preset, overrides=()):
  """The Config of `flags/<preset>.flags` (or a flagfile path) plus overrides."""
  from ike_jax import presets  # pylint: disable=g-import-not-at-top
  path = preset if preset.endswith('.flags') else os.path.join(FLAGS_DIR, preset + '.flags')
  return presets.config_from_flagfile(path, overrides)


def image_side(crop):
  """Side of the synthetic training image: room for crops to move."""
  return max(2 * crop, 128)


def tile_image(img, side):
  """Mirror-tiles (or centre-crops) an (H, W, 3) uint8 image to (side, side, 3)."""
  h, w = img.shape[:2]
  img = np.pad(img, ((0, max(side - h, 0)), (0, max(side - w, 0)), (0, 0)), mode='symmetric')
  return np.ascontiguousarray(img[:side, :side])


def sample_image(crop):
  """The bundled astronaut sample, mirror-tiled to `image_side(crop)`."""
  import imageio.v3 as iio  # pylint: disable=g-import-not-at-top
  return tile_image(np.asarray(iio.imread(SAMPLE))[..., :3], image_side(crop))


def maxrss_bytes():
  """This process's resident-set high-water mark (ru_maxrss), in bytes."""
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return rss if sys.platform == 'darwin' else rss * 1024


def device_peak_bytes():
  """The device's peak bytes in use, or None where the backend has no stats."""
  import jax  # pylint: disable=g-import-not-at-top
  try:
    stats = jax.devices()[0].memory_stats()
  except Exception:  # pylint: disable=broad-except
    return None
  return None if not stats else stats.get('peak_bytes_in_use')


def machine_info():
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  return {'device_kind': dev.device_kind, 'platform': dev.platform,
          'device_count': jax.device_count(), 'jax_version': jax.__version__,
          'cpu_count': os.cpu_count(), 'host': socket.gethostname(),
          'python': platform.python_version(), 'machine': platform.machine(),
          'compilation_cache_dir': jax.config.jax_compilation_cache_dir or None,
          'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}


def cost_flops(compiled_or_lowered):
  """'flops' of XLA's cost analysis (a dict, or a list of one per module)."""
  ca = compiled_or_lowered.cost_analysis()
  if isinstance(ca, (list, tuple)):
    ca = ca[0] if ca else {}
  flops = (ca or {}).get('flops')
  return None if flops is None else float(flops)


def xla_memory(compiled):
  """Argument, output and temporary buffer sizes XLA planned, in bytes."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # pylint: disable=broad-except
    return {}
  if m is None:
    return {}
  return {k: int(getattr(m, k + '_size_in_bytes')) for k in ('argument', 'output', 'temp')
          if hasattr(m, k + '_size_in_bytes')}


def time_calls(call, steps, warmup, repeats, budget_s=None):
  """Times `call()` (which must block until done) the same way everywhere.

  The first call (compilation included) is timed alone, then `warmup` calls,
  then `repeats` x `steps` timed calls. With `budget_s`, `steps` shrinks (to no
  less than 1) so the timed calls take about `budget_s` at the warm-up's pace.
  Returns:
    first_s, median_s (median of the repeat medians), iqr_s (their
    interquartile range), min_s, repeat_medians_s and steps (per repeat).
  """
  t = time.perf_counter()
  call()
  first = time.perf_counter() - t
  warm = []
  for _ in range(warmup):
    t = time.perf_counter()
    call()
    warm.append(time.perf_counter() - t)
  steps, repeats = max(steps, 1), max(repeats, 1)
  if budget_s:
    pace = float(np.median(warm)) if warm else first
    steps = max(1, min(steps, int(budget_s / (pace * repeats))))
  medians, fastest = [], float('inf')
  for _ in range(repeats):
    times = []
    for _ in range(steps):
      t = time.perf_counter()
      call()
      times.append(time.perf_counter() - t)
    medians.append(float(np.median(times)))
    fastest = min(fastest, min(times))
  q25, q75 = np.percentile(medians, [25, 75])
  return {'first_s': first, 'median_s': float(np.median(medians)),
          'iqr_s': float(q75 - q25), 'min_s': fastest, 'repeat_medians_s': medians,
          'steps': steps}


def _blocking(fn, *args):
  import jax  # pylint: disable=g-import-not-at-top
  return lambda: jax.block_until_ready(fn(*args))


# -------------------------------------------------------------- train step --

def train_config(cfg):
  """The `TrainConfig` a run of `cfg` trains with (the train step's static
  argument): at the estimator's training scale, as `ike_jax.pipeline` trains."""
  from ike_jax import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.training_config(cfg)


def step_inputs(cfg, images_u8, seeds, n_steps):
  """(states, plans, static train config, step function) for `n_steps` steps.

  With several devices the images are split over them as `loop.fit` does
  (padding copies of the first image make the count divide the devices) and
  the step is `train.sharded_train_step`; otherwise `train.train_step_batched`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from ike_jax import data  # pylint: disable=g-import-not-at-top
  from ike_jax import loop  # pylint: disable=g-import-not-at-top
  from ike_jax import train  # pylint: disable=g-import-not-at-top
  static = train_config(cfg)
  sharding, n_pad = loop.image_sharding(len(images_u8))
  images_u8 = list(images_u8) + [images_u8[0]] * n_pad
  seeds = list(seeds) + [seeds[0]] * n_pad
  plans = train.stack_plans([data.plan_crops(im, static.scale, static.crop, n_steps, int(sd))
                             for im, sd in zip(images_u8, seeds)])
  models = loop.pad_images([data.to_model(data.trim_to_multiple(im, static.scale)[0])
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
  from ike_jax import data  # pylint: disable=g-import-not-at-top
  from ike_jax import train  # pylint: disable=g-import-not-at-top
  static = train_config(cfg)
  side = image_side(static.crop)
  states = jax.eval_shape(lambda: train.init_states(
      jnp.zeros((batch,), jnp.int32), jnp.zeros((batch, side, side, 3)), static))
  n = train.PLAN_BUCKET
  plans = data.CropPlan(g_corners=jnp.zeros((batch, n, 2), jnp.int32),
                        d_corners=jnp.zeros((batch, n, 2), jnp.int32))
  lowered = train.train_step_batched.lower(states, plans, static)
  return cost_flops(lowered.compile() if compiled else lowered)


def measure_train_step(cfg, images_u8, seeds, steps, warmup, repeats, log=None,
                       budget_s=None):
  """Times the batched train step on stacked images; one dict of results."""
  import jax  # pylint: disable=g-import-not-at-top
  from ike_jax import train  # pylint: disable=g-import-not-at-top
  log = log or (lambda m: None)
  n_steps = 1 + max(warmup, 0) + max(repeats, 1) * max(steps, 1)
  rss0, t0 = maxrss_bytes(), time.perf_counter()
  states, plans, static, step_fn = step_inputs(cfg, images_u8, seeds, n_steps)
  jax.block_until_ready(states)
  init_s = time.perf_counter() - t0  # init_states' compile included
  holder = [states]

  def call():
    holder[0], metrics = step_fn(holder[0], plans, static)
    jax.block_until_ready((holder[0], metrics))

  log(f'timing {len(seeds)} image(s), crop {static.crop}, x{static.scale}, '
      f'{"fused" if static.fused else "unfused"}: 1 + {warmup} + {repeats} x {steps} steps')
  t = time_calls(call, steps, warmup, repeats, budget_s)
  rss1, dev_peak = maxrss_bytes(), device_peak_bytes()
  finite = bool(np.all(np.asarray(train.params_finite_batched(holder[0]))))
  compiled = step_fn.lower(holder[0], plans, static).compile()
  flops = cost_flops(compiled)
  med = t['median_s']
  out = {
      'batch': len(seeds), 'devices': jax.device_count(), 'crop': static.crop, 'scale': static.scale,
      'blocks': static.model.blocks, 'fused': static.fused, 'iterations': cfg.run.iterations,
      'image_side': int(images_u8[0].shape[0]),
      'compile_s': max(t['first_s'] - med, 0.0), 'first_step_s': t['first_s'], 'init_s': init_s,
      'step_s': med, 'step_iqr_s': t['iqr_s'], 'step_min_s': t['min_s'],
      'repeat_medians_s': t['repeat_medians_s'],
      'timed_steps': t['steps'] * len(t['repeat_medians_s']),
      'steps_per_s': 1.0 / med,
      's_per_3000_steps': 3000 * med, 's_per_image_run': cfg.run.iterations * med,
      'flops_per_step': flops, 'flops_per_s': None if flops is None else flops / med,
      'peak_rss_mib': rss1 / 2**20, 'rss_growth_mib': (rss1 - rss0) / 2**20,
      'device_peak_mib': None if dev_peak is None else dev_peak / 2**20,
      'xla_buffers_mib': {k: v / 2**20 for k, v in xla_memory(compiled).items()},
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
  side = image_side(c)
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
    t = time_calls(_blocking(compiled, *args), steps, warmup, repeats, budget_s)
    flops = cost_flops(compiled)
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
    t = time_calls(_blocking(compiled, *args), steps, warmup, repeats, budget_s)
    out[name] = {'flops': flops, 'cost_analysis_flops': cost_flops(compiled),
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
  cfg = load_config(preset, overrides_for(crop, sets, VARIANTS[variant]))
  if variant.endswith('_lax'):
    from ike_jax import layers  # pylint: disable=g-import-not-at-top
    layers.ROUTES = False  # this row's own process, before anything is traced
  row = {'preset': preset, 'variant': variant,
         'overridden': bool(crop is not None or sets), 'config': cfg.to_dict()}
  row.update(measure_train_step(cfg, [sample_image(cfg.train.crop)], [cfg.run.seed], steps,
                                warmup, repeats, log, budget_s))
  if components:
    row['components'] = measure_components(cfg, steps, warmup, repeats, log,
                                           budget_s=budget_s)
  return row


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
    iio.imwrite(os.path.join(tmp, 'in', 'sample.png'), sample_image(TORCH_CROP))
    times = os.path.join(tmp, 'times.json')
    env = dict(os.environ, STEP_TIMES=times)
    env.setdefault('OMP_NUM_THREADS', str(os.cpu_count()))
    cmd = [sys.executable, TORCH_RECORDER, src, '0', '-i', os.path.join(tmp, 'in'),
           '-e', os.path.join(tmp, 'in'), '-o', os.path.join(tmp, 'out'),
           '--max_iters', str(steps + warmup)] + list(TORCH_ARGS)
    log('pytorch: ' + ' '.join(cmd[1:]))
    try:
      proc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, check=False,
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


def stage_row(preset, lr_side, repeats=3, log=None):
  """Stage by stage, one LR photo, for a preset whose estimator does not train.

  Times (median over `repeats`, after a compiling call) the kernel estimate,
  the bicubic start and the back-projection as the pipeline runs them, with
  XLA's FLOP count of the back-projection (the only compiled stage).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from benchmarks import throughput  # pylint: disable=g-import-not-at-top
  from ike_jax import data  # pylint: disable=g-import-not-at-top
  from ike_jax import estimators  # pylint: disable=g-import-not-at-top
  from ike_jax import kernel  # pylint: disable=g-import-not-at-top
  from ike_jax import pipeline  # pylint: disable=g-import-not-at-top
  from ike_jax import postprocess  # pylint: disable=g-import-not-at-top
  from ike_jax import refine  # pylint: disable=g-import-not-at-top
  from ike_jax import report  # pylint: disable=g-import-not-at-top
  log = log or (lambda m: None)
  cfg = load_config(preset)
  lr_side = lr_side or REPORT_LR_SIDE[cfg.scale]
  train_cfg = pipeline.training_config(cfg)
  est_mod = estimators.of(train_cfg)
  if est_mod.TRAINS or not cfg.post.refine:
    raise ValueError(f'{preset}: stage rows are for non-training presets with --refine')
  lr = throughput.photos(1, lr_side)[0]
  s, post = cfg.scale, cfg.post
  est = est_mod.estimate(lr, train_cfg)
  k, origin = postprocess.sr_kernel(est, train_cfg.scale, s, post.lever_kernel_taps)
  sr0 = jnp.asarray(data.to_model(report.bicubic_upscale(lr, s)))
  lr_m = jnp.asarray(data.to_model(lr))
  bp = lambda: refine.back_project(sr0, lr_m, k, s, origin, iterations=post.refine_iterations,
                                   prior_weight=post.refine_prior)
  stages = {'estimate': lambda: est_mod.estimate(lr, train_cfg),
            'bicubic': lambda: report.bicubic_upscale(lr, s),
            'back-projection': lambda: jax.block_until_ready(bp())}
  rows = []
  for name, fn in stages.items():
    log(f'stage {name}')
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    t = time_calls(fn, 1, 0, repeats)
    rows.append({'name': name, 'first_s': first, 's': t['median_s'], 'iqr_s': t['iqr_s']})
  compiled = refine._back_project.lower(  # pylint: disable=protected-access
      sr0, lr_m, jnp.asarray(k, jnp.float32), 1.0, post.refine_prior, 3e-2, scale=s,
      origin=kernel.static_origin(k, origin), iterations=post.refine_iterations).compile()
  flops = cost_flops(compiled)
  rows[-1]['flops'] = flops
  rows[-1]['flops_per_s'] = None if flops is None else flops / rows[-1]['s']
  return {'preset': preset, 'variant': 'stages', 'lr_side': lr_side, 'scale': s,
          'refine_iterations': post.refine_iterations, 'kernel_size': int(np.shape(k)[-1]),
          'stages': rows, 'total_s': sum(r['s'] for r in rows)}


def run_child(args, timeout, log=print):
  """Runs `python -m <module> args` and returns its JSON result line."""
  env = dict(os.environ)
  env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
  env.pop('JAX_COMPILATION_CACHE_DIR', None)  # compile times must be real compiles
  try:
    proc = subprocess.run([sys.executable, '-m'] + args, cwd=ROOT, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=None, text=True, check=False)
  except subprocess.TimeoutExpired:
    return {'error': f'timed out after {timeout} s'}
  for line in reversed(proc.stdout.splitlines()):
    if line.startswith(RESULT_PREFIX):
      return json.loads(line[len(RESULT_PREFIX):])
  log(proc.stdout[-2000:])
  return {'error': f'exit status {proc.returncode}, no result line'}


def emit(result):
  print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------- report --

def fmt_value(v, fmt='{:.3g}'):
  return '—' if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def xla_buffers_mib(row):
  b = row.get('xla_buffers_mib') or {}
  return b['argument'] + b['temp'] if 'argument' in b and 'temp' in b else None


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
  m, peak = report['machine'], report.get('peak', {})
  peak_g = peak.get('peak_gflops_per_s')
  lines = [f'# Training speed: {m["device_kind"]} ({m["platform"]}), {m["cpu_count"]} CPUs, '
           f'jax {m["jax_version"]}, {m["date"]}', '',
           f'Steps: 1 compiling + {report["settings"]["warmup"]} warm-up + '
           f'{report["settings"]["repeats"]} x (up to) {report["settings"]["steps"]} timed '
           f'(fewer when slow: about {report["settings"].get("budget_s")} s timed per row); '
           's/step = median of the repeat medians (IQR over repeats).', '']
  if 'error' not in peak:
    lines += ['| peak kernel | shape | GFLOP/s |', '|---|---|---|']
    for k in ('matmul', 'conv'):
      lines.append(f'| {k} f32 | {peak[k]["shape"]} | {peak[k]["gflops_per_s"]:.1f} |')
    lines.append('')
  lines += ['| preset | variant | crop | compile s | s/step (IQR) | timed steps | steps/s '
            '| s / 3000 steps | GFLOP/step | GFLOP/s | % of peak | memory MiB '
            '| XLA buffers MiB | vs PyTorch |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in report['rows']:
    if 'error' in r:
      lines.append(f'| {r["preset"]} | {r["variant"]} | error: {r["error"]} |')
      continue
    gflop = None if r['flops_per_step'] is None else r['flops_per_step'] / 1e9
    rate = None if r['flops_per_s'] is None else r['flops_per_s'] / 1e9
    frac = None if rate is None or not peak_g else 100 * rate / peak_g
    speedup = torch_speedup(r, torch_step_s(report))
    lines.append(
        f'| {r["preset"]} | {r["variant"]} | {r["crop"]} | {r["compile_s"]:.1f} '
        f'| {r["step_s"]:.4g} ({r["step_iqr_s"]:.2g}) | {r.get("timed_steps", "—")} '
        f'| {r["steps_per_s"]:.3g} | {r["s_per_3000_steps"]:.4g} | {fmt_value(gflop)} '
        f'| {fmt_value(rate)} | {fmt_value(frac, "{:.1f}")} | {r["memory_mib"]:.0f} '
        f'| {fmt_value(xla_buffers_mib(r), "{:.0f}")} | {fmt_value(speedup, "{:.1f}x")} |')
  torch_row = report.get('torch')
  if torch_row and 'error' in torch_row:
    lines.append(f'| {TORCH_PRESET} | pytorch | error: {torch_row["error"]} |')
  elif torch_row:
    t = torch_row
    lines.append(
        f'| {TORCH_PRESET} | pytorch (torch {t["torch_version"]}, {t["threads"]} threads) '
        f'| {t["crop"]} | — | {t["step_s"]:.4g} ({t["step_iqr_s"]:.2g}) | {t["timed_steps"]} '
        f'| {1 / t["step_s"]:.3g} | {3000 * t["step_s"]:.4g} | — | — | — | — | — | 1.0x |')
  lines += ['', 'vs PyTorch: the authors\' PyTorch code\'s s/step (timed in this run by '
            '`--torch_src`, their `train.py` at paper_x2 settings on the same image, each '
            'iteration from its crop to its learner update, after the first '
            f'{(torch_row or {}).get("warmup", "few")}) over ours; {TORCH_PRESET} rows without '
            'overrides only. % of peak: achieved GFLOP/s over '
            'the faster of the two peak kernels. Memory: ' +
            '; '.join(sorted({r['memory_source'] for r in report['rows'] if 'memory_source' in r}))
            + ' (on CPU this includes XLA\'s compile-time memory). XLA buffers: the compiled '
            'step\'s arguments + temporaries from its memory analysis (outputs alias the '
            'donated state).']
  for r in report.get('stage_rows', []):
    if 'error' in r:
      lines += ['', f'### Stages: {r["preset"]}: error: {r["error"]}']
      continue
    lines += ['', f'### Stages: {r["preset"]} (LR {r["lr_side"]} px, x{r["scale"]}, '
              f'{r["kernel_size"]}x{r["kernel_size"]} kernel, {r["refine_iterations"]} '
              'back-projection steps)', '',
              '| stage | first call s | s (IQR) | GFLOP | GFLOP/s | % of peak | share |',
              '|---|---|---|---|---|---|---|']
    for st in r['stages']:
      rate = None if st.get('flops_per_s') is None else st['flops_per_s'] / 1e9
      frac = None if rate is None or not peak_g else 100 * rate / peak_g
      gf = None if st.get('flops') is None else st['flops'] / 1e9
      lines.append(f'| {st["name"]} | {st["first_s"]:.3g} | {st["s"]:.3g} ({st["iqr_s"]:.2g}) '
                   f'| {fmt_value(gf)} | {fmt_value(rate)} | {fmt_value(frac, "{:.1f}")} '
                   f'| {100 * st["s"] / r["total_s"]:.0f}% |')
  for r in report['rows']:
    comps = r.get('components')
    if not comps:
      continue
    accounted = sum(c['calls_per_step'] * c['s'] for c in comps)
    lines += ['', f'### Components: {r["preset"]} {r["variant"]} (crop {r["crop"]}, x{r["scale"]})',
              '', '| component | input; where in the step | calls/step | ms/call | GFLOP/call '
              '| GFLOP/s | share of accounted |', '|---|---|---|---|---|---|---|']
    for c in comps:
      share = 100 * c['calls_per_step'] * c['s'] / accounted if accounted else None
      gf = None if c['flops'] is None else c['flops'] / 1e9
      rate = None if c['flops_per_s'] is None else c['flops_per_s'] / 1e9
      lines.append(f'| {c["name"]} | {c["note"]} | {c["calls_per_step"]} | {1e3 * c["s"]:.3g} '
                   f'| {fmt_value(gf)} | {fmt_value(rate)} '
                   f'| {fmt_value(share, "{:.0f}%")} |')
    lines.append(f'\nAccounted: {accounted:.4g} s vs a measured step of {r["step_s"]:.4g} s.')
  return '\n'.join(lines) + '\n'


def write_report(report, path, to_markdown=None):
  """Writes the report as JSON and, beside it, as Markdown (`to_markdown`)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(report, f, indent=2)
  md_path = os.path.splitext(path)[0] + '.md'
  text = (to_markdown or markdown)(report)
  with open(md_path, 'w') as f:
    f.write(text)
  return {'json': path, 'md': md_path}, text


# -------------------------------------------------------------------- main --

def define_flags(flag_values=FLAGS):
  kw = dict(flag_values=flag_values)
  define_common_flags(flag_values)
  flags.DEFINE_integer('crop', None, 'Override the presets\' crop.', **kw)
  flags.DEFINE_multi_string('set', [], 'Any Config flag for every row, e.g. '
                            '--set=blocks=1 (repeatable).', **kw)
  flags.DEFINE_list('presets', ['paper_x2', 'paper_x4', 'demo'],
                    'Presets (flags/<name>.flags).', **kw)
  flags.DEFINE_list('variants', ['fused', 'unfused'], 'Any of fused, unfused, fused_bf16.', **kw)
  flags.DEFINE_bool('components', True, 'Also time G, U, D and UD apart.', **kw)
  flags.DEFINE_string('torch_src', None, 'The authors\' PyTorch `src/` folder (a copy outside '
                      'this repository): also time their train.py at paper_x2 settings, '
                      'after our rows, on the same image.', **kw)
  flags.DEFINE_list('stage_presets', [], 'Non-training presets (best_x2, best_x4) to time '
                    'stage by stage on one LR photo of --lr_side px.', **kw)
  flags.DEFINE_integer('lr_side', 0, 'LR side for --stage_presets; 0: 128 at x2, 96 at x4 '
                       '(the report images\' sizes).', **kw)
  flags.DEFINE_integer('torch_steps', 8, 'Timed PyTorch iterations.', **kw)
  flags.DEFINE_integer('torch_warmup', 2, 'Untimed first PyTorch iterations.', **kw)
  flags.DEFINE_integer('peak_matmul', 2048, 'Side of the peak matmul.', **kw)
  flags.DEFINE_list('peak_conv', ['1', '256', '256', '64', '64'],
                    'Peak conv N,H,W,Cin,Cout (3x3 kernel).', **kw)


def _child_main(one):
  import jax  # pylint: disable=g-import-not-at-top
  log = lambda m: print(m, file=sys.stderr, flush=True)
  if one == 'peak':
    result = measure_peak(FLAGS.steps, FLAGS.warmup, FLAGS.repeats, FLAGS.peak_matmul,
                          tuple(int(v) for v in FLAGS.peak_conv), FLAGS.budget_s)
  elif one.endswith(':stages'):
    result = stage_row(one.split(':')[0], FLAGS.lr_side, FLAGS.repeats, log)
  else:
    preset, variant = one.split(':')
    result = speed_row(preset, variant, crop=FLAGS.crop, sets=FLAGS.set, steps=FLAGS.steps,
                       warmup=FLAGS.warmup, repeats=FLAGS.repeats,
                       components=FLAGS.components, log=log, budget_s=FLAGS.budget_s)
  result['machine'] = machine_info()
  del jax
  emit(result)


def main(argv):
  del argv
  if FLAGS._one:  # pylint: disable=protected-access
    return _child_main(FLAGS._one)  # pylint: disable=protected-access
  bad = [v for v in FLAGS.variants if v not in VARIANTS]
  if bad:
    raise app.UsageError(f'--variants takes {",".join(VARIANTS)}; got {",".join(bad)}')
  for p in FLAGS.presets:
    load_config(p)  # fail early on a missing preset
  args = [a for a in sys.argv[1:] if not a.startswith(('--_one', '--results'))]
  log = lambda m: print(m, flush=True)
  log('peak: matmul and conv')
  peak = run_child(['benchmarks.speed', '--_one=peak'] + args, FLAGS.row_timeout, log)
  machine = peak.pop('machine', None)
  rows = []
  report = {
      'machine': machine or {k: '?' for k in ('device_kind', 'platform', 'cpu_count',
                                              'jax_version', 'date')},
      'settings': {'steps': FLAGS.steps, 'warmup': FLAGS.warmup, 'repeats': FLAGS.repeats,
                   'budget_s': FLAGS.budget_s, 'crop': FLAGS.crop, 'set': FLAGS.set,
                   'torch_src': FLAGS.torch_src},
      'peak': peak, 'rows': rows,
  }
  path = FLAGS.results or os.path.join(ROOT, 'benchmarks', 'results',
                                       f'speed_{socket.gethostname()}.json')
  for preset in FLAGS.presets:
    for variant in FLAGS.variants:
      log(f'{preset} {variant}')
      row = run_child(['benchmarks.speed', f'--_one={preset}:{variant}'] + args,
                      FLAGS.row_timeout, log)
      report['machine'] = row.pop('machine', None) or report['machine']
      rows.append({'preset': preset, 'variant': variant, **row})
      if 'error' not in row:
        log(f'  {row["step_s"]:.4g} s/step, compile {row["compile_s"]:.1f} s')
      write_report(report, path)  # row by row: a timeout loses nothing measured
  for preset in FLAGS.stage_presets:
    log(f'{preset} stages')
    row = run_child(['benchmarks.speed', f'--_one={preset}:stages'] + args, FLAGS.row_timeout,
                    log)
    report['machine'] = row.pop('machine', None) or report['machine']
    report.setdefault('stage_rows', []).append({'preset': preset, **row})
    write_report(report, path)
  if FLAGS.torch_src:
    log(f'{TORCH_PRESET} pytorch ({FLAGS.torch_src})')
    report['torch'] = torch_row(FLAGS.torch_src, FLAGS.torch_steps, FLAGS.torch_warmup,
                                FLAGS.row_timeout, log)
    if 'error' not in report['torch']:
      log(f'  {report["torch"]["step_s"]:.4g} s/step')
  paths, text = write_report(report, path)
  print(text)
  log(f'wrote {paths["json"]} and {paths["md"]}')
  return 1 if any('error' in r for r in rows) else 0


if __name__ == '__main__':
  define_flags()
  app.run(main)
