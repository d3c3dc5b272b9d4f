"""Super-resolve images end to end: load, train, infer, score, write outputs.

`main` parses flags and calls `super_resolve_files`; benchmarks call it too.
Per image `<stem>`, in the output directory:
  <stem>_x{s}.png        the SR image
  <stem>_compare.png     bicubic | IKE [| HR]
  <stem>_losses.png      loss curves
  <stem>_metrics.json    config, seed, timings, final losses, PSNR/SSIM with --hr
  <stem>_kernel.{npy,png,mat}   the estimated down-scaling kernel (and its error
                                against a known kernel)
"""

import dataclasses
import hashlib
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import checkpoint
from ike_jax import config as config_lib
from ike_jax import data
from ike_jax import datasets
from ike_jax import degradations
from ike_jax import errors
from ike_jax import evaluate
from ike_jax import kernel as kernel_lib
from ike_jax import metrics as metrics_lib
from ike_jax import outputs
from ike_jax import refine
from ike_jax import resize
from ike_jax import train


@dataclasses.dataclass
class Job:
  """One image to super-resolve (paths) and what is known about it."""
  lr_path: str
  hr_path: str | None = None
  kernel_path: str | None = None

  @property
  def stem(self):
    return os.path.splitext(os.path.basename(self.lr_path))[0]


def output_names(stem, scale):
  names = {'sr': f'{stem}_x{scale}.png', 'compare': f'{stem}_compare.png',
           'losses': f'{stem}_losses.png', 'metrics': f'{stem}_metrics.json'}
  names.update(zip(('kernel_npy', 'kernel_png', 'kernel_mat'), kernel_lib.kernel_output_names(stem)))
  return names


def bicubic_upscale(lr_u8, scale):
  """MATLAB-style bicubic up-scaling of a uint8 image (the baseline)."""
  up = resize.imresize_matlab(lr_u8.astype(np.float32), scale)
  return np.clip(np.round(up), 0, 255).astype(np.uint8)


def _load_job(job, cfg, log):
  """Loads and checks one image; returns (lr_u8 trimmed, hr_u8 or None)."""
  s = cfg.scale
  lr = data.load_image(job.lr_path, log=log)
  full_shape = lr.shape
  lr, (dh, dw) = data.trim_to_multiple(lr, s)
  if dh or dw:
    log(f'{job.lr_path}: trimmed {dh} rows and {dw} columns to a multiple of {s}; '
        f'output will be {lr.shape[1] * s}x{lr.shape[0] * s}')
  if min(lr.shape[:2]) < cfg.crop:  # checked here, before any batch trains
    raise errors.InputError(
        f'{job.lr_path}: image is {lr.shape[1]}x{lr.shape[0]} pixels'
        f'{" after trimming" if dh or dw else ""}; --crop {cfg.crop} needs at least '
        f'{cfg.crop}x{cfg.crop}: lower --crop or use a larger image')
  hr = data.load_image(job.hr_path, log=log) if job.hr_path else None
  if job.kernel_path and not os.path.isfile(job.kernel_path):
    raise errors.InputError(f'{job.kernel_path}: no such file (--kernel)')
  if hr is not None and hr.shape[:2] == (full_shape[0] * s, full_shape[1] * s):
    hr = hr[:lr.shape[0] * s, :lr.shape[1] * s]  # the HR of the untrimmed LR: trim alike
  return lr, hr


# Inputs above this many LR pixels are super-resolved tile by tile unless
# --tile says otherwise (a 2K LR image at x4 would need tens of GB otherwise).
AUTO_TILE_PIXELS = 768 * 768
AUTO_TILE = 256


@dataclasses.dataclass(frozen=True)
class Options:
  """How a run is carried out (not what the method computes)."""
  overwrite: bool = False
  batch_size: int = 0          # images trained at once; 0: all of them
  tile: int = 0                # inference tile side (LR pixels); 0: whole image
  checkpoint_every: int = 0    # steps between checkpoints; 0: only on a signal
  resume: bool = False
  process_index: int = 0       # multi-host: this process trains images
  process_count: int = 1       #   process_index, process_index + count, ...


