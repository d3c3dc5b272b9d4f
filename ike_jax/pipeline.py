"""Super-resolve images end to end: load, train, infer, post-process, report.

`main` parses flags and calls `super_resolve_files`; benchmarks call it too.
What happens to a batch of images reads top to bottom in `_run_batch`:

  data.load_image      -> uint8 LR (and HR) images, checked before anything compiles
  data.plan_crops      -> every iteration's crops, drawn once on the host
  loop.fit             -> one trained G (and U) per image (or a population of
                          them, `--population`), all in one vmapped step
  infer                -> G^-1(y, U(z)), or bicubic for an estimator without inverse
  kernel, consensus    -> G's kernel, estimated once per image and passed along
                          (a population's kernels combined into one)
     (an estimator that does not train, e.g. `spectral`, replaces these three
      with its closed-form estimate and a bicubic starting image)
  postprocess          -> --zssr / --refine with that kernel
  report               -> scores, pictures and files, written atomically
"""

import dataclasses
import hashlib
import os
import time

import jax
import numpy as np

from ike_jax import checkpoint
from ike_jax import config as config_lib
from ike_jax import consensus
from ike_jax import data
from ike_jax import errors
from ike_jax import estimators
from ike_jax import infer
from ike_jax import kernel as kernel_lib
from ike_jax import loop
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import report

# Inputs above this many LR pixels are super-resolved tile by tile unless
# --tile says otherwise (a 2K LR image at x4 would need tens of GB otherwise).
AUTO_TILE_PIXELS = 768 * 768
AUTO_TILE = 256


@dataclasses.dataclass
class Job:
  """One image to super-resolve (paths) and what is known about it."""
  lr_path: str
  hr_path: str | None = None
  kernel_path: str | None = None

  @property
  def stem(self):
    return os.path.splitext(os.path.basename(self.lr_path))[0]


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


def training_config(cfg):
  """The `TrainConfig` G trains with: at its estimator's training scale."""
  train = cfg.train
  return train.replace(scale=estimators.of(train).training_scale(train.scale))


def checkpoint_key(jobs, cfg):
  """What a checkpoint belongs to: the inputs, the train config, seed and
  length. Post-processing is not part of it: changing it keeps checkpoints."""
  parts = ['|'.join(os.path.abspath(j.lr_path) for j in jobs), repr(training_config(cfg)),
           str(cfg.run.seed), str(cfg.run.iterations), str(cfg.run.population)]
  return hashlib.sha1('#'.join(parts).encode()).hexdigest()[:12]


def super_resolve_files(jobs, cfg, output_dir, options=Options(), log=print):
  """Trains on every job's LR image and writes the outputs.

  Images train `options.batch_size` at a time (all at once by default) in one
  vmapped step. Jobs whose outputs are all present are skipped (reported).
  Bad input raises `errors.UserError` before anything is compiled.

  Returns a list of per-image result dicts (what `<stem>_metrics.json` holds,
  or {'image', 'status': 'skipped' | 'diverged'}).
  """
  config_lib.validate(cfg)
  out = outputs.OutputDir(output_dir, options.overwrite)
  out.check_writable()
  trains = estimators.of(cfg).TRAINS
  names = [report.output_names(job.stem, cfg.scale, losses=trains) for job in jobs]
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
  batches = [todo[k:k + size] for k in range(0, len(todo), size)]
  for batch in batches:
    # A resumed batch may have written some outputs; any other must not find any.
    if not (options.resume and _checkpointer(out, [j for j, _ in batch], cfg).exists()):
      out.claim([v for _, name in batch for v in name.values()])
  # Every input is loaded and checked before anything compiles.
  images = [dict(_load(job, cfg, log), names=name) for job, name in todo]

  # One padded shape for the whole run: batches share one compiled step.
  pad_shape = tuple(max((im['lr'].shape[a] for im in images), default=0)
                    for a in (0, 1))
  for n, batch in enumerate(batches):
    if len(batches) > 1:
      log(f'batch {n + 1}/{len(batches)}: {len(batch)} image(s)')
    start = n * size
    results += _run_batch(images[start:start + len(batch)], [job for job, _ in batch], cfg,
                          out, options, log, pad_shape)
  return results


