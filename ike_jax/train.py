"""IKE training: one train state per image and one jitted step (SPEC 6).

Each iteration performs, in the PyTorch order:
  1. G step:  L_G = L1(D(G(x)), 1) + lambda_bic MSE(G(x), bic(x)) [+ lambda_energy L_energy]
  2. D step:  L_D = (L1(D(real), 1) + L1(D(G'(x) + n), 0)) / 2, G' = G after step 1
  3. U step:  L_U = lambda_inter L_inter + lambda_csr L1(UD(sr), 1) + lambda_tv TV(sr),
              sr = G'^-1(x, U(sg(z'))); Adam on U and on G (G's Adam state shared with step 1)
  4. UD step: L_UD = (L1(UD(x), 1) + mean over s^2 tiles L1(UD(tile of sg(sr'')), 0)) / 2
  5. schedule: lr / 10 every 750 steps (G, D, U); lambda_bic / 100 every 200 steps
     once the bicubic loss stayed below its threshold 3 times; energy switch.

G's forward after step 1 is computed once and shared by the D step (its LR
output) and the U step (its latent): the PyTorch code computes it twice with
the same parameters and input, so sharing changes nothing.

Everything is written for one image and batched over images with `jax.vmap`
(the leading axis of `TrainState` and `CropPlan`); several steps run inside one
`jax.lax.scan` so metrics reach the host once per chunk only.
"""

import functools
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ike_jax import checkpoint
from ike_jax import flow
from ike_jax import kernel
from ike_jax import losses
from ike_jax import nets


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training, for one image."""
  step: jax.Array            # int32 scalar: the next iteration's index
  rng: jax.Array             # base key; step keys are fold_in(rng, step)
  image: jax.Array           # (H, W, 3) in [-1, 1]; D's noise accumulates here
  g: Any                     # flow parameters (see flow.init_flow)
  d: Any
  d_sn: Any                  # D's power-iteration vectors
  u: Any
  ud: Any
  ud_sn: Any
  opt: Any                   # {'g', 'd', 'u', 'ud'}: Adam moments and counts
  lambda_bic: jax.Array
  lambda_energy: jax.Array
  bic_count: jax.Array       # consecutive bicubic losses below the threshold
  bic_ready: jax.Array       # the learner's "similar to bicubic" flag


@flax.struct.dataclass
class CropPlan:
  """Precomputed crop corners for every iteration, (iterations, 2) int32."""
  g_corners: jax.Array
  d_corners: jax.Array


def _adam(cfg):
  return optax.scale_by_adam(b1=cfg.beta1, b2=cfg.beta2, eps=cfg.adam_eps)


def init_state(seed, image, cfg):
  """Initial TrainState for one image ((H, W, 3) in [-1, 1])."""
  key = jax.random.PRNGKey(seed)
  kg, kd, ku, kud, krng = [jax.random.fold_in(key, i) for i in range(5)]
  g = flow.init_flow(kg, cfg)
  d, d_sn = nets.init_discriminator(kd)
  ud, ud_sn = nets.init_discriminator(kud)
  u = nets.init_upsampler(ku, cfg.scale)
  adam = _adam(cfg)
  opt = {'g': adam.init(g), 'd': adam.init(d), 'u': adam.init(u), 'ud': adam.init(ud)}
  f32 = lambda v: jnp.asarray(v, jnp.float32)
  return TrainState(
      step=jnp.asarray(0, jnp.int32), rng=krng, image=f32(image), g=g, d=d,
      d_sn=d_sn, u=u, ud=ud, ud_sn=ud_sn, opt=opt,
      lambda_bic=f32(cfg.lambda_bic), lambda_energy=f32(0.0),
      bic_count=jnp.asarray(0, jnp.int32), bic_ready=jnp.asarray(False))


def _adam_step(params, grads, opt_state, lr, cfg):
  updates, opt_state = _adam(cfg).update(grads, opt_state)
  return jax.tree.map(lambda p, u: p - lr * u, params, updates), opt_state


def lr_factor(step, cfg):
  """Decay of G, D and U's lr: x0.1 after iterations 750, 1500, ... (0-based)."""
  n = jnp.maximum(step - 1, 0) // cfg.lr_decay_every
  return jnp.asarray(cfg.lr_decay, jnp.float32) ** n


