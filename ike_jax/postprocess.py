"""Post-processing: a better SR image from the kernel G estimated.

The kernel is estimated once per image (`ike_jax.estimate`) and passed
in. `sr_kernel` turns it into the blur the SR stage assumes: the N largest
taps kept (`--lever_kernel_taps`, KernelGAN's post-processing), derived to x4
when G trained at x2 (KernelGAN's x4 recipe, `kernel.x4_from_x2`), scaled to
unit sum per colour (a blur keeps brightness; under the paper's
colour-summing bicubic target G's map does not sum to 1). `apply` then runs
what `config.PostConfig` asks for: `--zssr` replaces the SR image by a ZSSR
net's, then `--refine` makes it consistent with the kernel, by the Fourier
solver (`solve.solve`: data term and total variation by half-quadratic
splitting, each round a closed form) or by projected gradient steps
(`refine.back_project`), as `--refine_solver` says. `final` is the uint8 SR
image of a whole photo, the Fourier solver run window by window (`tiling`);
`photo_sr`, the pipeline's entry, runs it with what the estimate asks for, in
the photo's grey levels or, for a blur that acted on light, in linear light.

Pure array code: no file I/O.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import colours
from ike_jax import data
from ike_jax import errors
from ike_jax import kernel as kernel_lib
from ike_jax import refine
from ike_jax import resize
from ike_jax import solve
from ike_jax import tiling
from ike_jax import zssr


def sr_kernel(estimate, trained_scale, scale, taps=0):
  """The per-colour SR kernel and its origin from a kernel estimate.

  Args:
    estimate: `readout.estimate_kernel`'s dict ('per_colour', 'origin') for G
      at `trained_scale`.
    trained_scale: the scale G trained at.
    scale: the job's scale.
    taps: keep each colour's `taps` largest taps (0: all), before any x4
      derivation, as KernelGAN does.
  Returns:
    ((C, k, k) float32 unit-sum kernels, (row, col) origin).
  """
  per_colour, origin = np.asarray(estimate['per_colour']), estimate['origin']
  if taps:
    per_colour = kernel_lib.largest_taps(per_colour, taps)
  if trained_scale != scale:
    if (trained_scale, scale) != (2, 4):
      raise ValueError(f'cannot derive an x{scale} kernel from an x{trained_scale} one')
    per_colour = np.stack([kernel_lib.x4_from_x2(k / k.sum()) for k in per_colour])
    origin = (3 * origin[0], 3 * origin[1])
  per_colour = per_colour / per_colour.sum(axis=(1, 2), keepdims=True)
  return jnp.asarray(per_colour, jnp.float32), origin


def for_estimate(post, estimate):
  """The post-processing an estimate asks for: an estimator that chose among
  candidate kernels may set the SR prior ('sr_prior') and solver
  ('sr_solver'), or ask for no refinement at all ('refine': False, its
  do-no-harm output). Data, not a switch on the estimator."""
  if estimate.get('refine') is False:
    return dataclasses.replace(post, refine=False, zssr=False)
  if 'sr_prior' in estimate:
    post = dataclasses.replace(post, refine_prior=float(estimate['sr_prior']))
  if 'sr_solver' in estimate:
    post = dataclasses.replace(post, refine_solver=str(estimate['sr_solver']))
  return post


# SR rows blended at a time by `blend`.
BLEND_ROWS = 512


def companion_sr(lr_u8, estimate, post, scale, max_memory_gb=0.0, extra_bytes=0, log=None,
                 rounded=True):
  """The SR image (`final`) of the estimate's 'companion_kernel' ((C, k, k),
  the estimate's origin); `log`, `rounded`: as `final`'s."""
  k = np.asarray(estimate['companion_kernel'], np.float32)
  return final(None, lr_u8, jnp.asarray(k / k.sum(axis=(1, 2), keepdims=True)),
               estimate['origin'], post, scale, log=log, max_memory_gb=max_memory_gb,
               extra_bytes=extra_bytes, rounded=rounded)


def blend(sr, other, weight):
  """(1 - weight) sr + weight other, written into `other` (a writable copy
  where it is not) band by band (float32 copies of a band only); rounded
  where `other` is uint8."""
  out = other if other.flags.writeable else other.copy()
  w = np.float32(weight)
  for top in range(0, out.shape[0], BLEND_ROWS):
    rows = slice(top, top + BLEND_ROWS)
    mean = (1 - w) * sr[rows].astype(np.float32) + w * out[rows].astype(np.float32)
    out[rows] = np.clip(np.round(mean), 0, 255) if out.dtype == np.uint8 else mean
  return out


def with_companion(sr, lr_u8, estimate, post, scale, max_memory_gb=0.0, extra_bytes=0,
                   log=None, rounded=True):
  """`sr` (the estimate's kernel's `final`) blended with `companion_sr` at
  'companion_weight' on the latter; `sr` itself where the estimate has none.
  Two deblurrings by kernels that err differently ring differently: their
  mean keeps what both restore (docs/method.md, "Two kernels, one image").
  The companion's windows count `sr` as resident (`max_memory_gb`,
  `extra_bytes` as `final`'s); `log`: progress lines (None: silent);
  `rounded`: as `final`'s."""
  if 'companion_kernel' not in estimate:
    return sr
  if log is not None:
    log(f'SR stage again with the companion kernel (blend weight {estimate["companion_weight"]:g})')
  other = companion_sr(lr_u8, estimate, post, scale, max_memory_gb, extra_bytes + sr.nbytes, log,
                       rounded)
  return blend(sr, other, estimate['companion_weight'])