def super_resolve_files(jobs, cfg, output_dir, options=Options(), log=print):
  """Trains IKE on every job's LR image and writes the outputs.

  Images train `options.batch_size` at a time (all at once by default) in one
  vmapped step. Jobs whose outputs are all present are skipped (reported).
  Bad input raises `errors.UserError` before anything is compiled.

  Returns a list of per-image result dicts (what `<stem>_metrics.json` holds,
  or {'image', 'status': 'skipped' | 'diverged'}).
  """
  config_lib.validate(cfg)
  out = outputs.OutputDir(output_dir, options.overwrite)
  out.check_writable()
  names = [output_names(job.stem, cfg.scale) for job in jobs]
  if len({n['sr'] for n in names}) != len(names):
    raise errors.UserError('two inputs share a file name stem; their outputs would collide')
  todo, results = [], []
  for job, name in zip(jobs, names):
    if not options.overwrite and out.is_complete(name.values()):
      log(f'{job.lr_path}: outputs complete in {output_dir}; skipped')
      results.append({'image': job.lr_path, 'status': 'skipped'})
    else:
      todo.append((job, name))
  todo = todo[options.process_index::options.process_count]
  size = options.batch_size or max(len(todo), 1)
  for start in range(0, len(todo), size):
    chunk = todo[start:start + size]
    # A resumed batch may have written some outputs; any other must not find any.
    if not (options.resume and _checkpointer(out, [j for j, _ in chunk], cfg).exists()):
      out.claim([v for _, name in chunk for v in name.values()])
  loaded = [_load_job(job, cfg, log) for job, _ in todo]  # every input checked first

  # One padded shape for the whole run: batches share one compiled step.
  pad_shape = (max((lr.shape[0] for lr, _ in loaded), default=0),
               max((lr.shape[1] for lr, _ in loaded), default=0))
  for start in range(0, len(todo), size):
    batch = list(zip(todo[start:start + size], loaded[start:start + size]))
    if len(todo) > size:
      log(f'batch {start // size + 1}/{-(-len(todo) // size)}: {len(batch)} image(s)')
    results += _train_batch(batch, cfg, out, options, log, pad_shape)
  return results


def _checkpointer(out, jobs, cfg):
  """The checkpoint of one batch: keyed by its inputs and its config."""
  key = hashlib.sha1(('|'.join(os.path.abspath(j.lr_path) for j in jobs)
                      + repr(sorted(cfg.to_dict().items()))).encode()).hexdigest()[:12]
  return checkpoint.Checkpointer(os.path.join(out.path, 'checkpoints', key))


def _train_batch(batch, cfg, out, options, log, pad_shape=None):
  """Trains one batch of (job, names), (lr, hr) together; writes its outputs."""
  jobs = [job for (job, _), _ in batch]
  lrs = [lr for _, (lr, _) in batch]
  train_cfg = training_config(cfg)
  plans = [data.plan_crops(lr, train_cfg.scale, cfg.crop, cfg.iterations, cfg.seed) for lr in lrs]
  images = [data.to_model(lr) for lr in lrs]
  ckpt = _checkpointer(out, jobs, cfg)
  if ckpt.exists() and not options.resume:
    if not options.overwrite:
      raise errors.UserError(f'a checkpoint of this run exists in {ckpt.directory}; pass '
                             '--resume to continue it or --overwrite to start again')
    ckpt.remove()
  with checkpoint.StopFlag() as stop:  # SIGINT/SIGTERM: save a checkpoint, stop
    try:
      states, history, timings = train.fit(
          images, plans, train_cfg, log=log, stop=stop, checkpointer=ckpt,
          checkpoint_every=options.checkpoint_every, pad_shape=pad_shape)
    except checkpoint.Interrupted as err:
      raise errors.Interrupted(
          f'interrupted at step {err.args[0]}; checkpoint saved in {ckpt.directory}; '
          'rerun the same command with --resume to continue') from None
  diverged = history.pop('diverged')

  t0 = time.perf_counter()
  keep = [k for k in range(len(jobs)) if not diverged[k]]
  tile = options.tile
  if not tile and any(lr.shape[0] * lr.shape[1] > AUTO_TILE_PIXELS for lr in lrs):
    tile = AUTO_TILE
    log(f'large input: inference in overlapping {tile}x{tile} tiles (memory bounded; --tile sets it)')
  if cfg.generator == 'deep_linear':  # no inverse: the levers start from bicubic
    srs = [data.to_model(bicubic_upscale(lrs[k], cfg.scale)) for k in keep]
  else:
    srs = evaluate.super_resolve_many(
        jax.tree.map(lambda a: a[np.asarray(keep)], states.g) if keep else None,
        jax.tree.map(lambda a: a[np.asarray(keep)], states.u) if keep else None,
        [images[k] for k in keep], cfg, tile) if keep else []
  srs = {k: apply_levers(jax.tree.map(lambda a, k=k: a[k], states.g), sr, images[k], cfg)
         for k, sr in zip(keep, srs)}
  infer_s = (time.perf_counter() - t0) / max(len(keep), 1)

  results = []
  for k, (((job, names), (lr, hr))) in enumerate(batch):
    if diverged[k]:
      log(f'{job.lr_path}: training diverged (NaN/Inf); no output written for this image')
      results.append({'image': job.lr_path, 'status': 'diverged'})
      continue
    g = jax.tree.map(lambda a: a[k], states.g)
    results.append(_write_image_outputs(
        out, names, job, lr, hr, data.from_model(srs[k]), g,
        {name: v[:, k] for name, v in history.items()}, cfg,
        dict(timings, inference_s=infer_s, images_in_batch=len(jobs))))
  ckpt.remove()
  try:
    os.rmdir(os.path.dirname(ckpt.directory))  # `checkpoints/`, when now empty
  except OSError:
    pass
  return results


