"""IKE training: one train state per image and one jitted, donated step.

`cfg` is a `config.TrainConfig` throughout: the step's jit key, so nothing
outside training (seed, iteration count, post-processing) recompiles it.
The losses and schedule are stated in `docs/method.md`, "One training iteration" and "Schedule".

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
(the leading axis of `TrainState` and `crops.CropPlan`). G is whichever kernel
estimator the config names (`ike_jax.estimators`); the U and UD steps run
only when the config has their losses, which needs an estimator with an
inverse. The loop that drives the step is `ike_jax.loop`.
"""

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ike_jax import colours
from ike_jax import crops
from ike_jax import estimators
from ike_jax import kernel
from ike_jax import losses
from ike_jax import nets
from ike_jax.estimators import readout


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


PLAN_BUCKET = 512  # crop plans are padded to a multiple of this many steps


def _adam(cfg):
  return optax.scale_by_adam(b1=cfg.optim.beta1, b2=cfg.optim.beta2, eps=cfg.optim.adam_eps)


def init_state(seed, image, cfg):
  """Initial TrainState for one image ((H, W, 3) in [-1, 1])."""
  key = jax.random.PRNGKey(seed)
  kg, kd, ku, kud, krng = [jax.random.fold_in(key, i) for i in range(5)]
  g = estimators.of(cfg).init(kg, cfg)
  d, d_sn = nets.init_discriminator(kd)
  ud, ud_sn = nets.init_discriminator(kud)
  u = nets.init_upsampler(ku, cfg.scale)
  adam = _adam(cfg)
  opt = {'g': adam.init(g), 'd': adam.init(d), 'u': adam.init(u), 'ud': adam.init(ud)}
  f32 = lambda v: jnp.asarray(v, jnp.float32)
  return TrainState(
      step=jnp.asarray(0, jnp.int32), rng=krng, image=f32(image), g=g, d=d,
      d_sn=d_sn, u=u, ud=ud, ud_sn=ud_sn, opt=opt,
      lambda_bic=f32(cfg.loss.lambda_bic), lambda_energy=f32(0.0),
      bic_count=jnp.asarray(0, jnp.int32), bic_ready=jnp.asarray(False))


def _adam_step(params, grads, opt_state, lr, cfg):
  updates, opt_state = _adam(cfg).update(grads, opt_state)
  return jax.tree.map(lambda p, u: p - lr * u, params, updates), opt_state


def lr_factor(step, cfg):
  """Decay of G, D and U's lr: x0.1 after iterations 750, 1500, ... (0-based)."""
  n = jnp.maximum(step - 1, 0) // cfg.optim.lr_decay_every
  return jnp.asarray(cfg.optim.lr_decay, jnp.float32) ** n


def _sr_image(g_prepared, u, x, z, cfg):
  """SR of the colour batch `x` (3, h, w, 1) given its latent: (1, sh, sw, 3)."""
  z_up = nets.u_apply(u, z, cfg.scale, dtype=cfg.model.compute_dtype)
  est = estimators.of(cfg)
  return colours.batch_to_colours(est.inverse(g_prepared, x, z_up, cfg))[None]


def _schedule(state, bic, cfg):
  """KernelGAN's learner: the lambda_bic decay and the energy switch."""
  i = state.step
  counting = (i > 0) & ~state.bic_ready
  below = bic < cfg.bic_threshold
  ready = state.bic_ready | (counting & below & (state.bic_count >= 2))
  count = jnp.where(counting, jnp.where(below, jnp.minimum(state.bic_count + 1, 2), 0),
                    state.bic_count)
  decay = (state.bic_ready & (i > 0) & (i % cfg.optim.bic_decay_every == 0)
           & (state.lambda_bic > cfg.optim.bic_min))
  lam = jnp.where(decay, jnp.maximum(state.lambda_bic / cfg.optim.bic_decay_rate, cfg.optim.bic_min),
                  state.lambda_bic)
  energy = jnp.where(decay & (lam < cfg.optim.energy_switch), cfg.loss.lambda_energy,
                     state.lambda_energy)
  return state.replace(bic_ready=ready, bic_count=count, lambda_bic=lam,
                       lambda_energy=energy)


