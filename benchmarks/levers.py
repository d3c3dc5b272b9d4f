"""Issue 9 levers on one image: train once, then SR plain / refined / ensembled.

  python -m benchmarks.levers --flagfile=flags/demo.flags \
      --lr=samples/astronaut_lr_x2.png --hr=samples/astronaut_hr.png

Prints Y-PSNR / SSIM (shave = scale) for bicubic, IKE, IKE + --refine (back
projection onto G's estimated kernel), IKE + --self_ensemble, and, when
--kernel is given, bicubic refined with the true kernel (the lever's ceiling).
"""

import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from ike_jax import data
from ike_jax import datasets
from ike_jax import evaluate
from ike_jax import kernel
from ike_jax import metrics
from ike_jax import presets
from ike_jax import refine
from ike_jax import resize
from ike_jax import run
from ike_jax import train

presets.define_config_flags(flags.FLAGS)
flags.DEFINE_string('lr', 'samples/astronaut_lr_x2.png', 'LR input.')
flags.DEFINE_string('hr', 'samples/astronaut_hr.png', 'Ground truth.')
flags.DEFINE_string('kernel', None, 'Optional true kernel (ceiling of --refine).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  cfg = presets.config_from_flag_values(FLAGS)
  lr, hr = data.load_image(FLAGS.lr), data.load_image(FLAGS.hr)
  img = data.to_model(lr)
  plan = data.plan_crops(lr, cfg.scale, cfg.crop, cfg.iterations, cfg.seed)
  states, _, timings = train.fit([img], [plan], cfg, log=lambda m: None)
  g = jax.tree.map(lambda a: a[0], states.g)
  score = lambda sr: metrics.compare(sr, hr, cfg.scale)
  rows = {'bicubic': (score(run.bicubic_upscale(lr, cfg.scale)), 0.0)}
  t = time.perf_counter()
  sr = evaluate.super_resolve_many(states.g, states.u, [img], cfg)[0]
  rows['IKE'] = (score(data.from_model(sr)), time.perf_counter() - t)
  t = time.perf_counter()
  refined = run.refine_with_estimated_kernel(g, sr, img, cfg)
  rows['IKE + refine (estimated kernel)'] = (score(data.from_model(refined)), time.perf_counter() - t)
  t = time.perf_counter()
  ens = evaluate.super_resolve_many(states.g, states.u, [img], cfg.replace(self_ensemble=True))[0]
  rows['IKE + self-ensemble'] = (score(data.from_model(ens)), time.perf_counter() - t)
  if FLAGS.kernel:
    k = datasets.load_kernel(FLAGS.kernel)
    t = time.perf_counter()
    up = resize.matlab(jnp.asarray(img)[None], cfg.scale)[0]
    best = refine.back_project(up, jnp.asarray(img), jnp.asarray(k), cfg.scale)
    rows['bicubic + refine (true kernel)'] = (score(data.from_model(best)), time.perf_counter() - t)
  est = kernel.estimate_kernel(g, cfg)
  print(f'train: {timings["total_s"]:.0f} s ({cfg.iterations} steps); '
        f'estimated kernel sum {est["sum"]:.3f}, linear {est["linear"]}')
  print('| method | Y-PSNR | Y-SSIM | extra time (s) |\n|---|---|---|---|')
  for name, (m, secs) in rows.items():
    print(f'| {name} | {m["psnr_y"]:.2f} | {m["ssim_y"]:.4f} | {secs:.1f} |')
  return 0


if __name__ == '__main__':
  sys.exit(app.run(main))