def apply(sr, lr, k, origin, post, scale, seed=0, zssr_crop=64, log=None):
  """The SR image after `--zssr` and then `--refine` (as `post` asks).

  Args:
    sr: (sH, sW, 3) SR image in [-1, 1] (G's inverse, or bicubic).
    lr: (H, W, 3) LR input in [-1, 1].
    k, origin: the SR kernel (`sr_kernel`).
    post: a `config.PostConfig`.
    scale: s.
    seed: seed of the ZSSR net.
    zssr_crop: side of ZSSR's training crops (clipped to the image).
    log: progress sink for the ZSSR training (None: silent).
  Returns:
    (sH, sW, 3) NumPy float32 in [-1, 1].
  """
  lr = jnp.asarray(lr, jnp.float32)
  if post.zssr:
    params, _ = zssr.train_zssr(jax.random.PRNGKey(seed), lr, k, scale, origin,
                                steps=post.zssr_steps, crop=zssr_crop, log=log)
    sr = zssr.apply_zssr(params, lr, scale)
  if post.refine and post.refine_solver == 'fourier':
    sr = jnp.clip(solve.solve(lr, k, jnp.asarray(sr), scale=scale, origin=tuple(origin),
                              **tiling.fourier_settings(post)), -1.0, 1.0)
  elif post.refine:
    sr = refine.back_project(jnp.asarray(sr), lr, k, scale, origin,
                             iterations=post.refine_iterations, prior_weight=post.refine_prior)
  return np.asarray(sr)


# Peak bytes per HR px of the gradient SR stage, which holds the whole image
# (three colours, its start and the LR image included): 179 B/px between a
# 512x512 and a 1536x1536 output at x2 (400 and 758 MB peak RSS).
GRADIENT_BYTES_PER_PX = 180


def windows(lr_shape, post, scale, tile=0, max_memory_gb=0.0, extra_bytes=0):
  """The windows `final` cuts a photo into (`tiling.plan`), or None when its
  SR stage is not the Fourier solver. Raises `errors.UserError` when the
  photo cannot fit `max_memory_gb` (checked before anything runs; the
  gradient solver's whole-image need against it too); `extra_bytes`: what the
  kernel estimate leaves resident besides."""
  if post.refine and post.refine_solver == 'fourier':
    return tiling.plan(lr_shape, scale, tile, max_memory_gb, post.refine_context, extra_bytes)
  if post.refine and max_memory_gb:
    h, w = lr_shape[:2]
    need = tiling.RUNTIME_BYTES + extra_bytes + GRADIENT_BYTES_PER_PX * h * w * scale * scale
    if need > max_memory_gb * 2 ** 30:
      raise errors.UserError(
          f'a {w}x{h} photo at x{scale} needs about {need / 2 ** 30:.1f} GB with '
          f'--refine_solver=gradient (the whole photo at once); --max_memory_gb='
          f'{max_memory_gb:g} is too low (--refine_solver=fourier goes window by window)')
  return None


