"""Checkpoints of a batch's train states (orbax) and a stop-on-signal flag.

A checkpoint holds the stacked `TrainState` (parameters, Adam states, the
noisy training image, schedule values, step and rng) and the metric history,
so a resumed run continues to the same result as an uninterrupted one.
"""

import io
import os
import shutil
import signal
import threading

import jax
import numpy as np
import orbax.checkpoint as ocp

from ike_jax import outputs


class Interrupted(Exception):
  """Training stopped by SIGINT/SIGTERM after saving a checkpoint."""


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

  @property
  def _ckpt(self):
    return ocp.StandardCheckpointer()  # made when needed: it starts threads

  @property
  def _state_dir(self):
    return os.path.join(self.directory, 'state')

  @property
  def _history_path(self):
    return os.path.join(self.directory, 'history.npz')

  def remove(self):
    """Deletes the checkpoint (after the run's outputs are written)."""
    _rmtree(self.directory)

  def exists(self):
    return os.path.isdir(self._state_dir) and os.path.isfile(self._history_path)

  def save(self, states, history):
    """Writes states (overwriting the previous checkpoint) and history."""
    os.makedirs(self.directory, exist_ok=True)
    host = jax.device_get(states)
    tmp = self._state_dir + '.tmp'
    _rmtree(tmp)  # left over from a save that was killed
    self._ckpt.save(tmp, host, force=True)
    self._ckpt.wait_until_finished()
    if os.path.isdir(self._state_dir):
      old = self._state_dir + '.old'
      os.replace(self._state_dir, old)
      os.replace(tmp, self._state_dir)
      _rmtree(old)
    else:
      os.replace(tmp, self._state_dir)
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in history.items()})
    outputs.write_bytes_atomic(self._history_path, buf.getvalue())

  def restore(self, template):
    """Returns (states, history) restored into the structure of `template`."""
    host_template = jax.device_get(template)
    states = self._ckpt.restore(self._state_dir, host_template)
    with np.load(self._history_path) as f:
      history = {k: f[k] for k in f.files}
    return states, history


def _rmtree(path):
  shutil.rmtree(path, ignore_errors=True)
