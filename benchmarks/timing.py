"""What the timing scripts share: the timer, the machine, child rows, reports.

`benchmarks.speed` (the training step), `benchmarks.stages` (non-training
presets stage by stage), `benchmarks.side_by_side` (against the authors'
PyTorch code) and `benchmarks.throughput` (many images at once) import this
module and nothing of each other's but `speed.measure_train_step`.

Each measured row runs in its own subprocess (`run_child`; the child prints one
JSON line with `emit`), so compile caches, the memory high-water mark and
thread pools never mix between rows, and compile times are real compiles.
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

from absl import flags
import numpy as np

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS_DIR = os.path.join(ROOT, 'flags')
SAMPLE = os.path.join(ROOT, 'samples', 'astronaut_lr_x2.png')
RESULT_PREFIX = 'BENCH_JSON '


def define_common_flags(flag_values=FLAGS):
  """The timing flags every script takes."""
  kw = dict(flag_values=flag_values)
  flags.DEFINE_integer('steps', 10, 'Timed steps per repeat.', **kw)
  flags.DEFINE_integer('warmup', 2, 'Untimed steps after the compiling one.', **kw)
  flags.DEFINE_integer('repeats', 3, 'Repeats of --steps timed steps.', **kw)
  flags.DEFINE_float('budget_s', 120, 'Timed seconds per measurement, about: fewer steps '
                     'per repeat (>= 1) when steps are slow. 0: always --steps.', **kw)
  flags.DEFINE_string('results', None, 'Results JSON (a .md is written beside).', **kw)
  flags.DEFINE_integer('row_timeout', 7200, 'Seconds before a row\'s subprocess is killed.', **kw)
  flags.DEFINE_string('_one', None, 'Internal: measure one row and print it as JSON.', **kw)


def default_results(name):
  """benchmarks/results/<name>_<host>.json."""
  return os.path.join(ROOT, 'benchmarks', 'results', f'{name}_{socket.gethostname()}.json')


# ----------------------------------------------------------------- configs --

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


# ------------------------------------------------------------------ images --

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


def photos(batch, side):
  """`batch` (side, side, 3) uint8 photos, cycling through the offline set."""
  from benchmarks import datasets  # pylint: disable=g-import-not-at-top
  names = list(datasets.OFFLINE_IMAGES)
  out = []
  for i in range(batch):
    img = np.asarray(datasets.OFFLINE_IMAGES[names[i % len(names)]]())
    img = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img[..., :3]
    img = datasets.center_crop(img, side, multiple=1)
    out.append(tile_image(img.astype(np.uint8), side))
  return out


# ----------------------------------------------------------------- machine --

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


def cpu_model():
  """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or None


def machine_info():
  """The device, the host and the versions a figure was measured with."""
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  return {'device_kind': dev.device_kind, 'platform': dev.platform,
          'device_count': jax.device_count(), 'jax_version': jax.__version__,
          'cpu_count': os.cpu_count(), 'cpu_model': cpu_model(), 'host': socket.gethostname(),
          'python': platform.python_version(), 'machine': platform.machine(),
          'compilation_cache_dir': jax.config.jax_compilation_cache_dir or None,
          'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}


# -------------------------------------------------------------------- XLA --

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


# ------------------------------------------------------------------- timer --

def time_calls(call, steps, warmup, repeats, budget_s=None):
  """Times `call()` (which must block until done) the same way everywhere.

  The first call (compilation included, unless compiled ahead) is timed alone,
  then `warmup` calls, then `repeats` x `steps` timed calls. With `budget_s`,
  `steps` shrinks (to no less than 1) so the timed calls take about `budget_s`
  at the warm-up's pace.
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


def blocking(fn, *args):
  """A call of `fn(*args)` that waits for its result."""
  import jax  # pylint: disable=g-import-not-at-top
  return lambda: jax.block_until_ready(fn(*args))


# ------------------------------------------------------------- child rows --

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
  """Prints a child's result line (what `run_child` reads)."""
  print(RESULT_PREFIX + json.dumps(result), flush=True)


def child_args(argv):
  """The parent's flags for a child: all but `--_one` and `--results`."""
  return [a for a in argv[1:] if not a.startswith(('--_one', '--results'))]


# ----------------------------------------------------------------- reports --

def fmt_value(v, fmt='{:.3g}'):
  return '—' if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)


def flop_cells(row, peak_gflops):
  """(GFLOP per step, GFLOP/s, % of peak) of a timed row; None where unknown."""
  gflop = None if row['flops_per_step'] is None else row['flops_per_step'] / 1e9
  rate = None if row['flops_per_s'] is None else row['flops_per_s'] / 1e9
  frac = None if rate is None or not peak_gflops else 100 * rate / peak_gflops
  return gflop, rate, frac


def title(what, machine):
  """A report's heading: what was timed, on which machine, with which versions."""
  m = machine or {}
  cpu = f', {m["cpu_model"]}' if m.get('cpu_model') else ''
  return (f'# {what}: {m.get("device_kind")} ({m.get("platform")}), '
          f'{m.get("device_count", 1)} device(s), {m.get("cpu_count")} CPUs{cpu}, '
          f'jax {m.get("jax_version")}, {m.get("date")}')


def write_report(report, path, to_markdown):
  """Writes the report as JSON and, beside it, as Markdown (`to_markdown`), each
  atomically (a report rewritten row by row is never seen half written)."""
  from ike_jax import outputs  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  outputs.write_json(path, report)
  md_path = os.path.splitext(path)[0] + '.md'
  text = to_markdown(report)
  outputs.write_bytes_atomic(md_path, text.encode())
  return {'json': path, 'md': md_path}, text


def finish(report, path, to_markdown, log, failed):
  """A timing script's last step: the report written, printed and named; the exit
  status, 1 when `failed` (a row that errored), else 0."""
  paths, text = write_report(report, path, to_markdown)
  print(text)
  log(f'wrote {paths["json"]} and {paths["md"]}')
  return 1 if failed else 0