def _sr_image(g_prepared, u, x, z, cfg):
  """SR of the colour batch `x` (3, h, w, 1) given its latent: (1, sh, sw, 3)."""
  z_up = nets.u_apply(u, z, cfg.scale, dtype=cfg.compute_dtype)
  return flow.batch_to_colours(flow.g_inverse(g_prepared, x, z_up, cfg))[None]


def _schedule(state, bic, cfg):
  """KernelGAN's learner: the lambda_bic decay and the energy switch."""
  i = state.step
  counting = (i > 0) & ~state.bic_ready
  below = bic < cfg.bic_threshold
  ready = state.bic_ready | (counting & below & (state.bic_count >= 2))
  count = jnp.where(counting, jnp.where(below, jnp.minimum(state.bic_count + 1, 2), 0),
                    state.bic_count)
  decay = (state.bic_ready & (i > 0) & (i % cfg.bic_decay_every == 0)
           & (state.lambda_bic > cfg.bic_min))
  lam = jnp.where(decay, jnp.maximum(state.lambda_bic / cfg.bic_decay_rate, cfg.bic_min),
                  state.lambda_bic)
  energy = jnp.where(decay & (lam < cfg.energy_switch), cfg.lambda_energy,
                     state.lambda_energy)
  return state.replace(bic_ready=ready, bic_count=count, lambda_bic=lam,
                       lambda_energy=energy)


def take_crops(state, plan, key, cfg):
  """This iteration's crops: G's, then D's with noise (written back into the image).

  Returns (crop_g (1, c, c, 3), crop_d (1, dc, dc, 3), the image after the
  D-noise write-back (unchanged unless `cfg.d_noise_accumulate`)).
  """
  c, dc, i = cfg.crop, cfg.d_crop, state.step
  gy, gx = plan.g_corners[i, 0], plan.g_corners[i, 1]
  dy, dx = plan.d_corners[i, 0], plan.d_corners[i, 1]
  crop_g = jax.lax.dynamic_slice(state.image, (gy, gx, 0), (c, c, 3))[None]
  d_clean = jax.lax.dynamic_slice(state.image, (dy, dx, 0), (dc, dc, 3))
  d_noisy = d_clean + cfg.d_noise_std * jax.random.normal(key, d_clean.shape)
  image = state.image
  if cfg.d_noise_accumulate:
    image = jax.lax.dynamic_update_slice(image, d_noisy, (dy, dx, 0))
  return crop_g, d_noisy[None], image


def train_step(state, plan, cfg):
  """One IKE iteration for one image. Returns (new state, metrics dict)."""
  k_real, k_fake = jax.random.split(jax.random.fold_in(state.rng, state.step))
  crop_g, crop_d, image = take_crops(state, plan, k_real, cfg)
  fake_noise = jax.random.normal(k_fake, (1, cfg.d_crop, cfg.d_crop, 3))  # G's LR output's shape
  return step_on_crops(state.replace(image=image), crop_g, crop_d, fake_noise, cfg)