def take_crops(state, plan, key, cfg):
  """This iteration's crops: G's, then D's with noise (written back into the image).

  Returns (crop_g (1, c, c, 3), crop_d (1, dc, dc, 3), the image after the
  D-noise write-back (unchanged unless `cfg.quirks.d_noise_accumulate`)).
  """
  c, dc, i = cfg.crop, cfg.d_crop, state.step
  gy, gx = plan.g_corners[i, 0], plan.g_corners[i, 1]
  dy, dx = plan.d_corners[i, 0], plan.d_corners[i, 1]
  crop_g = jax.lax.dynamic_slice(state.image, (gy, gx, 0), (c, c, 3))[None]
  d_clean = jax.lax.dynamic_slice(state.image, (dy, dx, 0), (dc, dc, 3))
  d_noisy = d_clean + cfg.quirks.d_noise_std * jax.random.normal(key, d_clean.shape)
  image = state.image
  if cfg.quirks.d_noise_accumulate:
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
      `cfg.quirks.d_fake_noise_std` times it. (Split out so a recorded PyTorch run's
      crops and noise can be replayed, `benchmarks/replay.py`.)
  Returns:
    (new state, metrics dict).
  """
  s, c = cfg.scale, cfg.crop
  i = state.step
  lr_mult = lr_factor(i, cfg)
  image = state.image
  est = estimators.of(cfg)
  x = colours.colours_to_batch(crop_g[0])                # (3, c, c, 1)

  # 1. G step.
  def g_loss(g):
    gp = est.prepare(g, cfg)
    lr, _ = est.forward(gp, x, cfg)
    lr_img = colours.batch_to_colours(lr)[None]                # (1, c/s, c/s, 3)
    pred, d_sn = nets.d_apply(state.d, state.d_sn, lr_img, cfg.model.compute_dtype)
    m = {'g_gan': losses.gan_l1(pred, 1.0),
         'bic': losses.bicubic(lr_img, crop_g, s, cfg.quirks.bic_mix_colours)}
    total = m['g_gan'] + state.lambda_bic * m['bic']
    if 'energy' in cfg.loss.losses:
      m['energy'] = losses.energy(lr_img, crop_g, s, cfg.loss.energy_ksize, cfg.loss.energy_sigma)
      total += state.lambda_energy * m['energy']
    if cfg.loss.kernel_priors:
      side = cfg.loss.kernel_probe or readout.default_probe_side(cfg)
      k = readout.impulse_response(gp, cfg, side)
      pri = losses.kernel_priors(k, s, kernel.DEFAULT_SIZE[s] // 2 + 0.5)
      m.update(pri)
      late = state.lambda_bic < cfg.optim.energy_switch  # KernelGAN's switch
      total += (cfg.loss.lambda_sum2one * pri['sum2one'] + cfg.loss.lambda_boundaries * pri['boundaries']
                + cfg.loss.lambda_negative * pri['negative']
                + jnp.where(late, cfg.loss.lambda_centralized * pri['centralized']
                            + cfg.loss.lambda_sparse * pri['sparse'], 0.0))
    return total, (d_sn, m)

  (_, (d_sn, metrics)), grads = jax.value_and_grad(g_loss, has_aux=True)(state.g)
  g, opt_g = _adam_step(state.g, grads, state.opt['g'], cfg.optim.lr_g * lr_mult, cfg)

  # G after its step, once, for the D step's fake and the U step's latent.
  lr_new, z = est.forward(est.prepare(g, cfg), x, cfg)
  lr_new, z = jax.lax.stop_gradient((lr_new, z))

  # 2. D step.
  fake = colours.batch_to_colours(lr_new)[None]
  fake = fake + cfg.quirks.d_fake_noise_std * fake_noise

  def d_loss(d):
    pred_real, sn = nets.d_apply(d, d_sn, crop_d, cfg.model.compute_dtype)
    pred_fake, sn = nets.d_apply(d, sn, fake, cfg.model.compute_dtype)
    return 0.5 * (losses.gan_l1(pred_real, 1.0) + losses.gan_l1(pred_fake, 0.0)), sn

  (metrics['d'], d_sn), grads = jax.value_and_grad(d_loss, has_aux=True)(state.d)
  d, opt_d = _adam_step(state.d, grads, state.opt['d'], cfg.optim.lr_d * lr_mult, cfg)

  u, ud, ud_sn, opt_u, opt_ud = state.u, state.ud, state.ud_sn, state.opt['u'], state.opt['ud']
  if {'tv', 'inter', 'csr'} & set(cfg.loss.losses):
    # 3. U step: U and G, through G's reverse pass.
    def u_loss(gu):
      sr = _sr_image(est.prepare(gu[0], cfg), gu[1], x, z, cfg)
      m, total, sn = {}, 0.0, ud_sn
      if 'inter' in cfg.loss.losses:
        m['inter'] = losses.inter(crop_g, sr, s, cfg.quirks.edge_mask_round)
        total += cfg.loss.lambda_inter * m['inter']
      if 'csr' in cfg.loss.losses:
        pred, sn = nets.d_apply(ud, ud_sn, sr, cfg.model.compute_dtype)
        m['csr'] = losses.gan_l1(pred, 1.0)
        total += cfg.loss.lambda_csr * m['csr']
      if 'tv' in cfg.loss.losses:
        m['tv'] = losses.tv(sr)
        total += cfg.loss.lambda_tv * m['tv']
      return total, (sn, sr, m)

    (metrics['u'], (ud_sn, sr, m_u)), (grad_g, grad_u) = jax.value_and_grad(
        u_loss, has_aux=True)((g, u))
    metrics.update(m_u)
    u, opt_u = _adam_step(u, grad_u, opt_u, cfg.optim.lr_u * lr_mult, cfg)
    g, opt_g = _adam_step(g, grad_g, opt_g, cfg.optim.lr_g * lr_mult, cfg)

    if 'csr' in cfg.loss.losses:
      # 4. UD step: real = the crop, fakes = the s^2 crop-sized tiles of SR.
      if cfg.quirks.recompute_ud_fake:
        sr = _sr_image(est.prepare(g, cfg), u, x, z, cfg)
      sr = jax.lax.stop_gradient(sr)
      tiles = [sr[:, a * c:(a + 1) * c, b * c:(b + 1) * c] for a in range(s) for b in range(s)]

      def ud_loss(ud_params):
        pred, sn = nets.d_apply(ud_params, ud_sn, crop_g, cfg.model.compute_dtype)
        real = losses.gan_l1(pred, 1.0)
        fake_total = 0.0
        for tile in tiles:  # separate calls: BatchNorm and power iteration per call
          pred, sn = nets.d_apply(ud_params, sn, tile, cfg.model.compute_dtype)
          fake_total += losses.gan_l1(pred, 0.0)
        return 0.5 * (real + fake_total / len(tiles)), sn

      (metrics['ud'], ud_sn), grads = jax.value_and_grad(ud_loss, has_aux=True)(ud)
      ud, opt_ud = _adam_step(ud, grads, opt_ud, cfg.optim.lr_ud, cfg)

  metrics['lambda_bic'] = state.lambda_bic
  metrics['lr'] = cfg.optim.lr_g * lr_mult
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
  by_image = jax.sharding.PartitionSpec('images')

  @functools.partial(jax.jit, static_argnums=(2,), donate_argnums=(0,))
  def step(states, plans, cfg):
    body = lambda s, p: jax.vmap(lambda si, pi: train_step(si, pi, cfg))(s, p)
    return jax.shard_map(body, mesh=mesh, in_specs=(by_image, by_image), out_specs=by_image,
                         check_vma=False)(states, plans)
  return step


@functools.partial(jax.jit, static_argnums=(2,))
def init_states(seeds, images, cfg):
  """Stacked initial states: seeds (B,) int32, images (B, H, W, 3)."""
  return jax.vmap(lambda sd, im: init_state(sd, im, cfg))(seeds, images)


def stack_plans(plans):
  """Stacks per-image `crops.CropPlan`s (NumPy) into one batched CropPlan.

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
  return crops.CropPlan(g_corners=stack('g_corners'), d_corners=stack('d_corners'))
