"""The networks beside G: the patch discriminators D and UD, and the latent
up-sampler U (`docs/method.md`), as pure `init`/`apply` functions over pytrees.

D (and UD, the same architecture): conv 7x7 (3 -> 64, valid), five
[conv 1x1, BatchNorm, ReLU], conv 1x1 (64 -> 1), sigmoid; every conv spectrally
normalised with one power iteration per call. As in the PyTorch code, BatchNorm
always normalises with the statistics of the current call and every call
advances the power-iteration vectors, so `d_apply` returns the new vectors.
Input (N, H, W, 3) -> output map (N, H - 6, W - 6, 1) in (0, 1).

`dtype` (D, UD, U): the dtype their convolutions compute in. bfloat16 casts
activations and (spectrally normalised) weights to bf16 and accumulates in
float32 (`preferred_element_type`); biases, BatchNorm, losses and the Adam
master weights stay float32. G never takes it: the flow stays float32 so its
inverse and the kernel read from it keep full precision.

U (ZSSR-style): the latent of all three colours merged into one image with
`3 (s^2 - 1)` channels (channel `z*3 + colour`), align-corners bicubic x s, then
eight 3x3 convs with 64 channels and ReLU between them, back to `3 (s^2 - 1)`.
"""

import jax
import jax.numpy as jnp

from ike_jax import colours
from ike_jax import layers
from ike_jax import resize

D_CHANNELS = 64
D_FEATURE_LAYERS = 5
U_CHANNELS = 64
U_LAYERS = 8
BN_EPS = 1e-5
SN_EPS = 1e-12


# ------------------------------------------------------------ discriminator --

def init_discriminator(key):
  """Returns (params, sn_state) of D or UD.

  Conv weights use PyTorch's default init U(+-1/sqrt(fan_in)) (the reference's
  Xavier re-init never reaches spectrally-normalised weights), biases 0,
  BatchNorm scale ~ N(1, 0.02), offset 0; power-iteration vectors u ~ unit.
  """
  shapes = ([(7, 7, 3, D_CHANNELS)] + [(1, 1, D_CHANNELS, D_CHANNELS)] * D_FEATURE_LAYERS
            + [(1, 1, D_CHANNELS, 1)])
  uniform = jax.nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')
  params, sn = [], []
  for i, shape in enumerate(shapes):
    kw, ku, kb = jax.random.split(jax.random.fold_in(key, i), 3)
    layer = {'w': uniform(kw, shape), 'b': jnp.zeros((shape[-1],))}
    if 0 < i < len(shapes) - 1:
      layer['bn_scale'] = 1.0 + 0.02 * jax.random.normal(kb, (shape[-1],))
      layer['bn_offset'] = jnp.zeros((shape[-1],))
    params.append(layer)
    u = jax.random.normal(ku, (shape[-1],))
    sn.append(u / jnp.maximum(jnp.linalg.norm(u), SN_EPS))
  return params, sn


def _normalize(v):
  return v / jnp.maximum(jnp.linalg.norm(v), SN_EPS)


def spectral_normalize(w, u):
  """One power iteration; returns (w / sigma, new u). u, v carry no gradient."""
  mat = w.reshape(-1, w.shape[-1]).T          # (out, in*kh*kw)
  v = _normalize(mat.T @ jax.lax.stop_gradient(u))
  u_new = _normalize(mat @ v)
  u_new, v = jax.lax.stop_gradient(u_new), jax.lax.stop_gradient(v)
  sigma = u_new @ (mat @ v)
  return w / sigma, u_new


def _conv(x, w, b, padding='SAME', dtype=jnp.float32):
  """`layers.conv` computed in `dtype`, accumulated and returned in float32."""
  if jnp.dtype(dtype) == jnp.float32:
    return layers.conv(x, w, b, padding)
  y = jax.lax.conv_general_dilated(
      x.astype(dtype), w.astype(dtype), (1, 1), padding,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      preferred_element_type=jnp.float32)
  return y + b


def d_apply(params, sn, x, dtype=jnp.float32):
  """D(x) for (N, H, W, 3) -> ((N, H-6, W-6, 1) in (0, 1), new sn state)."""
  new_sn = []
  for i, (layer, u) in enumerate(zip(params, sn)):
    w, u = spectral_normalize(layer['w'], u)
    new_sn.append(u)
    x = _conv(x, w, layer['b'], 'VALID', dtype)
    if 'bn_scale' in layer:
      x = jax.nn.relu(layers.batch_norm(x, layer['bn_scale'], layer['bn_offset'], BN_EPS))
  return jax.nn.sigmoid(x), new_sn


# ---------------------------------------------------------------- upsampler --

def init_upsampler(key, scale):
  """U's eight 3x3 convs, Xavier-normal x0.1 (plain normal), biases 0."""
  c = 3 * (scale * scale - 1)
  widths = [c] + [U_CHANNELS] * (U_LAYERS - 1) + [c]
  keys = jax.random.split(key, U_LAYERS)
  return [{'w': layers.xavier_01(k, (3, 3, wi, wo)), 'b': jnp.zeros((wo,))}
          for k, wi, wo in zip(keys, widths[:-1], widths[1:])]


def u_convs(params, x, dtype=jnp.float32):
  """U's conv stack on merged latents (N, H, W, 3Z) -> same shape (float32)."""
  for i, layer in enumerate(params):
    x = _conv(x, layer['w'], layer['b'], 'SAME', dtype)
    if i < len(params) - 1:
      x = jax.nn.relu(x)
  return x


def u_apply(params, z, scale, local=lambda fn, v: fn(v), dtype=jnp.float32):
  """Up-samples the latent: (3, h, w, Z) -> (3, s*h, s*w, Z), Z = s^2 - 1.

  `local(fn, v)` applies the (convolutional) stack; see `estimators.flow.forward`.
  """
  n_z = z.shape[-1]
  x = colours.batch_to_colours(z)[None]                   # (1, h, w, Z*3)
  x = local(lambda t: u_convs(params, t, dtype), resize.torch_align_corners(x, scale))
  x = x[0].reshape(*x.shape[1:3], n_z, 3)              # channel z*3 + colour
  return jnp.moveaxis(x, -1, 0)                        # (3, sh, sw, Z)