def _load(job, cfg, log):
  """Loads and checks one job: {'lr_path', 'lr', ['hr', 'hr_path', 'true_kernel']}."""
  s = cfg.scale
  lr = data.load_image(job.lr_path, log=log)
  full_shape = lr.shape
  lr, (dh, dw) = data.trim_to_multiple(lr, s)
  if dh or dw:
    log(f'{job.lr_path}: trimmed {dh} rows and {dw} columns to a multiple of {s}; '
        f'output will be {lr.shape[1] * s}x{lr.shape[0] * s}')
  est = estimators.of(cfg)
  trains = est.TRAINS
  need = cfg.train.crop if trains else est.MIN_SIDE
  if min(lr.shape[:2]) < need:  # checked here, before any batch trains
    why = (f'--crop {need} needs at least {need}x{need}: lower --crop or use a larger image'
           if trains else f'--generator={cfg.train.model.generator} needs at least {need}x{need}')
    raise errors.InputError(f'{job.lr_path}: image is {lr.shape[1]}x{lr.shape[0]} pixels'
                            f'{" after trimming" if dh or dw else ""}; {why}')
  image = {'lr_path': job.lr_path, 'lr': lr}
  if job.hr_path:
    hr = data.load_image(job.hr_path, log=log)
    if hr.shape[:2] == (full_shape[0] * s, full_shape[1] * s):
      hr = hr[:lr.shape[0] * s, :lr.shape[1] * s]  # the HR of the untrimmed LR: trim alike
    image.update(hr=hr, hr_path=job.hr_path)
  if job.kernel_path:
    if not os.path.isfile(job.kernel_path):
      raise errors.InputError(f'{job.kernel_path}: no such file (--kernel)')
    if training_config(cfg).scale == s:  # else G's kernel is at another scale
      image['true_kernel'] = data.load_kernel(job.kernel_path)
  return image


def _checkpointer(out, jobs, cfg):
  """The checkpoint of one batch, under `<output_dir>/checkpoints/<key>`."""
  return checkpoint.Checkpointer(os.path.join(out.path, 'checkpoints', checkpoint_key(jobs, cfg)))


def _run_batch(images, jobs, cfg, out, options, log, pad_shape):
  """Estimates the kernel of one batch of images (training G on all of them
  together, or in closed form), then post-processes and reports each image."""
  train_cfg = training_config(cfg)
  ckpt = None
  if estimators.of(train_cfg).TRAINS:
    ckpt = _checkpointer(out, jobs, cfg)
    estimates, srs, histories, timings = _fit_estimators(images, cfg, ckpt, options, log,
                                                         pad_shape)
  else:
    estimates, srs, histories, timings = _closed_form_estimates(images, cfg)

  t0 = time.perf_counter()
  finals, checks = {}, {}
  for k, sr in srs.items():
    kern, origin = postprocess.sr_kernel(estimates[k], train_cfg.scale, cfg.scale,
                                         cfg.post.lever_kernel_taps)
    if postprocess.wanted(cfg.post):
      sr = postprocess.apply(sr, data.to_model(images[k]['lr']), kern, origin, cfg.post,
                             cfg.scale, cfg.run.seed, zssr_crop=min(cfg.train.crop, 64),
                             log=log)
    finals[k] = data.from_model(sr)
    checks[k] = kernel_lib.self_check(finals[k], images[k]['lr'], kern, cfg.scale, origin)
  timings = dict(timings, post_s=(time.perf_counter() - t0) / max(len(srs), 1),
                 images_in_batch=len(images))

  results = []
  for k, image in enumerate(images):
    if k not in finals:
      log(f'{image["lr_path"]}: training diverged (NaN/Inf); no output written for this image')
      results.append({'image': image['lr_path'], 'status': 'diverged'})
      continue
    results.append(report.write_image_outputs(
        out, image['names'], dict(image, sr=finals[k], self_check=checks[k]), cfg, estimates[k],
        histories[k], timings))
  if ckpt is not None:
    ckpt.remove()  # only now: an interrupted post-processing resumes without retraining
    try:
      os.rmdir(os.path.dirname(ckpt.directory))  # `checkpoints/`, when now empty
    except OSError:
      pass
  return results


