r"""Replays a recorded run of the authors' PyTorch IKE step for step in ike_jax.

  python -m benchmarks.replay --flagfile=flags/paper_x2.flags --record=REC.npz \
      [--torch_sr=SR.png] [--output_dir=runs/replay] [--results=...]

Parity with the same seed: the run starts from the PyTorch run's initial
weights and, at every step, trains on the very crops (D's accumulated noise
included) and D fake-noise draws the PyTorch run used, so the two differ only
in their arithmetic. The per-step bicubic loss of both runs is compared (first
steps: identical inputs, identical math), then the final SR image of the
parity input (`benchmarks/parity.py`) is scored like the PyTorch one.

The record is an .npz written around the authors' `train.py` (x2 README
command) by `benchmarks/torch_ref/record.py` with REC set (it hooks their
DataGenerator, Learner and torch.randn_like; their code is not part of this
repository):
  init/<net>/<state_dict key>   initial weights of G, D, UD, U (PyTorch layout)
  crops_g (T, 3, c, c), crops_d (T, 3, c/2, c/2)   each step's crops in [-1, 1]
  fake_noise (T, 3, c/2, c/2)   the standard-normal draw added (/255) to D's fake
  loss_names (K,), losses (T, K)   the learner's view of each step's losses
"""

import functools
import json
import os
import time

from absl import app
from absl import flags
import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import parity
from ike_jax import cli
from ike_jax import data
from ike_jax import errors
from ike_jax import infer
from ike_jax import loop
from ike_jax import metrics
from ike_jax import outputs
from ike_jax import presets
from ike_jax import resize
from ike_jax import train

presets.define_config_flags(flags.FLAGS)
flags.DEFINE_string('record', None, 'The PyTorch run\'s record (.npz, see the module doc).')
flags.DEFINE_string('torch_sr', None, 'The PyTorch run\'s SR image of the parity input (PNG).')
flags.DEFINE_integer('steps', 0, 'Steps to replay (0: every recorded step).')
flags.DEFINE_integer('report_every', 50, 'Fetch and print the losses every N steps.')
flags.DEFINE_string('output_dir', 'runs/replay', 'Where the SR image and plots go.')
flags.DEFINE_string('results', None, 'Results JSON (default: <output_dir>/replay.json).')
flags.DEFINE_bool('overwrite', False, 'Replace an earlier replay in --output_dir.')
FLAGS = flags.FLAGS

RECORD_KEYS = ('crops_g', 'crops_d', 'fake_noise', 'loss_names', 'losses')

# The PyTorch D (and UD): its convs in our layer order, and the BatchNorm after each.
D_CONVS = ('first_layer', 'feature_block.0', 'feature_block.3', 'feature_block.6',
           'feature_block.9', 'feature_block.12', 'final_layer.0')
D_NORMS = {1: 'feature_block.1', 2: 'feature_block.4', 3: 'feature_block.7',
           4: 'feature_block.10', 5: 'feature_block.13'}


def conv_from_torch(w_oihw):
  """A PyTorch conv weight (O, I, kh, kw) as ours (kh, kw, I, O); both correlate."""
  return jnp.asarray(np.transpose(w_oihw, (2, 3, 1, 0)), jnp.float32)


def _get(record, key, shape=None):
  name = f'init/{key}'
  if name not in record:
    raise errors.UserError(f'the record has no {name!r}: not a record of the x2 README command?')
  value = np.asarray(record[name], np.float32)
  if shape is not None and value.shape != tuple(shape):
    raise errors.UserError(f'{name} has shape {value.shape}, this config needs {tuple(shape)}')
  return value


def _convs(record, prefix, like, first=0):
  """Our list of {'w', 'b'} convs from PyTorch `prefix`{first + k}.weight/bias."""
  out = []
  for k, layer in enumerate(like, start=first):
    kh, kw, ci, co = layer['w'].shape
    out.append({'w': conv_from_torch(_get(record, f'{prefix}{k}.weight', (co, ci, kh, kw))),
                'b': jnp.asarray(_get(record, f'{prefix}{k}.bias', (co,)))})
  return out


