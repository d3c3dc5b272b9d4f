r"""The lever table: what each lever adds over bicubic, with seeds.

  python -m benchmarks.levers --flagfile=flags/demo.flags --dataset=offline \
      [--scale=2] [--num_images=4] [--seeds=3] [--exact=true] [--ceilings=true] \
      [--best_flagfile=flags/kernelgan_x2.flags] [--results=benchmarks/results/levers_x2.json]

Trains the preset once per (image, seed) and scores, against the same bicubic:
  IKE                      the preset's SR image
  + self-ensemble          8 flips/rotations averaged (--self_ensemble)
  + refine (G kernel)      back-projection onto G's estimated kernel (--refine)
  + ZSSR (G kernel)        ZSSR net trained with G's estimated kernel (--zssr)
  exact G                  retrained with --nobicubic_residual --squeeze=haar
                           --inverse=exact (G(SR) reproduces the LR exactly)
  <name>                   retrained with each --best_flagfile=<path>/<name>.flags
  ceiling: refine / ZSSR (true kernel)   the same levers given the true kernel
Per row: mean over images of the Y-PSNR / SSIM-Y gain over bicubic (shave =
scale), then mean +- std over seeds, and the seconds the row costs per image
(training for trained rows, the extra work for the others). The preset's
flags (iterations, crop, ...) apply to every trained row. Rows are written
to --results as they come (`benchmarks/rows.py`): the same command run again
keeps the rows measured and measures the rest; the four preset rows share one
training, done again while any of them is missing.
"""

import os
import sys
import time

from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import quality
from benchmarks import rows as rows_lib
from ike_jax import crops
from ike_jax import data
from ike_jax import errors
from ike_jax import estimate
from ike_jax import infer
from ike_jax import loop
from ike_jax import metrics
from ike_jax import outputs
from ike_jax import pipeline
from ike_jax import postprocess
from ike_jax import presets
from ike_jax import refine
from ike_jax import resize
from ike_jax import zssr as zssr_lib
from ike_jax.estimators import readout

FLAGS = flags.FLAGS
EXACT = dict(bicubic_residual=False, squeeze='haar', inverse='exact')
PRESET_ROWS = ('IKE', '+ self-ensemble', '+ refine (G kernel)', '+ ZSSR (G kernel)')
CEILINGS = ('ceiling: bicubic + refine (true kernel)', 'ceiling: ZSSR (true kernel)')


def _train(cfg, imgs, seeds, log):
  """Trains every (image, seed); returns ([(g, u) per pair], seconds per pair)."""
  pairs = [(img, seed) for seed in seeds for img in imgs]
  size = 1 if jax.default_backend() == 'cpu' else len(pairs)
  models, t0 = [], time.perf_counter()
  train_cfg = estimate.training_config(cfg)
  for start in range(0, len(pairs), size):
    chunk = pairs[start:start + size]
    plans = [crops.plan_crops(lr, train_cfg.scale, train_cfg.crop, cfg.run.iterations, seed)
             for lr, seed in chunk]
    states, _, _ = loop.fit([data.to_model(lr) for lr, _ in chunk], plans, train_cfg, cfg.run,
                            seeds=[seed for _, seed in chunk], log=lambda m: None)
    models += [jax.tree.map(lambda a, k=k: a[k], (states.g, states.u)) for k in range(len(chunk))]
    log(f'  trained {start + len(chunk)}/{len(pairs)}')
  return models, (time.perf_counter() - t0) / len(pairs), pairs


def _sr(models, pairs, cfg):
  """SR images of every pair (bicubic for an estimator without an inverse)."""
  g = jax.tree.map(lambda *a: jnp.stack(a), *[m[0] for m in models])
  u = jax.tree.map(lambda *a: jnp.stack(a), *[m[1] for m in models])
  return infer.super_resolve_many(g, u, [data.to_model(lr) for lr, _ in pairs],
                                  estimate.training_config(cfg),
                                  self_ensemble=cfg.post.self_ensemble)


def _post(g, sr, lr, cfg):
  """`sr` after the post-processing `cfg.post` asks for, with G's estimated
  kernel (what `pipeline.super_resolve_files` does after inference)."""
  train_cfg = estimate.training_config(cfg)
  k, origin = postprocess.sr_kernel(readout.estimate_kernel(g, train_cfg), train_cfg.scale,
                                    cfg.scale, cfg.post.lever_kernel_taps)
  return postprocess.apply(sr, lr, k, origin, cfg.post, cfg.scale, cfg.run.seed,
                           zssr_crop=min(cfg.train.crop, 64))