def step_on_crops(state, crop_g, crop_d, fake_noise, cfg):
  """The iteration's G, D, U and UD steps and the schedule, on given inputs.

  Args:
    state: TrainState (its `image` is carried over, not read).
    crop_g: (1, c, c, 3) G's crop in [-1, 1].
    crop_d: (1, c/s, c/s, 3) D's real crop, noise included.
    fake_noise: (1, c/s, c/s, 3) standard normal; D's fake gets
      `cfg.d_fake_noise_std` times it. (Split out so a recorded PyTorch run's
      crops and noise can be replayed, `benchmarks/replay.py`.)
  Returns:
    (new state, metrics dict).
  """
  s, c = cfg.scale, cfg.crop
  i = state.step
  lr_mult = lr_factor(i, cfg)
  image = state.image
  x = flow.colours_to_batch(crop_g[0])                      # (3, c, c, 1)

  # 1. G step.
  def g_loss(g):
    gp = flow.prepare(g, cfg)
    lr, _ = flow.g_forward(gp, x, cfg)
    lr_img = flow.batch_to_colours(lr)[None]                # (1, c/s, c/s, 3)
    pred, d_sn = nets.d_apply(state.d, state.d_sn, lr_img, cfg.compute_dtype)
    m = {'g_gan': losses.gan_l1(pred, 1.0),
         'bic': losses.bicubic(lr_img, crop_g, s, cfg.bic_mix_colours)}
    total = m['g_gan'] + state.lambda_bic * m['bic']
    if 'energy' in cfg.losses:
      m['energy'] = losses.energy(lr_img, crop_g, s, cfg.energy_ksize, cfg.energy_sigma)
      total += state.lambda_energy * m['energy']
    if cfg.kernel_priors:
      side = cfg.kernel_probe or kernel.default_probe_side(cfg)
      k = kernel.impulse_response(gp, cfg, side)
      pri = losses.kernel_priors(k, s, kernel.DEFAULT_SIZE[s] // 2 + 0.5)
      m.update(pri)
      late = state.lambda_bic < cfg.energy_switch  # KernelGAN's switch
      total += (cfg.lambda_sum2one * pri['sum2one'] + cfg.lambda_boundaries * pri['boundaries']
                + cfg.lambda_negative * pri['negative']
                + jnp.where(late, cfg.lambda_centralized * pri['centralized']
                            + cfg.lambda_sparse * pri['sparse'], 0.0))
    return total, (d_sn, m)

  (_, (d_sn, metrics)), grads = jax.value_and_grad(g_loss, has_aux=True)(state.g)
  g, opt_g = _adam_step(state.g, grads, state.opt['g'], cfg.lr_g * lr_mult, cfg)

  # G after its step, once, for the D step's fake and the U step's latent.
  lr_new, z = flow.g_forward(flow.prepare(g, cfg), x, cfg)
  lr_new, z = jax.lax.stop_gradient((lr_new, z))

  # 2. D step.
  fake = flow.batch_to_colours(lr_new)[None]
  fake = fake + cfg.d_fake_noise_std * fake_noise

  def d_loss(d):
    pred_real, sn = nets.d_apply(d, d_sn, crop_d, cfg.compute_dtype)
    pred_fake, sn = nets.d_apply(d, sn, fake, cfg.compute_dtype)
    return 0.5 * (losses.gan_l1(pred_real, 1.0) + losses.gan_l1(pred_fake, 0.0)), sn

  (metrics['d'], d_sn), grads = jax.value_and_grad(d_loss, has_aux=True)(state.d)
  d, opt_d = _adam_step(state.d, grads, state.opt['d'], cfg.lr_d * lr_mult, cfg)

  u, ud, ud_sn, opt_u, opt_ud = state.u, state.ud, state.ud_sn, state.opt['u'], state.opt['ud']
  if {'tv', 'inter', 'csr'} & set(cfg.losses):
    # 3. U step: U and G, through G's reverse pass.
    def u_loss(gu):
      sr = _sr_image(flow.prepare(gu[0], cfg), gu[1], x, z, cfg)
      m, total, sn = {}, 0.0, ud_sn
      if 'inter' in cfg.losses:
        m['inter'] = losses.inter(crop_g, sr, s, cfg.edge_mask_round)
        total += cfg.lambda_inter * m['inter']
      if 'csr' in cfg.losses:
        pred, sn = nets.d_apply(ud, ud_sn, sr, cfg.compute_dtype)
        m['csr'] = losses.gan_l1(pred, 1.0)
        total += cfg.lambda_csr * m['csr']
      if 'tv' in cfg.losses:
        m['tv'] = losses.tv(sr)
        total += cfg.lambda_tv * m['tv']
      return total, (sn, sr, m)

    (metrics['u'], (ud_sn, sr, m_u)), (grad_g, grad_u) = jax.value_and_grad(
        u_loss, has_aux=True)((g, u))
    metrics.update(m_u)
    u, opt_u = _adam_step(u, grad_u, opt_u, cfg.lr_u * lr_mult, cfg)
    g, opt_g = _adam_step(g, grad_g, opt_g, cfg.lr_g * lr_mult, cfg)

    if 'csr' in cfg.losses:
      # 4. UD step: real = the crop, fakes = the s^2 crop-sized tiles of SR.
      if cfg.recompute_ud_fake:
        sr = _sr_image(flow.prepare(g, cfg), u, x, z, cfg)
      sr = jax.lax.stop_gradient(sr)
      tiles = [sr[:, a * c:(a + 1) * c, b * c:(b + 1) * c] for a in range(s) for b in range(s)]

      def ud_loss(ud_params):
        pred, sn = nets.d_apply(ud_params, ud_sn, crop_g, cfg.compute_dtype)
        real = losses.gan_l1(pred, 1.0)
        fake_total = 0.0
        for tile in tiles:  # separate calls: BatchNorm and power iteration per call
          pred, sn = nets.d_apply(ud_params, sn, tile, cfg.compute_dtype)
          fake_total += losses.gan_l1(pred, 0.0)
        return 0.5 * (real + fake_total / len(tiles)), sn

      (metrics['ud'], ud_sn), grads = jax.value_and_grad(ud_loss, has_aux=True)(ud)
      ud, opt_ud = _adam_step(ud, grads, opt_ud, cfg.lr_ud, cfg)

  metrics['lambda_bic'] = state.lambda_bic
  metrics['lr'] = cfg.lr_g * lr_mult
  new = state.replace(
      image=image, g=g, d=d, d_sn=d_sn, u=u, ud=ud, ud_sn=ud_sn,
      opt={'g': opt_g, 'd': opt_d, 'u': opt_u, 'ud': opt_ud})
  new = _schedule(new, metrics['bic'], cfg)
  return new.replace(step=i + 1), metrics


def params_finite(state):
  """True when every parameter of every network is finite."""
  leaves = jax.tree.leaves((state.g, state.d, state.u, state.ud))
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(l)) for l in leaves]))