def _discriminator(record, net, like):
  params, sn = [], []
  for i, (name, layer) in enumerate(zip(D_CONVS, like)):
    kh, kw, ci, co = layer['w'].shape
    new = {'w': conv_from_torch(_get(record, f'{net}/{name}.weight_orig', (co, ci, kh, kw))),
           'b': jnp.asarray(_get(record, f'{net}/{name}.bias', (co,)))}
    if i in D_NORMS:
      new['bn_scale'] = jnp.asarray(_get(record, f'{net}/{D_NORMS[i]}.weight', (co,)))
      new['bn_offset'] = jnp.asarray(_get(record, f'{net}/{D_NORMS[i]}.bias', (co,)))
    params.append(new)
    sn.append(jnp.asarray(_get(record, f'{net}/{name}.weight_u', (co,))))
  return params, sn


def state_from_torch(record, state, cfg):
  """`state` (one image's TrainState) with G, D, UD and U set to the record's init.

  `cfg` is the `config.TrainConfig` the state was made with.

  G: PyTorch `operations.{b+1}.{F,G,R}.conv{k+1}` is our block b's subnet layer k
  (operation 0 is the parameter-free squeeze). D/UD: the spectral norm's
  `weight_orig` and power-iteration vector `weight_u`. U: `conv{k}`.
  """
  if cfg.scale != 2 or cfg.model.generator != 'flow':
    raise errors.UserError('replay covers the x2 README command (--scale=2, the flow G)')
  blocks = []
  for b, block in enumerate(state.g['stages'][0]):
    blocks.append({name: _convs(record, f'G/operations.{b + 1}.{name}.conv', layers, 1)
                   for name, layers in block.items()})
  d, d_sn = _discriminator(record, 'D', state.d)
  ud, ud_sn = _discriminator(record, 'UD', state.ud)
  u = _convs(record, 'U/conv', state.u)
  return state.replace(g={'stages': [blocks]}, d=d, d_sn=d_sn, ud=ud, ud_sn=ud_sn, u=u)


def chw_to_batch(a):
  """(3, H, W) PyTorch crop -> (1, H, W, 3)."""
  return jnp.asarray(np.transpose(a, (1, 2, 0))[None], jnp.float32)


@functools.partial(jax.jit, static_argnums=(4,), donate_argnums=(0,))
def _step(state, crop_g, crop_d, fake_noise, cfg):
  return train.step_on_crops(state, crop_g, crop_d, fake_noise, cfg)


def replay(record, lr_u8, cfg, steps=0, report_every=50, log=print):
  """Trains from the record's init on its crops and noise.

  `cfg` is the run's `config.Config` (its seed makes the state the record's
  weights then replace).
  Returns (final TrainState, per-step metrics {name: (T,)}).
  """
  n = len(record['crops_g'])
  steps = n if not steps else min(steps, n)
  static = cfg.train
  if record['crops_g'].shape[-1] != static.crop:
    raise errors.UserError(f"the record's crops are {record['crops_g'].shape[-1]} pixels, "
                           f'the config says --crop={static.crop}')
  state = train.init_state(cfg.run.seed, data.to_model(lr_u8), static)
  state = state_from_torch(record, state, static)
  history, pending, t0 = {}, [], time.perf_counter()
  for i in range(steps):
    state, m = _step(state, chw_to_batch(record['crops_g'][i]), chw_to_batch(record['crops_d'][i]),
                     chw_to_batch(record['fake_noise'][i]), static)
    pending.append(m)
    if (i + 1) % report_every and i + 1 != steps:
      continue
    for row in jax.device_get(pending):
      for k, v in row.items():
        history.setdefault(k, []).append(float(v))
    pending = []
    per = (time.perf_counter() - t0) / (i + 1)
    log(f"step {i + 1:5d}/{steps} bic {history['bic'][-1]:.5g} | {per:.2f} s/step, "
        f'ETA {loop.format_eta(per * (steps - i - 1))}')
  return state, {k: np.asarray(v) for k, v in history.items()}