def _timed(fn):
  t = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t


def measure(cfg, samples, seeds, *, exact=True, ceilings=True, best=(), preset_rows=True,
            log=print, table=None):
  """Returns {row: {'gain_y': [per seed], 'gain_ssim': [...], 'seconds': s}}.

  Each row is added to `table` (a named `rows.Rows`) as it comes; the rows it
  holds already are kept, not measured.
  """
  table = table if table is not None else rows_lib.Rows(None, {}, key=None)
  s = cfg.scale
  lrs = [crops.trim_to_multiple(data.load_image(x.lr_path, log=log), s)[0] for x in samples]
  hrs = [data.load_image(x.hr_path, log=log)[:lr.shape[0] * s, :lr.shape[1] * s]
         for x, lr in zip(samples, lrs)]
  kernels = [data.load_kernel(x.kernel_path) if x.kernel_path else None for x in samples]
  bic = [metrics.compare(resize.bicubic_upscale(lr, s), hr, s) for lr, hr in zip(lrs, hrs)]
  n = len(samples)

  def missing(name):
    if table.get(name) is None:
      return True
    log(f'{name}: kept')
    return False

  def score(name, srs_model, seconds):
    """srs_model: SR images in [-1, 1], ordered (seed, image)."""
    gy, gs = [], []
    for i in range(len(seeds)):
      m = [metrics.compare(data.from_model(np.asarray(srs_model[i * n + j])), hrs[j], s)
           for j in range(n)]
      gy.append(float(np.mean([a['psnr_y'] - b['psnr_y'] for a, b in zip(m, bic)])))
      gs.append(float(np.mean([a['ssim_y'] - b['ssim_y'] for a, b in zip(m, bic)])))
    table.add({'gain_y': gy, 'gain_ssim': gs, 'seconds': seconds}, name)
    log(f'{name}: {np.mean(gy):+.2f} dB (seeds {", ".join(f"{v:+.2f}" for v in gy)})')

  pairs = [(lr, seed) for seed in seeds for lr in lrs]
  imgs = [data.to_model(lr) for lr, _ in pairs]
  names = list(PRESET_ROWS) if preset_rows else []
  todo = [name for name in names if missing(name)]
  if todo:
    log(f'training {cfg.run.iterations} steps x {n} images x {len(seeds)} seeds')
    models, train_s, _ = _train(cfg, lrs, seeds, log)
    srs, t = _timed(lambda: _sr(models, pairs, cfg))
    if 'IKE' in todo:
      score('IKE', srs, train_s + t / len(pairs))
    if '+ self-ensemble' in todo:
      ens, t = _timed(lambda: _sr(models, pairs, cfg.replace(self_ensemble=True)))
      score('+ self-ensemble', ens, t / len(pairs))
    if '+ refine (G kernel)' in todo:
      refine_cfg = cfg.replace(refine=True, zssr=False)
      refined, t = _timed(lambda: [_post(m[0], sr, img, refine_cfg)
                                   for m, sr, img in zip(models, srs, imgs)])
      score('+ refine (G kernel)', refined, t / len(pairs))
    if '+ ZSSR (G kernel)' in todo:
      zssr_cfg = cfg.replace(zssr=True, refine=False)
      zssr, t = _timed(lambda: [_post(m[0], sr, img, zssr_cfg)
                                for m, sr, img in zip(models, srs, imgs)])
      score('+ ZSSR (G kernel)', zssr, t / len(pairs))
  trained_rows = ([('exact G', EXACT)] if exact else []) + list(best)
  for name, extra in trained_rows:
    names.append(name)
    if not missing(name):
      continue
    cfg_row = cfg.replace(**extra) if isinstance(extra, dict) else extra
    log(f'{name}: training')
    m_row, train_row, _ = _train(cfg_row, lrs, seeds, log)
    # An estimator without an inverse gives bicubic here, as in the pipeline.
    srs_row, t = _timed(lambda: _sr(m_row, pairs, cfg_row))
    t0 = time.perf_counter()
    if postprocess.wanted(cfg_row.post):
      srs_row = [_post(m[0], sr, img, cfg_row) for m, sr, img in zip(m_row, srs_row, imgs)]
    t += time.perf_counter() - t0
    score(name, srs_row, train_row + t / len(pairs))
  if ceilings and all(k is not None for k in kernels):
    names += CEILINGS
    ks = [jnp.asarray(kernels[j % n], jnp.float32) for j in range(len(pairs))]
    if missing(CEILINGS[0]):
      up = [resize.matlab(jnp.asarray(img)[None], s)[0] for img in imgs]
      out, t = _timed(lambda: [refine.back_project(u0, jnp.asarray(img), k, s,
                                                   iterations=cfg.post.refine_iterations,
                                                   prior_weight=cfg.post.refine_prior)
                               for u0, img, k in zip(up, imgs, ks)])
      score(CEILINGS[0], out, t / len(pairs))
    if missing(CEILINGS[1]):
      out, t = _timed(lambda: [zssr_lib.apply_zssr(zssr_lib.train_zssr(
          jax.random.PRNGKey(seed), jnp.asarray(img), k, s, steps=cfg.post.zssr_steps,
          crop=min(cfg.train.crop, 64))[0], jnp.asarray(img), s)
          for (_, seed), img, k in zip(pairs, imgs, ks)])
      score(CEILINGS[1], out, t / len(pairs))
  return {name: table.get(name) for name in names}


