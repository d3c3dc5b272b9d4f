"""The estimate stage: per image, a kernel estimate and the SR stage's starting image.

The one place outside `ike_jax.estimators` that asks which kind of estimator
a config names (the protocol is in that package's docstring):

  trains, with an inverse (`flow`)   `loop.fit` trains G and U on every image of a
                                     batch in one vmapped step; `readout` reads G's
                                     kernel; the start is G^-1(y, U(z)) (`infer`)
  trains, no inverse (`deep_linear`, `gaussian`)
                                     the same training and read-out; the start is
                                     bicubic
  trains nothing (`spectral`, `blind`)
                                     the module's `estimate(lr, cfg)` (a closed form,
                                     or the blind choice among candidate kernels);
                                     the start is bicubic

With `--population N` a trained estimator runs N times per image (seeds seed,
seed + 1, ...), in the same vmapped step; `consensus` combines the kernels and
the member nearest the others makes the start. `check`, `min_side`,
`output_kinds` and `method_label` say what the rest of the pipeline needs to
know of the estimator, so that nothing else branches on it.
"""

import dataclasses
import time
from typing import NamedTuple

import jax
import numpy as np

from ike_jax import checkpoint
from ike_jax import config as config_lib
from ike_jax import consensus
from ike_jax import crops
from ike_jax import data
from ike_jax import errors
from ike_jax import estimators
from ike_jax import infer
from ike_jax import loop
from ike_jax import programs
from ike_jax import resize
from ike_jax.estimators import readout

# Inputs above this many LR pixels are super-resolved by G^-1 tile by tile
# unless --tile says otherwise (a 2K LR image at x4 would need tens of GB).
AUTO_TILE_PIXELS = 768 * 768
AUTO_TILE = 256


class Estimate(NamedTuple):
  """What the estimate stage gives one image."""
  estimate: dict        # the kernel estimate at the training scale ('scale' added)
  sr: np.ndarray | None  # (sH, sW, 3) float32 in [-1, 1]: the SR stage's start; None:
                         # MATLAB bicubic, made by the SR stage (window by window)
  history: dict         # {metric: (steps,) array}; {} when nothing trains


def training_config(cfg):
  """The `TrainConfig` G trains with (or the kernel is estimated at): at its
  estimator's training scale."""
  train = cfg.train
  return train.replace(scale=estimators.of(train).training_scale(train.scale))


def check(cfg):
  """`config.validate`, then what the named estimator needs; one-line `errors.UserError`."""
  config_lib.validate(cfg)
  name, losses, post = cfg.train.model.generator, set(cfg.train.loss.losses), cfg.post
  if name not in estimators.NAMES:
    raise errors.UserError(f'--generator must be one of {", ".join(estimators.NAMES)}, '
                           f'got {name}')
  est = estimators.get(name)
  checks = [
      (est.HAS_INVERSE or post.zssr or post.refine,
       f'--generator={name} has no inverse: add --zssr or --refine'),
      (est.HAS_INVERSE or not losses & {'tv', 'inter', 'csr'},
       f'--generator={name} trains no up-sampler: use --losses= (none) or energy'),
      (est.TRAINS or cfg.run.population == 1,
       f'--generator={name} trains nothing (the same kernel for every seed): '
       'use --population=1'),
  ] + (est.checks(cfg) if hasattr(est, 'checks') else [])
  for ok, message in checks:
    if not ok:
      raise errors.UserError(message)


def min_side(cfg):
  """(the smallest LR side the estimator can use, what to do about a smaller one)."""
  est = estimators.of(cfg)
  if est.TRAINS:
    need = cfg.train.crop
    return need, f'--crop {need} needs at least {need}x{need}: lower --crop or use a larger image'
  need = est.MIN_SIDE
  return need, f'--generator={est.NAME} needs at least {need}x{need}'


def peak_bytes(cfg):
  """Resident memory the estimator adds to the SR stage's predicted peak."""
  return getattr(estimators.of(cfg), 'PEAK_BYTES', 0)


