"""Super-resolve images end to end: load, estimate, post-process, report.

`main` parses flags and calls `super_resolve_files`; benchmarks call it too.
What happens to a batch of images reads top to bottom in `_run_batch`:

  data.load_image        -> uint8 LR (and HR) images, checked before anything compiles
  estimate.estimate_batch -> per image, the kernel estimate and the SR stage's start
                            (trained G's, all images in one vmapped step, or a closed
                            form; G^-1(y, U(z)) or bicubic)
  postprocess            -> --zssr / --refine with that kernel; the self-check
                            (with --linear_light, both on the photo's decoded light)
  report                 -> scores, pictures and files, written atomically
"""

import dataclasses
import hashlib
import json
import os
import time

from ike_jax import checkpoint
from ike_jax import colours
from ike_jax import crops
from ike_jax import data
from ike_jax import errors
from ike_jax import estimate
from ike_jax import outputs
from ike_jax import postprocess
from ike_jax import programs
from ike_jax import report


@dataclasses.dataclass
class Job:
  """One image to super-resolve (paths) and what is known about it."""
  lr_path: str
  hr_path: str | None = None
  kernel_path: str | None = None
  linear_light: bool = False  # its blur acted on light, before the camera encoded it

  @property
  def stem(self):
    return os.path.splitext(os.path.basename(self.lr_path))[0]


@dataclasses.dataclass(frozen=True)
class Options:
  """How a run is carried out (not what the method computes)."""
  overwrite: bool = False
  batch_size: int = 0          # images trained at once; 0: all of them
  tile: int = 0                # G^-1 inference tile side (LR pixels); 0: whole image
  max_memory_gb: float = 0.0   # limit on the SR stage's predicted peak memory; 0: none
  checkpoint_every: int = 0    # steps between checkpoints; 0: only on a signal
  resume: bool = False
  process_index: int = 0       # multi-host: this process trains images
  process_count: int = 1       #   process_index, process_index + count, ...


def checkpoint_key(jobs, cfg):
  """What a checkpoint belongs to: the inputs, the train config, seed and
  length. Post-processing is not part of it: changing it keeps checkpoints."""
  parts = ['|'.join(os.path.abspath(j.lr_path) for j in jobs), repr(estimate.training_config(cfg)),
           str(cfg.run.seed), str(cfg.run.iterations), str(cfg.run.population)]
  if any(j.linear_light for j in jobs):  # G trains on the photos' light
    parts.append('light:' + ''.join('1' if j.linear_light else '0' for j in jobs))
  return hashlib.sha1('#'.join(parts).encode()).hexdigest()[:12]


def super_resolve_files(jobs, cfg, output_dir, options=Options(), log=print):
  """Trains on every job's LR image and writes the outputs.

  Images train `options.batch_size` at a time (all at once by default) in one
  vmapped step. Jobs whose outputs are all present are skipped (reported),
  if those outputs were made from the same inputs with the same settings
  (`_check_made_alike`; else a user error: nothing is silently kept that the
  run would not make). Each image's result is logged as it is written.
  Bad input raises `errors.UserError` before anything is compiled or any
  output folder is made.

  Returns a list of per-image result dicts: what `<stem>_metrics.json` holds
  (for a skipped image, its record with 'status': 'skipped', so a resumed
  run reports the scores an unbroken one does), or {'image', 'status':
  'diverged'}.
  """
  estimate.check(cfg)
  if len({job.linear_light for job in jobs}) > 1:
    raise errors.UserError('the photos of one run share --linear_light (or not)')
  out = outputs.OutputDir(output_dir, options.overwrite)
  losses = 'losses' in estimate.output_kinds(cfg)
  names = [report.output_names(job.stem, cfg.scale, losses=losses) for job in jobs]
  if len({n['sr'] for n in names}) != len(names):
    raise errors.UserError('two inputs share a file name stem; their outputs would collide')
  todo, results = [], []
  for job, name in zip(jobs, names):
    if not options.overwrite and out.is_complete(name.values()):
      stored = _check_made_alike(out, name, job, cfg)
      log(f'{job.lr_path}: outputs complete in {output_dir}; skipped')
      results.append(dict(stored, image=job.lr_path, status='skipped'))
    else:
      todo.append((job, name))
  todo = todo[options.process_index::options.process_count]
  size = options.batch_size or max(len(todo), 1)
  batches = [todo[k:k + size] for k in range(0, len(todo), size)]
  # Every input is loaded and checked before anything compiles or is written.
  images = [dict(_load(job, cfg, log, options.max_memory_gb), names=name) for job, name in todo]
  out.check_writable()
  for batch in batches:
    # A resumed batch may have written some outputs; any other must not find any.
    if not (options.resume and _checkpointer(out, [j for j, _ in batch], cfg).exists()):
      for job, name in batch:  # none complete (those were skipped): any output is partial
        out.claim(name.values(), owner=job.lr_path)
  if todo:
    log(f'writing to {output_dir}')

  # One padded shape for the whole run: batches share one compiled step.
  pad_shape = tuple(max((im['lr'].shape[a] for im in images), default=0)
                    for a in (0, 1))
  for n, batch in enumerate(batches):
    if len(batches) > 1:
      what = (os.path.basename(batch[0][0].lr_path) if len(batch) == 1
              else f'{len(batch)} images')
      log(f'batch {n + 1}/{len(batches)}: {what}')
    start = n * size
    results += _run_batch(images[start:start + len(batch)], [job for job, _ in batch], cfg,
                          out, options, log, pad_shape)
  return results