def training_config(cfg):
  """The config G trains with. KernelGAN's x4 recipe: its deep linear G
  learns the x2 kernel, and the x4 kernel is derived from it analytically
  (`lever_kernel`), so at x4 that G trains at x2."""
  if cfg.generator == 'deep_linear' and cfg.scale == 4:
    return cfg.replace(scale=2)
  return cfg


def lever_kernel(g, cfg):
  """G's estimated per-colour kernel scaled to unit sum, and its origin.

  The levers need a blur that keeps brightness; under the paper's
  colour-summing bicubic target G's LR map does not sum to 1 (issue 9).
  A deep linear G trained at x2 for an x4 job gives the x4 kernel of
  degrading twice by its x2 kernel (`degradations.analytic_x4_kernel`; the
  origin triples: LR2[j] = sum k2[a] k2[b] x[4j + a + 2b - 3 o2]).
  `--lever_kernel_taps` cuts the kernel G learned (at x4, the x2 kernel,
  before the x4 one is derived from it, as KernelGAN does).
  """
  train_cfg = training_config(cfg)
  est = kernel_lib.estimate_kernel(g, train_cfg)
  per_colour, origin = est['per_colour'], est['origin']
  if cfg.lever_kernel_taps:  # KernelGAN's post-processing, on the kernel G learned
    per_colour = largest_taps(per_colour, cfg.lever_kernel_taps)
  if train_cfg.scale != cfg.scale:  # KernelGAN: x4 from the cut x2 kernel
    per_colour = np.stack([degradations.analytic_x4_kernel(k / k.sum()) for k in per_colour])
    origin = (3 * origin[0], 3 * origin[1])
  per_colour = per_colour / per_colour.sum(axis=(1, 2), keepdims=True)
  return jnp.asarray(per_colour, jnp.float32), origin


def largest_taps(per_colour, n):
  """(C, k, k) kernels with all but each colour's n largest taps set to 0."""
  flat = per_colour.reshape(len(per_colour), -1)
  cut = -np.sort(-flat, axis=1)[:, min(n, flat.shape[1]) - 1]
  return np.where(per_colour >= cut[:, None, None], per_colour, 0.0)


def apply_levers(g, sr, lr, cfg):
  """The SR image after the kernel levers `cfg` asks for: `--zssr` replaces
  it, then `--refine` back-projects it (both with G's estimated kernel)."""
  if cfg.zssr:
    sr = zssr_with_estimated_kernel(g, lr, cfg)
  if cfg.refine:
    sr = refine_with_estimated_kernel(g, sr, lr, cfg)
  return sr


def refine_with_estimated_kernel(g, sr, lr, cfg):
  """Kernel-consistent refinement (issue 9, lever 1): the SR image is moved
  until, blurred by G's estimated kernel (unit sum) and subsampled, it
  reproduces the LR input (`refine.back_project`, smoothed-TV prior)."""
  k, origin = lever_kernel(g, cfg)
  out = refine.back_project(jnp.asarray(sr), jnp.asarray(lr), k, cfg.scale, origin,
                            iterations=cfg.refine_iterations, prior_weight=cfg.refine_prior)
  return np.asarray(out)


def zssr_with_estimated_kernel(g, lr, cfg):
  """Internal SR with G's estimated kernel (issue 9, lever 2; KernelGAN+ZSSR):
  a small CNN trained on (LR degraded by the kernel, LR) pairs, applied to LR.
  Replaces the flow's SR image."""
  k, origin = lever_kernel(g, cfg)
  params, _ = refine.train_zssr(jax.random.PRNGKey(cfg.seed), jnp.asarray(lr), k, cfg.scale,
                                origin, steps=cfg.zssr_steps, crop=min(cfg.crop, 64))
  return np.asarray(refine.apply_zssr(params, jnp.asarray(lr), cfg.scale))


