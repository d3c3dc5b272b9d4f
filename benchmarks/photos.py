r"""Whole photos through the CLI: seconds, peak memory and megapixels per second.

Each row runs `python -m ike_jax.main --image=<photo> --preset=<preset>` in a
fresh subprocess (compile included, as a user runs it) and records its wall
time, its peak resident memory (the child's ru_maxrss) and the LR megapixels
per second; the median over --repeats runs. The photos are mosaics of the
offline photo set (`datasets.OFFLINE_IMAGES`, 300x300 centre crops, cycled
in order), cut to the sizes of common cameras:

  0.25 MP  612x408      1.4 MP  1440x960      5 MP  2736x1824      12 MP  4000x3000

Rows are written to --results (JSON) as they finish, and a markdown table
beside it.

  python -m benchmarks.photos --presets=best_x2,best_x4 --megapixels=0.25,1.4,5,12 \
      --results=benchmarks/results/photos.json
"""

import os
import subprocess
import sys
import tempfile
import time

from absl import flags
import numpy as np

from benchmarks import checks
from benchmarks import datasets
from benchmarks import timing
from ike_jax import cli
from ike_jax import errors
from ike_jax import estimate
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import tiling

FLAGS = flags.FLAGS
SIZES = {0.25: (612, 408), 1.4: (1440, 960), 5.0: (2736, 1824), 12.0: (4000, 3000)}
PIECE = 300  # px: side of each photo in the mosaic (the smallest offline photo)


def define_flags():
  flags.DEFINE_list('presets', ['best_x2', 'best_x4'], 'Presets timed.')
  flags.DEFINE_list('megapixels', ['0.25', '1.4', '5', '12'], f'Of {sorted(SIZES)}.')
  flags.DEFINE_integer('repeats', 3, 'Runs per row up to 2 MP (the median is reported).')
  flags.DEFINE_integer('repeats_large', 1, 'Runs per row above 2 MP.')
  flags.DEFINE_list('extra', [], 'More CLI flags for every run, e.g. max_memory_gb=2.')
  flags.DEFINE_string('results', None, 'JSON written row by row (a .md beside).')


def mosaic(width, height):
  """A (height, width, 3) uint8 photo tiled from the offline photos' centre crops."""
  names = list(datasets.OFFLINE_IMAGES)
  rows = -(-height // PIECE)
  cols = -(-width // PIECE)
  out = np.zeros((rows * PIECE, cols * PIECE, 3), np.uint8)
  for n in range(rows * cols):
    img = np.asarray(datasets.OFFLINE_IMAGES[names[n % len(names)]]())[..., :3]
    r, c = divmod(n, cols)
    out[r * PIECE:(r + 1) * PIECE, c * PIECE:(c + 1) * PIECE] = datasets.center_crop(
        img, PIECE, multiple=1)
  return out[:height, :width]


def run_once(photo, preset, extra=()):
  """(wall seconds, peak RSS bytes, output path) of one CLI run in a fresh process."""
  out_dir = tempfile.mkdtemp(prefix='photos_')
  env = dict(os.environ)
  env['PYTHONPATH'] = timing.ROOT + os.pathsep + env.get('PYTHONPATH', '')
  cmd = [sys.executable, '-m', 'ike_jax.main', f'--image={photo}', f'--preset={preset}',
         f'--output_dir={out_dir}', *[f'--{e.lstrip("-")}' for e in extra]]
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=timing.ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  lines = []
  for line in proc.stdout:
    lines.append(line.rstrip())
    print('   ', line.rstrip(), flush=True)
  _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - t0
  proc.returncode = os.waitstatus_to_exitcode(status)
  if proc.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n' + '\n'.join(lines[-20:]))
  rss = usage.ru_maxrss * (1 if sys.platform == 'darwin' else 1024)
  return wall, rss, out_dir


def predicted_gb(preset, lr_shape, light=False):
  """The predicted peak (`tiling.memory_bytes`, the estimate's `PEAK_BYTES` included,
  and with `light` what --linear_light holds besides, `postprocess.light_bytes`)
  for the windows the pipeline cuts the photo into (`postprocess.windows`)."""
  cfg = timing.load_config(preset)
  extra = estimate.peak_bytes(cfg) + (postprocess.light_bytes(lr_shape, cfg.scale) if light else 0)
  plan = postprocess.windows(lr_shape, cfg.post, cfg.scale, extra_bytes=extra)
  return tiling.memory_bytes(plan, lr_shape, cfg.scale, extra) / 2 ** 30


def main(argv):
  del argv
  megapixels = checks.numbers('megapixels', FLAGS.megapixels)
  if set(megapixels) - set(SIZES):
    raise errors.UserError(f'--megapixels: of {", ".join(f"{m:g}" for m in sorted(SIZES))}')
  unknown = [p for p in FLAGS.presets if p not in presets.preset_names()]
  if unknown:
    raise errors.UserError(f'--presets: no {", ".join(unknown)}; there are '
                           f'{", ".join(presets.preset_names())}')
  results = FLAGS.results or timing.default_results('photos')
  report = {'machine': timing.machine_info(), 'command': ' '.join(sys.argv), 'rows': []}
  # --extra=linear_light (any dashes, =true): the prediction counts the light path too.
  light = any(e.lstrip('-').split('=')[0] == 'linear_light'
              and e.partition('=')[2].lower() in ('', 'true', '1') for e in FLAGS.extra)
  folder = tempfile.mkdtemp(prefix='photos_in_')
  for mp in megapixels:
    width, height = SIZES[mp]
    photo = os.path.join(folder, f'mosaic_{width}x{height}.png')
    outputs.write_png(photo, mosaic(width, height))
    for preset in FLAGS.presets:
      repeats = FLAGS.repeats if mp <= 2 else FLAGS.repeats_large
      runs = [run_once(photo, preset, FLAGS.extra) for _ in range(repeats)]
      walls = [r[0] for r in runs]
      row = {'preset': preset, 'megapixels': mp, 'lr_shape': [height, width],
             'seconds': float(np.median(walls)), 'seconds_all': walls,
             'peak_rss_gb': max(r[1] for r in runs) / 2 ** 30,
             'lr_megapixels_per_s': width * height / 1e6 / float(np.median(walls)),
             'predicted_peak_gb': predicted_gb(preset, (height, width), light)}
      report['rows'].append(row)
      print(f"{preset} {mp:5.2f} MP ({width}x{height}): {row['seconds']:.1f} s, "
            f"{row['peak_rss_gb']:.2f} GB peak, {row['lr_megapixels_per_s']:.3f} MP/s", flush=True)
      timing.write_report(report, results, markdown)  # row by row
  print(markdown(report))


def markdown(report):
  """The table of a report."""
  m = report['machine']
  lines = [f"Whole photos through the CLI ({m['cpu_count']} x {m['cpu_model']}, JAX "
           f"{m['jax_version']}, {m['date'][:10]}); compile included, median of runs.", '',
           '| preset | photo (LR) | seconds | peak RSS (predicted) | LR MP/s |', '|---|---|---|---|---|']
  for r in report['rows']:
    lines.append(f"| {r['preset']} | {r['megapixels']:g} MP ({r['lr_shape'][1]}x"
                 f"{r['lr_shape'][0]}) | {r['seconds']:.1f} | {r['peak_rss_gb']:.2f} GB "
                 f"({r['predicted_peak_gb']:.2f}) | {r['lr_megapixels_per_s']:.3f} |")
  return '\n'.join(lines)


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
