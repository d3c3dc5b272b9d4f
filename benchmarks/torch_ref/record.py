"""Runs the authors' PyTorch IKE (their train.py) seeded, and records the run.

  REC=rec.npz python benchmarks/torch_ref/record.py SRC_DIR SEED [train.py args...]

SRC_DIR is a copy of `src/` from bingbingwei/IKE-InvertibleKernelEstimator,
made outside this repository (their code is never committed here). Needs torch,
numpy, scipy, scikit-image, opencv-python-headless, matplotlib, tqdm; not part
of requirements.txt. With no GPU the `.cuda()` calls become no-ops; TF32 is
off, so a GPU run computes in full float32 like a CPU one. tensorboardX and the
unused ZSSR stage's tensorflow import are stubbed.

With REC set, the run also writes (for `benchmarks/replay.py`): the initial
state_dict of every network (`init/<net>/<key>`), each step's G and D crops as
their DataGenerator returned them (`crops_g`, `crops_d`), the standard-normal
draw of `torch.randn_like` (D's fake noise; `fake_noise`), and the learner's
losses per step (`loss_names`, `losses`).

With STEP_TIMES=times.json set, it writes the seconds each training iteration
took (from the iteration's crop to the end of its learner update), for
`benchmarks/side_by_side.py --torch_src` to compare step times side by side.
"""
import atexit
import json
import importlib.machinery
import os
import random
import runpy
import sys
import time
import types

import numpy as np
import torch

_REC = {'g': [], 'd': [], 'fake_noise': [], 'losses': []}
_INIT = {}


class _NoLog:
  def __init__(self, *a, **k):
    pass

  def __getattr__(self, name):
    return lambda *a, **k: None


def _stub(name, **attrs):
  mod = types.ModuleType(name)
  mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
  mod.__dict__.update(attrs)
  sys.modules[name] = mod


def _hook_recording():
  """Wraps their DataGenerator, Learner.update and torch.randn_like."""
  import data as data_mod  # their modules, importable once SRC_DIR is on sys.path
  import learner as learner_mod
  init, get, update = (data_mod.DataGenerator.__init__, data_mod.DataGenerator.__getitem__,
                       learner_mod.Learner.update)
  randn_like = torch.randn_like

  def init_rec(self, conf, gan):
    for name, mod in vars(gan).items():
      if isinstance(mod, torch.nn.Module):
        for k, v in mod.state_dict().items():
          _INIT[f'{name}/{k}'] = v.detach().cpu().numpy().copy()
    init(self, conf, gan)

  def get_rec(self, idx):
    out = get(self, idx)
    _REC['g'].append(out[0].detach().cpu().numpy()[0])
    _REC['d'].append(out[1].detach().cpu().numpy()[0])
    return out

  def update_rec(self, iteration, gan):
    _REC['losses'].append({k: float(v.detach()) for k, v in vars(gan).items()
                           if 'loss' in k.lower() and isinstance(v, torch.Tensor)
                           and v.numel() == 1})
    return update(self, iteration, gan)

  def randn_like_rec(t, *a, **k):
    out = randn_like(t, *a, **k)
    _REC['fake_noise'].append(out.detach().cpu().numpy()[0])
    return out

  data_mod.DataGenerator.__init__ = init_rec
  data_mod.DataGenerator.__getitem__ = get_rec
  learner_mod.Learner.update = update_rec
  torch.randn_like = randn_like_rec


_TIMES = []


def _hook_timing():
  """Times each iteration: from DataGenerator.__getitem__ to Learner.update's end."""
  import data as data_mod  # pylint: disable=g-import-not-at-top
  import learner as learner_mod  # pylint: disable=g-import-not-at-top
  get, update = data_mod.DataGenerator.__getitem__, learner_mod.Learner.update
  start = []

  def get_timed(self, idx):
    start.append(time.perf_counter())
    return get(self, idx)

  def update_timed(self, iteration, gan):
    out = update(self, iteration, gan)
    _TIMES.append(time.perf_counter() - start[-1])
    return out

  data_mod.DataGenerator.__getitem__ = get_timed
  learner_mod.Learner.update = update_timed


def _save_times():
  with open(os.environ['STEP_TIMES'], 'w') as f:
    json.dump({'step_s': _TIMES, 'torch_version': torch.__version__,
               'threads': torch.get_num_threads()}, f)


def _save_record():
  arrays = {'init/' + k: v for k, v in _INIT.items()}
  for name, key in (('crops_g', 'g'), ('crops_d', 'd'), ('fake_noise', 'fake_noise')):
    if _REC[key]:
      arrays[name] = np.stack(_REC[key]).astype(np.float32)
  if _REC['losses']:
    keys = sorted(_REC['losses'][0])
    arrays['loss_names'] = np.array(keys)
    arrays['losses'] = np.array([[r.get(k, np.nan) for k in keys] for r in _REC['losses']])
  np.savez(os.environ['REC'], **arrays)
  print(f"recorded {len(_REC['g'])} steps to {os.environ['REC']}")


def main():
  src, seed = os.path.abspath(sys.argv[1]), int(sys.argv[2])
  _stub('tensorboardX', SummaryWriter=_NoLog)
  _stub('tensorflow')
  if seed >= 0:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
  torch.backends.cudnn.allow_tf32 = False
  torch.backends.cuda.matmul.allow_tf32 = False
  if not torch.cuda.is_available():
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.cuda.set_device = lambda *a, **k: None
  os.chdir(src)
  sys.path.insert(0, src)
  if os.environ.get('REC'):
    _hook_recording()
    atexit.register(_save_record)
  if os.environ.get('STEP_TIMES'):
    _hook_timing()
    atexit.register(_save_times)
  sys.argv = ['train.py'] + sys.argv[3:]
  runpy.run_path('train.py', run_name='__main__')


if __name__ == '__main__':
  main()