def compare_losses(ours, record):
  """Our bicubic loss against the PyTorch run's, step by step."""
  names = [str(n) for n in record['loss_names']]
  theirs = np.asarray(record['losses'])[:len(ours['bic']), names.index('loss_bicubic')]
  rel = np.abs(ours['bic'] - theirs) / np.abs(theirs)
  over = np.flatnonzero(rel > 1e-3)
  picks = [i for i in (0, 1, 2, 4, 9, 49, 99, 199, 499, 749, 999) if i < len(rel)]
  return {'steps': [i + 1 for i in picks], 'ours': ours['bic'][picks].tolist(),
          'torch': theirs[picks].tolist(), 'rel_diff': rel[picks].tolist(),
          'first_step_over_1e-3': int(over[0]) + 1 if over.size else None,
          'median_rel_diff_first_10': float(np.median(rel[:10]))}, theirs


def main(argv):
  del argv
  if not FLAGS.record:
    raise app.UsageError('--record is required')
  cfg = presets.config_from_flag_values(FLAGS)
  try:
    record = dict(np.load(FLAGS.record))
  except (OSError, ValueError) as e:
    raise errors.UserError(f'cannot read --record {FLAGS.record}: {e}') from None
  missing = [k for k in RECORD_KEYS if k not in record]
  if missing:
    raise errors.UserError(f'--record {FLAGS.record} lacks {", ".join(missing)} '
                           '(write it with benchmarks/torch_ref/record.py and REC set)')
  results = FLAGS.results or os.path.join(FLAGS.output_dir, 'replay.json')
  sr_path = os.path.join(FLAGS.output_dir, 'sr_replay.png')
  for path in (sr_path, results):
    if os.path.exists(path) and not FLAGS.overwrite:
      raise errors.UserError(f'{path} exists; pass --overwrite to replace it')
  torch_sr = None
  if FLAGS.torch_sr:
    try:
      torch_sr = iio.imread(FLAGS.torch_sr)[..., :3]
    except (OSError, ValueError) as e:
      raise errors.UserError(f'cannot read --torch_sr {FLAGS.torch_sr}: {e}') from None
  hr, lr, k = parity.parity_input()
  if torch_sr is not None and torch_sr.shape != hr.shape:
    raise errors.UserError(f'--torch_sr is {torch_sr.shape}, the parity SR image is {hr.shape}')
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  state, ours = replay(record, lr, cfg, FLAGS.steps, FLAGS.report_every)
  losses, theirs = compare_losses(ours, record)
  sr = data.from_model(infer.super_resolve(state.g, state.u, data.to_model(lr), cfg.train,
                                           self_ensemble=cfg.post.self_ensemble))
  outputs.write_png(sr_path, sr)
  steps = np.arange(1, len(ours['bic']) + 1)
  outputs.loss_curves_png(os.path.join(FLAGS.output_dir, 'bic_loss_replay.png'),
                          {'bicubic loss, ike_jax': ours['bic'],
                           'bicubic loss, PyTorch': theirs,
                           '|relative difference|': np.abs(ours['bic'] - theirs) / np.abs(theirs)},
                          steps)
  report = {'config': cfg.to_dict(), 'record': FLAGS.record, 'steps': int(len(steps)),
            'device': str(jax.devices()[0]), 'bicubic_loss': losses,
            'bicubic': parity.score_row(resize.bicubic_upscale(lr, 2), hr, lr, k),
            'ike_jax_replay': parity.score_row(sr, hr, lr, k)}
  if torch_sr is not None:
    report['pytorch'] = parity.score_row(torch_sr, hr, lr, k)
    report['replay_vs_pytorch_psnr'] = metrics.psnr(sr, torch_sr)
  outputs.write_json(results, report)
  print(json.dumps(report['bicubic_loss']))
  for name in ('bicubic', 'ike_jax_replay', 'pytorch'):
    if name in report:
      r = report[name]
      print(f"{name:15s} Y-PSNR {r['psnr_y']:.2f}  grid {r['grid']:.3f}  LR re-degraded {r['lr_psnr']:.2f}")
  if 'replay_vs_pytorch_psnr' in report:
    print(f"replay SR vs PyTorch SR: {report['replay_vs_pytorch_psnr']:.2f} dB")
  return 0


if __name__ == '__main__':
  cli.run_app(main)
