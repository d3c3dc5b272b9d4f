"""IKE's invertible flow as a kernel estimator (`ike_jax.estimators`), pure functions.

Layout: NHWC. The three colours of an image are a batch of three one-channel
images, `(3, H, W, 1)` (the PyTorch code swaps batch and channel axes).

Per squeeze stage (one for x2, two for x4): a squeeze (space-to-depth or Haar,
1 -> 4 channels per input channel) followed by `blocks` coupling blocks. The
output has `s^2` channels: channel 0 is the down-scaled image, the rest is the
latent `z`; in tri-channel blocks the last channel is the "residual" channel.

Tri-channel coupling, x = (x1 | x2 | x3) with 1, C-2 and 1 channels:

  forward:  u = x1 + F(x2);  y2 = x2 * exp(s(u)) + G(u);  y1 = u + R(x3);  y3 = x3
  inverse:  u = y1 - R(y3);  x2 = (y2 - G(u)) * exp(-s(u));  x1 = u - F(x2)

with `s(u) = clamp * (2 sigmoid(H(u)) - 1)` for affine coupling and `s = 0`
for additive coupling. Two-channel blocks drop R and x3. The PyTorch code's
reverse (`inverse='reference'`) evaluates G and H on `y1` instead of `u`, so it
inverts only when R = 0.

Each subnet (F, G, H, R) is a dense block of five 3x3 convolutions; with
`linear=True` it is affine in its input, and with `fuse_linear` it is composed
into one 11x11 convolution (kernel and bias derived from the five layers on
every call, so the deep-linear parameterisation still trains). The fused form
differs from the layered one only within 5 pixels of a border, where the
layered form zero-pads every intermediate map (biases included).

Equations and the PyTorch code's deviations: `docs/method.md`.

Parameters are a plain pytree: `{'stages': [[block, ...], ...]}`, a block being
`{'F': subnet, 'G': subnet, ['H': subnet,] ['R': subnet]}` and a subnet a list
of five `{'w': (3, 3, Cin, Cout), 'b': (Cout,)}`.
"""

import math

import jax
import jax.numpy as jnp

from ike_jax import layers as nn_layers
from ike_jax import resize

NAME = 'flow'
TRAINS = True
HAS_INVERSE = True
LABEL = 'IKE'  # what its SR image is called in outputs
GROWTH = 32
FUSED_SIZE = 11  # receptive field of five stacked 3x3 convolutions
SUBNET_RADIUS = FUSED_SIZE // 2


def training_scale(scale):
  """The flow trains at the scale it super-resolves."""
  return scale


def receptive_radius(cfg):
  """Bound (HR px) on how far from its block an LR pixel of G can see.

  Each subnet reaches 5 px of its stage's grid. Per block the latent gains
  10 (F, then G on the result) and the LR channel, after B blocks, 10B - 5;
  a squeeze adds one grid step. So: 10B (+1) grid px for every stage but the
  last, 10B - 5 (+1) for the last; the bicubic residual adds 3s + 3.
  """
  r = 0
  for stage in range(cfg.stages):
    step = 2 ** (stage + 1)
    last = stage == cfg.stages - 1
    r += step * (1 + 2 * SUBNET_RADIUS * cfg.model.blocks - (SUBNET_RADIUS if last else 0))
  if cfg.model.bicubic_residual:
    r += 3 * cfg.scale + 3  # align-corners down, then up
  return r