def _check_made_alike(out, name, job, cfg):
  """An image's stored metrics record, or a one-line error unless its
  complete outputs were made with this run's settings (`report.config_record`;
  `_changed_settings`) and, as far as the record says, from its inputs (an
  input and an HR image of the same file names and, where it holds them, the
  same bytes; or no HR image)."""
  path = out.path_for(name['metrics'])
  refuse = (f'; pass --overwrite to replace the outputs of {job.lr_path}, '
            'or choose another --output_dir')
  try:
    with open(path, encoding='utf-8') as f:
      stored = json.load(f)
  except (OSError, ValueError):
    stored = None
  if not isinstance(stored, dict) or not isinstance(stored.get('config', {}), dict):
    raise errors.UserError(f'{path}: cannot be read as a metrics record' + refuse)
  changed = _changed_settings(stored.get('config', {}), report.config_record(cfg))
  base = lambda p: os.path.basename(p) if p else None
  if bool(stored.get('linear_light', False)) != job.linear_light:
    changed.append(f'--linear_light {bool(stored.get("linear_light", False))} -> {job.linear_light}')
  for flag, old, new in (('--image', stored.get('image'), job.lr_path),
                         ('--hr', stored.get('hr'), job.hr_path)):
    if base(old) != base(new):
      changed.append(f'{flag} {base(old)} -> {base(new)}')
  for flag, key, source in (('--image', 'image_sha256', job.lr_path),
                            ('--hr', 'hr_sha256', job.hr_path)):
    if (stored.get(key) and source and os.path.isfile(source)
        and stored[key] != file_digest(source)):
      changed.append(f'{flag} {os.path.basename(source)}: other contents')
  if changed:
    more = f' and {len(changed) - 3} more' if len(changed) > 3 else ''
    raise errors.UserError(f'{path}: made with other settings ({", ".join(changed[:3])}{more})'
                           + refuse)
  return stored