def final(start, lr_u8, k, origin, post, scale, seed=0, zssr_crop=64, log=None, tile=0,
          max_memory_gb=0.0, extra_bytes=0, rounded=True):
  """The uint8 SR image of a whole photo: `apply`, with the Fourier solver
  run window by window (`tiling`), so that memory is bounded by a window.

  Args:
    start: (sH, sW, 3) start in [-1, 1] (G's inverse), or None: MATLAB bicubic
      (made window by window when the Fourier solver runs).
    lr_u8: (H, W, 3) uint8 LR input (or float grey levels in 0..255).
    k, origin, post, scale, seed, zssr_crop, log: as `apply`.
    tile, max_memory_gb, extra_bytes: the windows (`windows`; 0: the defaults).
    rounded: False: float32 grey levels in 0..255, not rounded.
  Returns:
    (sH, sW, 3) uint8 (or float32).
  """
  lr = data.to_model(lr_u8)
  if post.zssr:
    start = apply(start, lr, k, origin, dataclasses.replace(post, refine=False), scale, seed,
                  zssr_crop, log)
  plan = windows(lr_u8.shape, post, scale, tile, max_memory_gb, extra_bytes)
  if plan is not None:
    return tiling.solve_photo(lr_u8, start, k, origin, scale, tiling.fourier_settings(post), plan,
                              log, rounded)
  if start is None:
    start = resize.bicubic_upscale(lr_u8, scale)
    if not post.refine:
      return start if rounded else start.astype(np.float32)
    start = data.to_model(start)
  sr = apply(start, lr, k, origin, dataclasses.replace(post, zssr=False), scale, seed, zssr_crop,
             log)
  return data.from_model(sr) if rounded else np.clip((sr + 1) * np.float32(127.5), 0, 255)


def light_bytes(lr_shape, scale):
  """What `photo_sr` in light holds beyond what `final` counts (a uint8
  output): the SR image in float32 beside its uint8 encoding (12 bytes per HR
  px), the photo's light in float32 (12 per LR px) and the encoding's float64
  bands (about 6 arrays of `colours.ENCODE_ROWS` rows)."""
  h, w = lr_shape[:2]
  return (12 * h * w * scale * scale + 12 * h * w
          + 6 * 8 * 3 * colours.ENCODE_ROWS * w * scale)


def photo_sr(start, lr_u8, estimate, post, scale, *, light=False, taps=0, seed=0, zssr_crop=64,
             log=None, max_memory_gb=0.0, extra_bytes=0):
  """A photo's uint8 SR image from its kernel estimate, and the self-check.

  `final` with the estimate's kernel (`sr_kernel`, `taps` as there) and the
  post-processing it asks for (`for_estimate`), blended with its companion
  kernel's (`with_companion`). `light`: the photo's blur acted on linear
  light, as a lens's or a moving camera's does before the camera encodes the
  photo; the estimate was then made from its light (`colours.light_levels`,
  rounded), the SR stage deblurs the light, unrounded, and the SR image is
  encoded again (docs/method.md, "Blur in linear light"); so is a start
  (G's inverse) made from the light, whatever runs after it. An estimate with
  no start that asks for no SR stage gives bicubic of the photo as it is,
  either way.

  Returns:
    ((sH, sW, 3) uint8, `kernel.self_check` in grey levels of what was
    deblurred).
  """
  kern, origin = sr_kernel(estimate, estimate['scale'], scale, taps)
  post = for_estimate(post, estimate)
  light = light and (post.refine or post.zssr or start is not None)
  lr = colours.light_levels(lr_u8) if light else lr_u8
  memory = dict(max_memory_gb=max_memory_gb,
                extra_bytes=extra_bytes + (light_bytes(lr.shape, scale) if light else 0))
  sr = final(start, lr, kern, origin, post, scale, seed, zssr_crop, log, rounded=not light,
             **memory)
  sr = with_companion(sr, lr, estimate, post, scale, log=log, rounded=not light, **memory)
  check = kernel_lib.self_check(sr, lr, kern, scale, origin)
  return (colours.encoded_u8(sr) if light else sr), check