def _write_image_outputs(out, names, job, lr, hr, sr_u8, g, history, cfg, timings):
  s = cfg.scale
  bic = bicubic_upscale(lr, s)
  result = {
      'image': job.lr_path, 'status': 'ok', 'seed': cfg.seed,
      'lr_shape': list(lr.shape), 'sr_shape': list(sr_u8.shape),
      'config': cfg.to_dict(), 'timings': timings,
      'final_losses': {k: float(v[-1]) for k, v in history.items()},
      'outputs': dict(names),
  }
  panels = [('bicubic', bic), ('IKE', sr_u8)]
  if hr is not None:
    scores = {'ike': metrics_lib.compare(sr_u8, hr, s), 'bicubic': metrics_lib.compare(bic, hr, s)}
    result['metrics'] = scores
    result['hr'] = job.hr_path
    panels = [(f'bicubic {scores["bicubic"]["psnr_y"]:.2f} dB', bic),
              (f'IKE {scores["ike"]["psnr_y"]:.2f} dB', sr_u8), ('HR', hr[:sr_u8.shape[0], :sr_u8.shape[1]])]
  true_kernel = datasets.load_kernel(job.kernel_path) if job.kernel_path else None
  train_cfg = training_config(cfg)
  if train_cfg.scale != cfg.scale:  # G's kernel is the x2 one: nothing to compare with
    true_kernel = None
    result['kernel_scale'] = train_cfg.scale
  result.update(kernel_lib.write_kernel_outputs(out, job.stem, g, train_cfg, true_kernel))
  outputs.write_png(out.path_for(names['sr']), sr_u8)
  outputs.write_png(out.path_for(names['compare']), outputs.compare_image(panels))
  steps = list(range(1, len(next(iter(history.values()))) + 1)) if history else []
  curves = {k: list(map(float, v)) for k, v in history.items() if k not in ('lr',)}
  if curves:
    outputs.loss_curves_png(out.path_for(names['losses']), curves, steps)
  outputs.write_json(out.path_for(names['metrics']), result)
  return result


def format_result(result):
  """One line per image for the terminal."""
  if result['status'] != 'ok':
    return f"{result['image']}: {result['status']}"
  line = f"{result['image']}: wrote {result['outputs']['sr']} ({result['sr_shape'][1]}x{result['sr_shape'][0]})"
  if 'metrics' in result:
    ike, bic = result['metrics']['ike'], result['metrics']['bicubic']
    line += (f"\n  PSNR Y (shave {result['config']['scale']}): IKE {ike['psnr_y']:.2f} dB, "
             f"bicubic {bic['psnr_y']:.2f} dB ({ike['psnr_y'] - bic['psnr_y']:+.2f})"
             f"\n  PSNR RGB (no shave):   IKE {ike['psnr_rgb']:.2f} dB, bicubic {bic['psnr_rgb']:.2f} dB"
             f"\n  SSIM Y: IKE {ike['ssim_y']:.4f}, bicubic {bic['ssim_y']:.4f}")
  if 'kernel_error' in result:
    line += f"\n  kernel error (sum of squared differences): {result['kernel_error']:.3g}"
  return line


def write_summary(output_dir, results):
  """Writes `summary.json` for a many-image run; returns the printed table."""
  rows = ['| image | status | PSNR Y IKE | PSNR Y bicubic | gain | SSIM Y IKE |',
          '|---|---|---|---|---|---|']
  gains = []
  for r in results:
    m = r.get('metrics')
    if m:
      gain = m['ike']['psnr_y'] - m['bicubic']['psnr_y']
      gains.append(gain)
      rows.append(f"| {os.path.basename(r['image'])} | {r['status']} | {m['ike']['psnr_y']:.2f} | "
                  f"{m['bicubic']['psnr_y']:.2f} | {gain:+.2f} | {m['ike']['ssim_y']:.4f} |")
    else:
      rows.append(f"| {os.path.basename(r['image'])} | {r['status']} | | | | |")
  summary = {'images': results, 'count': len(results),
             'ok': sum(r['status'] == 'ok' for r in results),
             'mean_psnr_y_gain': float(np.mean(gains)) if gains else None}
  outputs.write_json(os.path.join(output_dir, 'summary.json'), summary)
  if gains:
    rows.append(f'| mean | | | | {np.mean(gains):+.2f} | |')
  return '\n'.join(rows)