def markdown(report):
  lines = [f"Lever table, x{report['scale']}, {report['num_images']} images, seeds "
           f"{report['seeds']}, preset `{report['flagfile']}` ({report['iterations']} steps, "
           f"crop {report['crop']}), device {report['device']}.", '',
           '| row | Y-PSNR gain (dB) | SSIM-Y gain | seconds per image |', '|---|---|---|---|']
  for name, r in report['rows'].items():
    gy, gs = np.asarray(r['gain_y']), np.asarray(r['gain_ssim'])
    lines.append(f'| {name} | {gy.mean():+.2f} ± {gy.std():.2f} | {gs.mean():+.4f} ± {gs.std():.4f} '
                 f'| {r["seconds"]:.1f} |')
  return '\n'.join(lines)


def main(argv):
  del argv
  cfg = presets.config_from_flag_values(FLAGS)
  samples = quality.load_samples(FLAGS, cfg.scale)
  if any(x.hr_path is None for x in samples):
    raise quality.errors.UserError('the lever table needs HR images')
  best = [(os.path.splitext(os.path.basename(p))[0], presets.config_from_flagfile(p))
          for p in FLAGS.best_flagfile]
  seeds = [cfg.run.seed + i for i in range(FLAGS.seeds)]
  path = FLAGS.results or os.path.join('benchmarks', 'results', f'levers_x{cfg.scale}.json')
  header = {'scale': cfg.scale, 'num_images': len(samples), 'seeds': seeds,
            'flagfile': next((a.split('=', 1)[1] for a in sys.argv
                              if a.startswith('--flagfile=')), None),
            'iterations': cfg.run.iterations, 'crop': cfg.train.crop,
            'device': str(jax.devices()[0]), 'best_flagfile': FLAGS.best_flagfile,
            'config': cfg.to_dict(), 'data': quality.data_flags()}
  table = rows_lib.Rows(path, header, key=None, derived=('argv',), error=errors.UserError)
  rows = measure(cfg, samples, seeds, exact=FLAGS.exact, ceilings=FLAGS.ceilings, best=best,
                 preset_rows=FLAGS.preset_rows, log=lambda m: print(m, flush=True), table=table)
  rows.update(table.table['rows'])  # and the rows of earlier runs this one did not ask for
  report = {**table.table, 'rows': rows, 'argv': sys.argv[1:]}
  outputs.write_json(path, report)
  md = markdown(report)
  outputs.write_bytes_atomic(os.path.splitext(path)[0] + '.md', (md + '\n').encode())
  print(md)
  print(f'wrote {path}')
  return 0


if __name__ == '__main__':
  presets.define_config_flags(FLAGS)
  quality.define_dataset_flags('runs/levers')
  flags.DEFINE_bool('exact', True, 'Also train the exactly invertible G row.')
  flags.DEFINE_bool('preset_rows', True, 'Train the preset and score its lever rows.')
  flags.DEFINE_bool('ceilings', True, 'Also score the levers with the true kernel.')
  flags.DEFINE_multi_string('best_flagfile', [], 'Presets to train as extra rows (repeatable).')
  quality.entry(main)