def output_kinds(cfg):
  """The optional outputs the estimator has: ('losses',) when it trains, else ()."""
  return ('losses',) if estimators.of(cfg).TRAINS else ()


def method_label(cfg, record=None):
  """What made the SR image, e.g. 'IKE', 'ZSSR (KernelGAN G kernel)'; `record`
  (the estimate's dict) may say which candidate a choosing estimator took
  ('choice') and that it asked for no refinement ('refine': False)."""
  est = estimators.of(cfg)
  post = cfg.post
  record = record or {}
  if record.get('refine') is False:
    post = dataclasses.replace(post, refine=False, zssr=False)
  kernel = (f"{est.LABEL}: {record['choice']} kernel" if 'choice' in record
            else f'{est.LABEL} kernel')
  if cfg.run.population > 1:
    kernel = f'{post.consensus} of {cfg.run.population} {est.LABEL} kernels'
  if post.zssr:
    label = f'ZSSR ({kernel})'
  elif est.HAS_INVERSE:
    label = est.LABEL
  else:
    label = 'bicubic'
  if post.refine:
    label += ' + back-projection' + ('' if post.zssr else f' ({kernel})')
  if post.self_ensemble and est.HAS_INVERSE and not post.zssr:
    label += ' + self-ensemble'
  return label


def in_light(cfg):
  """The settings the kernel estimate runs with on a photo's light
  (--linear_light): the blind choice without its second chance (no second
  estimate can pass its tests). On the tuning photos' light the second chance
  sent a nearly flat photo 8-11 dB below bicubic, blurred or not; without it
  none fell below (docs/method.md, "Blur in linear light")."""
  return cfg.replace(blind_second_ringing_max=-np.inf)


def bicubic_start(lr_u8, scale):
  """The SR stage's start without an inverse: MATLAB bicubic, in [-1, 1]."""
  return data.to_model(resize.bicubic_upscale(lr_u8, scale))


def estimate_batch(images, cfg, log=print, *, pad_shape=None, tile=0, checkpointer=None,
                   checkpoint_every=0, resume=False, overwrite=False):
  """Kernel estimates and starting SR images of a batch of images.

  Args:
    images: list of dicts with 'lr' ((H, W, 3) uint8, sides multiples of s).
    cfg: the run's `config.Config`.
    log: progress lines.
    pad_shape: (H, W) every image is padded to for training (one compiled
      step for many batches); None: the batch's largest.
    tile: inference tile side (LR px); 0: whole images (large ones are tiled
      anyway, `AUTO_TILE_PIXELS`).
    checkpointer, checkpoint_every, resume, overwrite: the batch's training
      checkpoint (`checkpoint.Checkpointer`), how often it is saved, whether
      an existing one is continued or replaced.
  Returns:
    ({image index: `Estimate`} (diverged images left out), timings: dict of
    seconds per image, 'estimate_s' or 'compile_s'/'train_s'..., 'inference_s').
  """
  if estimators.of(cfg).TRAINS:
    return _trained(images, cfg, log, pad_shape, tile, checkpointer, checkpoint_every, resume,
                    overwrite)
  return _closed_form(images, cfg, log)


def _closed_form(images, cfg, log=print):
  """The module's `estimate` per image; bicubic starts (made by the SR stage).
  An image whose estimate takes a second or more gets a progress line."""
  est, scale = estimators.of(cfg), training_config(cfg).scale
  t0 = time.perf_counter()
  log(f'kernel estimate ({est.LABEL}): {len(images)} image(s)')
  estimates = []
  for k, im in enumerate(images):
    start = time.perf_counter()
    estimates.append(dict(est.estimate(im['lr'], cfg), scale=scale))
    programs.release_if_many()  # each image size compiles programs of its own
    now = time.perf_counter()
    if now - start >= 1.0:
      eta = (now - t0) / (k + 1) * (len(images) - k - 1)
      log(f'kernel estimate {k + 1}/{len(images)}: {now - start:.1f} s, ETA {eta:.0f} s')
  timings = {'estimate_s': (time.perf_counter() - t0) / max(len(images), 1), 'inference_s': 0.0}
  return {k: Estimate(e, None, {}) for k, e in enumerate(estimates)}, timings