def _closed_form_estimates(images, cfg):
  """Kernel estimates of an estimator that does not train; bicubic SR images."""
  train_cfg = training_config(cfg)
  est = estimators.of(train_cfg)
  t0 = time.perf_counter()
  estimates = {k: dict(est.estimate(im['lr'], train_cfg), scale=train_cfg.scale)
               for k, im in enumerate(images)}
  t1 = time.perf_counter()
  srs = {k: data.to_model(report.bicubic_upscale(im['lr'], cfg.scale))
         for k, im in enumerate(images)}
  timings = {'estimate_s': (t1 - t0) / max(len(images), 1),
             'inference_s': (time.perf_counter() - t1) / max(len(images), 1)}
  return estimates, srs, {k: {} for k in estimates}, timings


def _fit_estimators(images, cfg, ckpt, options, log, pad_shape):
  """Trains G on every image of a batch (each `--population` times, seeds seed,
  seed + 1, ...) in one vmapped step; returns per image (keyed by its index;
  diverged images left out) the kernel estimate, the SR image to post-process
  (G's inverse, or bicubic), the loss history, and the batch's timings."""
  train_cfg = training_config(cfg)
  run = cfg.run
  members = [(k, run.seed + m) for k in range(len(images)) for m in range(run.population)]
  plans = [data.plan_crops(images[k]['lr'], train_cfg.scale, train_cfg.crop, run.iterations, seed)
           for k, seed in members]
  lrs = [data.to_model(im['lr']) for im in images]
  states, history, timings = _train([lrs[k] for k, _ in members], plans,
                                    [seed for _, seed in members], train_cfg, cfg, ckpt,
                                    options, log, pad_shape)
  diverged = history.pop('diverged')

  t0 = time.perf_counter()
  take = lambda tree, i: jax.tree.map(lambda a: a[i], tree)
  chosen, estimates = {}, {}  # image -> its member that makes the SR image, its kernel
  for k in range(len(images)):
    alive = [i for i, (kk, _) in enumerate(members) if kk == k and not diverged[i]]
    if not alive:
      continue
    found = [dict(kernel_lib.estimate_kernel(take(states.g, i), train_cfg), scale=train_cfg.scale)
             for i in alive]
    pick, estimates[k] = (0, found[0]) if len(found) == 1 else consensus.population_estimate(
        found, cfg.post.consensus)
    chosen[k] = alive[pick]
    if 'population' in estimates[k]:
      estimates[k]['population'].update(seed=members[chosen[k]][1],
                                        seeds=[members[i][1] for i in alive])
  keep = sorted(chosen)
  tile = options.tile
  if not tile and any(lr.shape[0] * lr.shape[1] > AUTO_TILE_PIXELS for lr in lrs):
    tile = AUTO_TILE
    log(f'large input: inference in overlapping {tile}x{tile} tiles (memory bounded; --tile sets it)')
  index = np.asarray([chosen[k] for k in keep])
  srs = infer.super_resolve_many(take(states.g, index), take(states.u, index),
                                 [lrs[k] for k in keep], train_cfg, tile,
                                 cfg.post.self_ensemble) if keep else []
  timings = dict(timings, inference_s=(time.perf_counter() - t0) / max(len(keep), 1))
  histories = {k: {name: v[:, chosen[k]] for name, v in history.items()} for k in keep}
  return estimates, dict(zip(keep, srs)), histories, timings


def _train(lrs, plans, seeds, train_cfg, cfg, ckpt, options, log, pad_shape):
  """`loop.fit` with this batch's checkpoint (resumed, and saved on a signal)."""
  if ckpt.exists() and not options.resume:
    if not options.overwrite:
      raise errors.UserError(f'a checkpoint of this run exists in {ckpt.directory}; pass '
                             '--resume to continue it or --overwrite to start again')
    ckpt.remove()
  with checkpoint.StopFlag() as stop:  # SIGINT/SIGTERM: save a checkpoint, stop
    try:
      fitted = loop.fit(lrs, plans, train_cfg, cfg.run, seeds=seeds, log=log, stop=stop,
                        checkpointer=ckpt,
                        checkpoint_every=options.checkpoint_every, pad_shape=pad_shape)
    except errors.Interrupted as err:
      raise errors.Interrupted(f'{err}; checkpoint saved in {ckpt.directory}; '
                               'rerun the same command with --resume to continue') from None
  return fitted