# One jitted step for a batch of images. A Python loop dispatches it
# asynchronously; metrics stay on device until fetched every N steps. (A
# `lax.scan` over steps was 5x slower per step on the CPU: XLA's CPU
# convolutions lose their fast path inside loops.)
@functools.partial(jax.jit, static_argnums=(2,), donate_argnums=(0,))
def train_step_batched(states, plans, cfg):
  """`train_step` vmapped over a leading image axis of states and plans."""
  return jax.vmap(lambda s, p: train_step(s, p, cfg))(states, plans)


params_finite_batched = jax.jit(jax.vmap(params_finite))


@functools.lru_cache(maxsize=8)
def sharded_train_step(mesh):
  """`train_step_batched` with the image axis split over `mesh`'s devices.

  `shard_map` runs the vmapped step on each device's slice of images; images
  are independent, so no communication is needed. (Letting GSPMD partition
  the vmapped step instead fails on the grouped convolutions that vmap makes
  of per-image weights.)
  """
  spec = jax.sharding.PartitionSpec('images')

  @functools.partial(jax.jit, static_argnums=(2,), donate_argnums=(0,))
  def step(states, plans, cfg):
    body = lambda s, p: jax.vmap(lambda si, pi: train_step(si, pi, cfg))(s, p)
    return jax.shard_map(body, mesh=mesh, in_specs=(spec, spec), out_specs=spec,
                         check_vma=False)(states, plans)
  return step


@functools.partial(jax.jit, static_argnums=(2,))
def init_states(seeds, images, cfg):
  """Stacked initial states: seeds (B,) int32, images (B, H, W, 3)."""
  return jax.vmap(lambda sd, im: init_state(sd, im, cfg))(seeds, images)


PLAN_BUCKET = 512