def file_digest(path):
  """The SHA-256 of a file's bytes, in hex: which input an output was made from."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _changed_settings(old, new):
  """['--name old -> new'] for every leaf setting of two `config_record`s that
  differs, in the order of the new one's fields (the scale and the estimator
  first). A setting the older record lacks (added since) is not compared, and
  its null matches a non-finite setting (the record once wrote them so)."""
  flat = lambda d: dict(leaf for k, v in d.items()
                        for leaf in (flat(v).items() if isinstance(v, dict) else [(k, v)]))
  old, new = flat(old), flat(new)
  alike = lambda a, b: a == b or (a is None and b in ('inf', '-inf', 'nan'))
  return [f'--{k} {old[k]} -> {new[k]}' for k in new
          if k in old and not alike(old[k], new[k])]


def _load(job, cfg, log, max_memory_gb=0.0):
  """Loads and checks one job: {'lr_path', 'lr', 'lr_sha256', ['hr', 'hr_path',
  'hr_sha256', 'true_kernel']} (the digests: `file_digest`)."""
  s = cfg.scale
  lr = data.load_image(job.lr_path, log=log)
  full_shape = lr.shape
  lr, (dh, dw) = crops.trim_to_multiple(lr, s)
  if dh or dw:
    log(f'{job.lr_path}: trimmed {dh} rows and {dw} columns to a multiple of {s}; '
        f'output will be {lr.shape[1] * s}x{lr.shape[0] * s}')
  need, why = estimate.min_side(cfg)
  if min(lr.shape[:2]) < need:  # checked here, before any batch trains
    raise errors.InputError(f'{job.lr_path}: image is {lr.shape[1]}x{lr.shape[0]} pixels'
                            f'{" after trimming" if dh or dw else ""}; {why}')
  try:
    light = postprocess.light_bytes(lr.shape, s) if job.linear_light else 0
    postprocess.windows(lr.shape, cfg.post, s, max_memory_gb=max_memory_gb,
                        extra_bytes=estimate.peak_bytes(cfg) + light)
  except errors.UserError as err:
    raise errors.UserError(f'{job.lr_path}: {err}') from None
  image = {'lr_path': job.lr_path, 'lr': lr, 'lr_sha256': file_digest(job.lr_path),
           'linear_light': job.linear_light}
  if job.hr_path:
    hr = data.load_image(job.hr_path, log=log)
    if hr.shape[:2] == (full_shape[0] * s, full_shape[1] * s):
      hr = hr[:lr.shape[0] * s, :lr.shape[1] * s]  # the HR of the untrimmed LR: trim alike
    sr_h, sr_w = lr.shape[0] * s, lr.shape[1] * s
    if abs(hr.shape[0] - sr_h) >= s or abs(hr.shape[1] - sr_w) >= s:  # before any work
      raise errors.InputError(f'{job.hr_path}: HR image is {hr.shape[1]}x{hr.shape[0]} but the '
                              f'SR image will be {sr_w}x{sr_h} (a difference under {s} pixels '
                              'per side would be cropped)')
    image.update(hr=hr, hr_path=job.hr_path, hr_sha256=file_digest(job.hr_path))
  if job.kernel_path:
    if not os.path.isfile(job.kernel_path):
      raise errors.InputError(f'{job.kernel_path}: no such file (--kernel)')
    if estimate.training_config(cfg).scale == s:  # else G's kernel is at another scale
      image['true_kernel'] = data.load_kernel(job.kernel_path)
  return image


def _checkpointer(out, jobs, cfg):
  """The checkpoint of one batch, under `<output_dir>/checkpoints/<key>`."""
  return checkpoint.Checkpointer(os.path.join(out.path, 'checkpoints', checkpoint_key(jobs, cfg)))


def _run_batch(images, jobs, cfg, out, options, log, pad_shape):
  """Estimates the kernels of one batch of images (training G on all of them
  together, or in closed form), then post-processes and reports each image."""
  ckpt = _checkpointer(out, jobs, cfg)
  # A blur of light is estimated from the photos' light (rounded to uint8).
  light = any(im['linear_light'] for im in images)
  seen = [dict(im, lr=colours.light_u8(im['lr'])) for im in images] if light else images
  estimated, timings = estimate.estimate_batch(
      seen, estimate.in_light(cfg) if light else cfg, log, pad_shape=pad_shape,
      tile=options.tile, checkpointer=ckpt, checkpoint_every=options.checkpoint_every,
      resume=options.resume, overwrite=options.overwrite)

  t0 = time.perf_counter()
  finals = {}
  for k, e in estimated.items():
    finals[k] = _post_process(e, images[k]['lr'], cfg, log, options.max_memory_gb,
                              images[k]['linear_light'])
    programs.release_if_many()  # each image size compiles programs of its own
  timings = dict(timings, post_s=(time.perf_counter() - t0) / max(len(finals), 1),
                 images_in_batch=len(images))

  results = []
  for k, image in enumerate(images):
    if k not in finals:
      log(f'{image["lr_path"]}: training diverged (NaN/Inf); no output written for this image')
      results.append({'image': image['lr_path'], 'status': 'diverged'})
      continue
    sr, check = finals[k]
    results.append(report.write_image_outputs(
        out, image['names'], dict(image, sr=sr, self_check=check), cfg,
        estimate.method_label(cfg, estimated[k].estimate),
        estimated[k].estimate, estimated[k].history, timings))
    log(report.format_result(results[-1]))
  ckpt.remove()  # only now: an interrupted post-processing resumes without retraining
  try:
    os.rmdir(os.path.dirname(ckpt.directory))  # `checkpoints/`, when now empty
  except OSError:
    pass
  return results


def _post_process(estimated, lr_u8, cfg, log, max_memory_gb=0.0, light=False):
  """(final uint8 SR image, its self-check): --zssr / --refine on the start with
  the estimated kernel (at the job's scale); `light`: in linear light."""
  return postprocess.photo_sr(estimated.sr, lr_u8, estimated.estimate, cfg.post, cfg.scale,
                              light=light, taps=cfg.post.lever_kernel_taps, seed=cfg.run.seed,
                              zssr_crop=min(cfg.train.crop, 64), log=log,
                              max_memory_gb=max_memory_gb, extra_bytes=estimate.peak_bytes(cfg))