def tile_margins(cfg):
  """Receptive-field margins (input pixels) of G's two local maps.

  Forward: each block chains F then G (R runs beside F), 2 radii on the grid
  of its stage, whose pixel is 2^k input pixels. Inverse: R, G then F, 3
  radii per block, on grids 2^(S-k) times finer than its LR input.
  """
  stages, per = cfg.stages, cfg.model.blocks * SUBNET_RADIUS
  fwd = sum(2 * per * 2 ** k for k in range(1, stages + 1))
  inv = sum(3 * per / 2 ** (stages - k) for k in range(1, stages + 1))
  return {'forward': -(-fwd // cfg.scale) * cfg.scale, 'inverse': math.ceil(inv)}


# ----------------------------------------------------------------- squeeze --

def space_to_depth(x):
  """(N, H, W, C) -> (N, H/2, W/2, 4C); channel `(dy*2 + dx)*C + c`."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // 2, w // 2, 4 * c)


def depth_to_space(y):
  """Inverse of `space_to_depth`: (N, h, w, 4C) -> (N, 2h, 2w, C)."""
  n, h, w, c4 = y.shape
  c = c4 // 4
  y = y.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * h, 2 * w, c)


# Haar bands over a 2x2 block (TL, TR, BL, BR): mean, and three +-1 details.
_HAAR = jnp.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]],
                  jnp.float32)


def haar_forward(x):
  """(N, H, W, C) -> (N, H/2, W/2, 4C); channel `band*C + c`, scaled by 1/4.

  Band 0 is the 2x2 block mean. Exactly invertible, not orthonormal.
  """
  n, h, w, c = x.shape
  blocks = space_to_depth(x).reshape(n, h // 2, w // 2, 4, c)  # position-major
  bands = jnp.einsum('bp,nhwpc->nhwbc', _HAAR, blocks) / 4.0
  return bands.reshape(n, h // 2, w // 2, 4 * c)


def haar_inverse(y):
  """Inverse of `haar_forward` (the transpose of the unscaled +-1 bands)."""
  n, h, w, c4 = y.shape
  bands = y.reshape(n, h, w, 4, c4 // 4)
  blocks = jnp.einsum('bp,nhwbc->nhwpc', _HAAR, bands)
  return depth_to_space(blocks.reshape(n, h, w, c4))


def squeeze_forward(x, kind):
  """Squeeze and its log|det J| per batch element."""
  if kind == 'haar':
    n_blocks = x.shape[1] * x.shape[2] * x.shape[3] // 4
    return haar_forward(x), jnp.full((x.shape[0],), n_blocks * math.log(1 / 16))
  return space_to_depth(x), jnp.zeros((x.shape[0],))


def squeeze_inverse(y, kind):
  if kind == 'haar':
    n_blocks = y.shape[1] * y.shape[2] * y.shape[3] // 4
    return haar_inverse(y), jnp.full((y.shape[0],), n_blocks * math.log(16))
  return depth_to_space(y), jnp.zeros((y.shape[0],))


# ----------------------------------------------------------------- subnets --

def init_dense(key, c_in, c_out):
  """Dense block of five 3x3 convs; conv k sees the input and earlier outputs."""
  widths = [c_in + k * GROWTH for k in range(5)]
  outs = [GROWTH] * 4 + [c_out]
  keys = jax.random.split(key, 5)
  return [{'w': nn_layers.xavier_01(k, (3, 3, wi, wo)), 'b': jnp.zeros((wo,))}
          for k, wi, wo in zip(keys, widths, outs)]


def dense_apply(layers, x, linear, use_bias=True):
  """Applies a dense block to (N, H, W, Cin) -> (N, H, W, Cout)."""
  feats = x
  for i, layer in enumerate(layers):
    y = nn_layers.conv(feats, layer['w'], layer['b'] if use_bias else None)
    if i == len(layers) - 1:
      return y
    if not linear:
      y = jax.nn.leaky_relu(y, 0.2)
    feats = jnp.concatenate([feats, y], axis=-1)


def fuse_dense(layers):
  """Composes a linear dense block into one (11, 11, Cin, Cout) conv + bias.

  The kernel is the block's (bias-free) response to unit impulses, flipped to
  correlation form; the bias is the block's (constant) output on an all-zero
  unbounded input, composed layer by layer. Both are exact for an unbounded
  image.
  """
  c_in = layers[0]['w'].shape[2]
  k, mid = FUSED_SIZE, FUSED_SIZE // 2
  impulses = jnp.zeros((c_in, k, k, c_in)).at[jnp.arange(c_in), mid, mid,
                                               jnp.arange(c_in)].set(1.0)
  response = dense_apply(layers, impulses, linear=True, use_bias=False)
  kernel = response[:, ::-1, ::-1, :].transpose(1, 2, 0, 3)
  feats = jnp.zeros((c_in,))       # constant features: a conv sums its taps
  for layer in layers:
    bias = feats @ layer['w'].sum(axis=(0, 1)) + layer['b']
    feats = jnp.concatenate([feats, bias])
  return {'kernel': kernel, 'bias': bias}


def subnet_apply(p, x, cfg):
  """A subnet: one fused conv ({'kernel', 'bias'}) when `cfg.fused`, else layered."""
  if cfg.fused:
    return nn_layers.conv(x, p['kernel'], p['bias'])
  return dense_apply(p, x, cfg.model.linear)


# ---------------------------------------------------------------- coupling --

def _split(x, tri):
  """(x1, x2, x3): the LR channel, the latent channels, the residual channel."""
  if tri:
    return x[..., :1], x[..., 1:-1], x[..., -1:]
  return x[..., :1], x[..., 1:], None


def _join(x1, x2, x3):
  return jnp.concatenate([x1, x2] if x3 is None else [x1, x2, x3], axis=-1)


def _conditioners(p, u, cfg):
  """Log-scale `s(u)` (None when additive) and shift `G(u)`, shared both ways."""
  shift = subnet_apply(p['G'], u, cfg)
  if cfg.model.coupling != 'affine':
    return None, shift
  h = subnet_apply(p['H'], u, cfg)
  return cfg.model.affine_clamp * (2 * jax.nn.sigmoid(h) - 1), shift


def _residual(p, x3, cfg):
  return 0.0 if x3 is None else subnet_apply(p['R'], x3, cfg)


def _sum_log_scale(s, n):
  return jnp.zeros((n,)) if s is None else jnp.sum(s, axis=(1, 2, 3))


def coupling_forward(p, x, cfg):
  """One coupling block: (N, h, w, C) -> (same, log|det J| of shape (N,))."""
  x1, x2, x3 = _split(x, cfg.model.tri_channel)
  u = x1 + subnet_apply(p['F'], x2, cfg)
  s, shift = _conditioners(p, u, cfg)
  y2 = (x2 if s is None else x2 * jnp.exp(s)) + shift
  y1 = u + _residual(p, x3, cfg)
  return _join(y1, y2, x3), _sum_log_scale(s, x.shape[0])


def coupling_inverse(p, y, cfg):
  """Inverse of `coupling_forward` (exact, or PyTorch's with 'reference')."""
  y1, y2, y3 = _split(y, cfg.model.tri_channel)
  u = y1 - _residual(p, y3, cfg)
  s, shift = _conditioners(p, y1 if cfg.model.inverse == 'reference' else u, cfg)
  x2 = y2 - shift
  x2 = x2 if s is None else x2 * jnp.exp(-s)
  x1 = u - subnet_apply(p['F'], x2, cfg)
  return _join(x1, x2, y3), -_sum_log_scale(s, y.shape[0])


def init_block(key, channels, cfg):
  """Parameters of one coupling block acting on `channels` channels."""
  n_z = channels - 2 if cfg.model.tri_channel else channels - 1
  kf, kg, kh, kr = jax.random.split(key, 4)
  p = {'F': init_dense(kf, n_z, 1), 'G': init_dense(kg, 1, n_z)}
  if cfg.model.coupling == 'affine':
    p['H'] = init_dense(kh, 1, n_z)
  if cfg.model.tri_channel:
    p['R'] = init_dense(kr, 1, 1)
  return p


# -------------------------------------------------------------------- flow --

def init(key, cfg):
  """G's parameters for `cfg.scale` (stages) and `cfg.model.blocks` per stage."""
  stages = []
  for stage in range(cfg.stages):
    keys = jax.random.split(jax.random.fold_in(key, stage), cfg.model.blocks)
    stages.append([init_block(k, 4 ** (stage + 1), cfg) for k in keys])
  return {'stages': stages}


def prepare(params, cfg):
  """Fuses every linear subnet when `cfg.fused` (once per step, on raw params)."""
  if not cfg.fused:
    return params
  return {'stages': [[{name: fuse_dense(sub) for name, sub in block.items()} for block in blocks]
                     for blocks in params['stages']]}


def flow_forward(params, x, cfg):
  """(N, H, W, 1) -> ((N, H/s, W/s, s^2), log|det J| (N,)). Params prepared."""
  logdet = jnp.zeros((x.shape[0],))
  for blocks in params['stages']:
    x, ld = squeeze_forward(x, cfg.model.squeeze)
    logdet += ld
    for p in blocks:
      x, ld = coupling_forward(p, x, cfg)
      logdet += ld
  return x, logdet


def flow_inverse(params, y, cfg):
  """(N, h, w, s^2) -> ((N, s*h, s*w, 1), log|det J^-1| (N,))."""
  logdet = jnp.zeros((y.shape[0],))
  for blocks in reversed(params['stages']):
    for p in reversed(blocks):
      y, ld = coupling_inverse(p, y, cfg)
      logdet += ld
    y, ld = squeeze_inverse(y, cfg.model.squeeze)
    logdet += ld
  return y, logdet


# ------------------------------------------------- G: flow + bicubic residual --

def _down(x, s):
  return resize.torch_align_corners(x, 1 / s)


def _up(x, s):
  return resize.torch_align_corners(x, s)


def _whole(fn, v):
  return fn(v)


def forward(params, x, cfg, local=_whole):
  """HR-side image to (LR image, latent): the learned down-scaling.

  Args:
    params: G's parameters, already passed through `prepare`.
    x: (N, H, W, 1) in [-1, 1], H and W multiples of s.
    local: `local(fn, v)` applies the flow (a local, convolutional map) to v;
      the evaluator passes a tiling version. The bicubic path stays global.
  Returns:
    lr: (N, H/s, W/s, 1); z: (N, H/s, W/s, s^2 - 1).
  """
  s = cfg.scale
  run = lambda v: local(lambda t: flow_forward(params, t, cfg)[0], v)
  if not cfg.model.bicubic_residual:
    out = run(x)
    return out[..., :1], out[..., 1:]
  d = _down(x, s)
  out = run(x - _up(d, s))
  return out[..., :1] + d, out[..., 1:]


def inverse(params, y, z_up, cfg, local=_whole):
  """LR image and up-sampled latent to the SR image (G run backwards).

  Args:
    params: prepared G parameters.
    y: (N, h, w, 1) in [-1, 1]; z_up: (N, h, w, s^2 - 1).
    local: as in `forward`.
  Returns:
    (N, s*h, s*w, 1), unclipped.
  """
  s = cfg.scale
  run = lambda v: local(lambda t: flow_inverse(params, t, cfg)[0], v)
  if not cfg.model.bicubic_residual:
    return run(jnp.concatenate([y, z_up], -1))
  r_lr = y - _up(_down(y, s), s)
  return run(jnp.concatenate([r_lr, z_up], -1)) + _up(y, s)