def stack_plans(plans):
  """Stacks per-image `data.CropPlan`s (NumPy) into one batched CropPlan.

  The iteration axis is padded to a multiple of PLAN_BUCKET so runs of
  different lengths share one compiled step.
  """
  n = max(len(p.g_corners) for p in plans)
  n = -(-n // PLAN_BUCKET) * PLAN_BUCKET
  def stack(name):
    out = np.zeros((len(plans), n, 2), np.int32)
    for k, p in enumerate(plans):
      corners = np.asarray(getattr(p, name))
      out[k, :len(corners)] = corners
    return jnp.asarray(out)
  return CropPlan(g_corners=stack('g_corners'), d_corners=stack('d_corners'))


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


def fit(images, plans, cfg, seeds=None, log=print, states=None, checkpointer=None,
        checkpoint_every=0, stop=None, pad_shape=None):
  """Trains one model per image, all images at once.

  Args:
    images: list of (H_i, W_i, 3) float arrays in [-1, 1].
    plans: list of `data.CropPlan` with `cfg.iterations` corners each.
    cfg: the run's Config.
    seeds: per-image seeds (default: `cfg.seed` for every image).
    log: progress sink (one line per metrics chunk).
    states: batched TrainState to start from instead of a fresh one.
    checkpointer: a `checkpoint.Checkpointer`; with it, an existing checkpoint
      is resumed and a new one saved every `checkpoint_every` steps (rounded
      to metric points) and when `stop()` turns true.
    stop: a callable polled every step (e.g. `checkpoint.StopFlag`); when it
      returns true, a checkpoint is saved and `checkpoint.Interrupted` raised.
    pad_shape: (H, W) to pad every image to, so batches of a run share one
      compiled step (default: this batch's largest image).
  Returns:
    (states, history, timings): history maps metric name -> (steps, B) array
    and 'diverged' -> (B,) bool;
    timings has 'compile_s', 'step_s' (per iteration, all images) and 'total_s'.
  """
  n = len(images)
  seeds = [cfg.seed] * n if seeds is None else list(seeds)
  sharding, n_pad = image_sharding(n)
  # Padding images (copies of the first) make the count divide the devices.
  plans_b = stack_plans(list(plans) + [plans[0]] * n_pad)
  static = cfg.static()
  t0 = t_chunk = time.perf_counter()
  log(f'compiling the train step ({n} image{"s" * (n > 1)}, crop {cfg.crop}, x{cfg.scale}, '
      f'{sharding.mesh.size} device{"s" * (sharding.mesh.size > 1)})...')
  if states is None:
    states = init_states(jnp.asarray(seeds + [seeds[0]] * n_pad, jnp.int32),
                         jnp.asarray(pad_images(list(images) + [images[0]] * n_pad, pad_shape)),
                         static)
  history, pending, compile_s, steady = {}, [], 0.0, []
  if checkpointer is not None and checkpointer.exists():
    states, saved = checkpointer.restore(states)
    history = {k: list(v) for k, v in saved.items()}
    log(f'resumed from {checkpointer.directory} at step {int(states.step[0])}')
  step_fn = train_step_batched
  if sharding.mesh.size > 1:
    states, plans_b = jax.device_put((states, plans_b), sharding)
    step_fn = sharded_train_step(sharding.mesh)
  start = int(jax.device_get(states.step[0]))
  diverged = np.zeros(n, bool)

  def save():
    checkpointer.save(states, {k: np.stack(v) for k, v in history.items()})
  for step in range(start, cfg.iterations):
    states, metrics = step_fn(states, plans_b, static)
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
    if done % cfg.metrics_every and done != cfg.iterations and not stopping:
      continue
    finite = np.asarray(params_finite_batched(states))  # the only host sync,
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
    log(f'step {done:5d}/{cfg.iterations} ' + ' '.join(f'{k} {v:.4g}' for k, v in shown.items())
        + f' | {per_step:.3f} s/step, ETA {format_eta(per_step * (cfg.iterations - done))}')
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
      raise checkpoint.Interrupted(done)
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
  # Auto axes: GSPMD partitions the vmapped step; no sharding in the types.
  mesh = jax.make_mesh((len(devices),), ('images',), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))
  return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('images')),
          (-n_images) % len(devices))