def _trained(images, cfg, log, pad_shape, tile, ckpt, checkpoint_every, resume, overwrite):
  """Trains G on every image (each `--population` times) in one vmapped step,
  reads the kernels, and makes the starts (G's inverse, or bicubic)."""
  train_cfg = training_config(cfg)
  run = cfg.run
  members = [(k, run.seed + m) for k in range(len(images)) for m in range(run.population)]
  plans = [crops.plan_crops(images[k]['lr'], train_cfg.scale, train_cfg.crop, run.iterations,
                            seed) for k, seed in members]
  lrs = [data.to_model(im['lr']) for im in images]
  states, history, timings = _fit([lrs[k] for k, _ in members], plans,
                                  [seed for _, seed in members], train_cfg, cfg, ckpt,
                                  checkpoint_every, resume, overwrite, log, pad_shape)
  diverged = history.pop('diverged')

  t0 = time.perf_counter()
  take = lambda tree, i: jax.tree.map(lambda a: a[i], tree)
  chosen, estimates = {}, {}  # image -> its member that makes the SR image, its kernel
  for k in range(len(images)):
    alive = [i for i, (kk, _) in enumerate(members) if kk == k and not diverged[i]]
    if not alive:
      continue
    found = [dict(readout.estimate_kernel(take(states.g, i), train_cfg), scale=train_cfg.scale)
             for i in alive]
    pick, estimates[k] = (0, found[0]) if len(found) == 1 else consensus.population_estimate(
        found, cfg.post.consensus)
    chosen[k] = alive[pick]
    if 'population' in estimates[k]:
      estimates[k]['population'].update(seed=members[chosen[k]][1],
                                        seeds=[members[i][1] for i in alive])
  keep = sorted(chosen)
  if estimators.of(train_cfg).HAS_INVERSE:
    if not tile and any(lr.shape[0] * lr.shape[1] > AUTO_TILE_PIXELS for lr in lrs):
      tile = AUTO_TILE
      log(f'large input: inference in overlapping {tile}x{tile} tiles (memory bounded; '
          '--tile sets it)')
    index = np.asarray([chosen[k] for k in keep])
    starts = infer.super_resolve_many(take(states.g, index), take(states.u, index),
                                      [lrs[k] for k in keep], train_cfg, tile,
                                      cfg.post.self_ensemble) if keep else []
  else:
    starts = [None] * len(keep)  # bicubic, made by the SR stage
  timings = dict(timings, inference_s=(time.perf_counter() - t0) / max(len(keep), 1))
  return {k: Estimate(estimates[k], sr, {name: v[:, chosen[k]] for name, v in history.items()})
          for k, sr in zip(keep, starts)}, timings


def _fit(lrs, plans, seeds, train_cfg, cfg, ckpt, checkpoint_every, resume, overwrite, log,
         pad_shape):
  """`loop.fit` with this batch's checkpoint (resumed, and saved on a signal)."""
  if ckpt is not None and ckpt.exists() and not resume:
    if not overwrite:
      raise errors.UserError(f'a checkpoint of this run exists in {ckpt.directory}; pass '
                             '--resume to continue it or --overwrite to start again')
    ckpt.remove()
  with checkpoint.StopFlag() as stop:  # SIGINT/SIGTERM: save a checkpoint, stop
    try:
      fitted = loop.fit(lrs, plans, train_cfg, cfg.run, seeds=seeds, log=log, stop=stop,
                        checkpointer=ckpt, checkpoint_every=checkpoint_every,
                        pad_shape=pad_shape)
    except errors.Interrupted as err:
      where = f'; checkpoint saved in {ckpt.directory}' if ckpt is not None else ''
      raise errors.Interrupted(f'{err}{where}; rerun the same command with --resume to '
                               'continue') from None
  return fitted
