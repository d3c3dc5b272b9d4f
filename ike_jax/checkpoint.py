"""Checkpoints of a batch's train states (orbax) and a stop-on-signal flag.

A checkpoint holds the stacked `TrainState` (parameters, Adam states, the
noisy training image, schedule values, step and rng) and the metric history,
so a resumed run continues to the same result as an uninterrupted one.
"""

import glob
import io
import os
import shutil
import signal
import threading

import jax
import numpy as np

from ike_jax import outputs

_HISTORY = 'history.npz'  # inside the state directory


class StopFlag:
  """Set by SIGINT/SIGTERM while installed; the training loop polls it."""

  def __init__(self):
    self._event = threading.Event()
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._previous[sig] = signal.signal(sig, lambda *_: self._event.set())
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    return False

  def __call__(self):
    return self._event.is_set()


class Checkpointer:
  """Saves and restores one batch's states under `directory`."""

  def __init__(self, directory):
    self.directory = os.path.abspath(directory)

  @staticmethod
  def _ckpt():
    # Made when needed (it starts threads). One instance per save: `save` is
    # asynchronous, so it must be waited for and closed on the same instance.
    # orbax is imported here, not at the top: it takes seconds to import, and
    # a run of an estimator that trains nothing never saves a checkpoint.
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
    return ocp.StandardCheckpointer()

  @property
  def _state_dir(self):
    return os.path.join(self.directory, 'state')

  def _latest(self):
    """The directory of the last complete save, or None.

    A save is complete once it holds its history (written last). `state.old`
    is the previous save, used when a crash came between the two renames.
    """
    for path in (self._state_dir, self._state_dir + '.old'):
      if os.path.isfile(os.path.join(path, _HISTORY)):
        return path
    return None

  def remove(self):
    """Deletes the checkpoint (after the run's outputs are written)."""
    _rmtree(self.directory)

  def exists(self):
    return self._latest() is not None

  def save(self, states, history):
    """Replaces the checkpoint with `states` and `history`.

    Both go into one new directory that is renamed into place, so a kill at
    any moment leaves a complete checkpoint (this one or the previous one).
    """
    os.makedirs(self.directory, exist_ok=True)
    host = jax.device_get(states)
    tmp, old = self._state_dir + '.tmp', self._state_dir + '.old'
    for leftover in glob.glob(glob.escape(tmp) + '*'):  # from a save that was killed
      _rmtree(leftover)
    ckpt = self._ckpt()
    try:
      ckpt.save(tmp, host, force=True)
      ckpt.wait_until_finished()
    finally:
      ckpt.close()
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in history.items()})
    outputs.write_bytes_atomic(os.path.join(tmp, _HISTORY), buf.getvalue())
    if os.path.isdir(self._state_dir):
      _rmtree(old)  # stale: `state` is complete
      os.replace(self._state_dir, old)
    os.replace(tmp, self._state_dir)
    _rmtree(old)

  def restore(self, template):
    """Returns (states, history) restored into the structure of `template`."""
    path = self._latest()
    host_template = jax.device_get(template)
    ckpt = self._ckpt()
    try:
      states = ckpt.restore(path, host_template)
    finally:
      ckpt.close()
    with np.load(os.path.join(path, _HISTORY)) as f:
      history = {k: f[k] for k in f.files}
    return states, history


def _rmtree(path):
  shutil.rmtree(path, ignore_errors=True)
