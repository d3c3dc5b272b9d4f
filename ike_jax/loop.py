"""The training loop: drives the jitted train step over many images at once.

`fit` stacks one `TrainState` per image on a leading axis, shards that axis
over the local devices, and dispatches `train.train_step_batched` from a
Python loop (asynchronously: metrics stay on the device and are fetched every
`metrics_every` steps, the loop's only host sync). It prints progress (step,
losses, s/step, ETA), stops images that diverge, and saves and resumes
checkpoints. A `lax.scan` over steps was measured 5x slower per step on the
CPU (XLA's CPU convolutions lose their fast path inside loops), so it is not
used.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import errors
from ike_jax import train


def pad_images(images, shape=None):
  """Zero-pads (H_i, W_i, 3) images to a common (B, H, W, 3) float32 array.

  `shape` (H, W) defaults to the largest image's. Crops never leave an
  image's own region, so the padding is never read.
  """
  h = max([im.shape[0] for im in images] + ([shape[0]] if shape else []))
  w = max([im.shape[1] for im in images] + ([shape[1]] if shape else []))
  out = np.zeros((len(images), h, w, 3), np.float32)
  for k, im in enumerate(images):
    out[k, :im.shape[0], :im.shape[1]] = im
  return out


def format_eta(seconds):
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def fit(images, plans, cfg, run, seeds=None, log=print, states=None, checkpointer=None,
        checkpoint_every=0, stop=None, pad_shape=None):
  """Trains one model per image, all images at once.

  Args:
    images: list of (H_i, W_i, 3) float arrays in [-1, 1].
    plans: list of `crops.CropPlan` with `run.iterations` corners each.
    cfg: the `config.TrainConfig` to train with (the step's jit key).
    run: the `config.RunConfig` (iterations, seed, metrics_every).
    seeds: per-image seeds (default: `run.seed` for every image).
    log: progress sink (one line per metrics chunk).
    states: batched TrainState to start from instead of a fresh one.
    checkpointer: a `checkpoint.Checkpointer`; with it, an existing checkpoint
      is resumed and a new one saved every `checkpoint_every` steps (rounded
      to metric points) and when `stop()` turns true.
    stop: a callable polled every step (e.g. `checkpoint.StopFlag`); when it
      returns true, a checkpoint is saved and `errors.Interrupted` raised.
    pad_shape: (H, W) to pad every image to, so batches of a run share one
      compiled step (default: this batch's largest image).
  Returns:
    (states, history, timings): history maps metric name -> (steps, B) array
    and 'diverged' -> (B,) bool;
    timings has 'compile_s', 'step_s' (per iteration, all images) and 'total_s'.
  """
  n = len(images)
  seeds = [run.seed] * n if seeds is None else list(seeds)
  sharding, n_pad = image_sharding(n)
  # Padding images (copies of the first) make the count divide the devices.
  plans_b = train.stack_plans(list(plans) + [plans[0]] * n_pad)
  t0 = t_chunk = time.perf_counter()
  log(f'compiling the train step ({n} image{"s" * (n > 1)}, crop {cfg.crop}, x{cfg.scale}, '
      f'{sharding.mesh.size} device{"s" * (sharding.mesh.size > 1)})...')
  if states is None:
    states = train.init_states(
        jnp.asarray(seeds + [seeds[0]] * n_pad, jnp.int32),
        jnp.asarray(pad_images(list(images) + [images[0]] * n_pad, pad_shape)), cfg)
  history, pending, compile_s, steady = {}, [], 0.0, []
  if checkpointer is not None and checkpointer.exists():
    states, saved = checkpointer.restore(states)
    history = {k: list(v) for k, v in saved.items()}
    log(f'resumed from {checkpointer.directory} at step {int(states.step[0])}')
  step_fn = train.train_step_batched
  if sharding.mesh.size > 1:
    states, plans_b = jax.device_put((states, plans_b), sharding)
    step_fn = train.sharded_train_step(sharding.mesh)
  start = int(jax.device_get(states.step[0]))
  diverged = np.zeros(n, bool)

  def save():
    checkpointer.save(states, {k: np.stack(v) for k, v in history.items()})
  for step in range(start, run.iterations):
    states, metrics = step_fn(states, plans_b, cfg)
    pending.append(metrics)
    if step == start:
      jax.block_until_ready(states.step)
      compile_s = time.perf_counter() - t_chunk
      t_chunk, pending_steps = time.perf_counter(), 0
      log(f'compiled in {compile_s:.1f} s')
    else:
      pending_steps += 1
    done = step + 1
    stopping = stop is not None and stop()
    if done % run.metrics_every and done != run.iterations and not stopping:
      continue
    finite = np.asarray(train.params_finite_batched(states))  # the only host sync,
    fetched = jax.device_get(pending)                    # every N steps
    if pending_steps:
      steady.append((time.perf_counter() - t_chunk) / pending_steps)
    t_chunk, pending, pending_steps = time.perf_counter(), [], 0
    for m in fetched:
      for k, v in m.items():
        history.setdefault(k, []).append(np.asarray(v))
    per_step = float(np.median(steady)) if steady else compile_s
    shown = {k: float(np.mean(fetched[-1][k])) for k in fetched[-1]
             if k in ('g_gan', 'bic', 'd', 'u', 'inter', 'csr', 'tv', 'ud')}
    log(f'step {done:5d}/{run.iterations} ' + ' '.join(f'{k} {v:.4g}' for k, v in shown.items())
        + f' | {per_step:.3f} s/step, ETA {format_eta(per_step * (run.iterations - done))}')
    newly = ~finite[:n] & ~diverged
    if newly.any():
      diverged |= newly
      log(f'step {done}: image(s) {np.flatnonzero(newly).tolist()} diverged (NaN/Inf)'
          + ('' if diverged.all() else '; the others continue'))
      if diverged.all():
        break
    if checkpointer is not None and (stopping or (
        checkpoint_every and done // checkpoint_every > (done - len(fetched)) // checkpoint_every)):
      save()
    if stopping:
      raise errors.Interrupted(f'interrupted at step {done}')
  total = time.perf_counter() - t0
  step_s = float(np.median(steady)) if steady else float('nan')
  history = {k: np.stack(v, axis=0)[:, :n] for k, v in history.items()}
  history['diverged'] = diverged
  states = jax.tree.map(lambda a: a[:n], states)
  return states, history, {'compile_s': compile_s, 'step_s': step_s, 'total_s': total}


def image_sharding(n_images, devices=None):
  """Shards a leading image axis over this process's devices.

  Returns (NamedSharding over a 1-D 'images' mesh, number of padding images
  that make the image count a multiple of the device count).
  """
  devices = jax.local_devices() if devices is None else devices
  # The step is split over the mesh by `shard_map` (`train.sharded_train_step`).
  mesh = jax.make_mesh((len(devices),), ('images',), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))
  return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('images')),
          (-n_images) % len(devices))
