"""Robustness: bad inputs and flags, conversions, resume, atomic writes, NaNs.

Every training run here uses the tiny configuration of `test_cli.py` (crop 16,
one block, a 40x40 image after trimming; iterations and metrics_every are
run-only), so the shared compilation cache of `conftest.py` compiles it once.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from ike_jax import checkpoint
from ike_jax import config as config_lib
from ike_jax import crops
from ike_jax import data
from ike_jax import errors
from ike_jax import estimate
from ike_jax import loop
from ike_jax import pipeline
from ike_jax import report
from ike_jax import train
from tests.test_cli import ROOT
from tests.test_cli import run_cli
from tests.test_cli import write_png

TINY = ['--crop=16', '--blocks=1', '--iterations=3', '--metrics_every=3']
CFG = config_lib.Config.create(crop=16, blocks=1, iterations=3, metrics_every=3)
FAST_S = 30  # a run that compiles takes longer than this on the test machines


def _files(root):
  """Every file and folder under `root` (relative paths)."""
  found = set()
  for d, dirs, names in os.walk(root):
    found |= {os.path.relpath(os.path.join(d, n), root) for n in names + dirs}
  return found


def _rgb(size, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)


def _one_error_line(stderr):
  lines = [l for l in stderr.splitlines() if l.strip()]
  assert len(lines) == 1, stderr
  assert lines[0].startswith('error: ') and 'Traceback' not in stderr
  return lines[0]


# --- Bad inputs and flags: one line, exit 2, nothing compiled or written. ----


def _truncated_png(path):
  Image.fromarray(_rgb((40, 40))).save(path)
  raw = path.read_bytes()
  path.write_bytes(raw[:len(raw) // 2])


def _corrupt_png(path):
  Image.fromarray(_rgb((40, 40))).save(path)
  raw = bytearray(path.read_bytes())
  mid = len(raw) // 2
  raw[mid:mid + 64] = bytes(64)
  path.write_bytes(bytes(raw))


def _bad_case(name, tmp):
  """(CLI arguments, a word the error line must contain) for case `name`."""
  good = str(write_png(tmp / 'good.png', (40, 40)))
  out = f'--output_dir={tmp / "out"}'
  if name == 'missing_path':
    return [f'--image={tmp / "nope.png"}', out], 'no such file'
  if name == 'directory':
    (tmp / 'adir.png').mkdir()
    return [f'--image={tmp / "adir.png"}', out], 'is a directory'
  if name == 'not_an_image':
    (tmp / 'notes.png').write_text('not an image\n' * 20)
    return [f'--image={tmp / "notes.png"}', out], 'not an image'
  if name == 'truncated_png':
    _truncated_png(tmp / 'cut.png')
    return [f'--image={tmp / "cut.png"}', out], 'truncated'
  if name == 'corrupt_png':
    _corrupt_png(tmp / 'bad.png')
    return [f'--image={tmp / "bad.png"}', out], 'corrupt'
  if name == 'one_bad_among_many':  # every input is checked before training
    return [f'--images={good},{tmp / "nope.png"}', out], 'no such file'
  if name == 'too_small':
    write_png(tmp / 'small.png', (12, 30))
    return [f'--image={tmp / "small.png"}', out], 'needs at least 16x16'
  if name == 'too_small_after_trim':  # 15 rows trim to 14 at x2
    write_png(tmp / 'small.png', (15, 40))
    return [f'--image={tmp / "small.png"}', out], 'needs at least 16x16'
  if name == 'output_dir_under_a_file':
    (tmp / 'file.txt').write_text('x')
    return [f'--image={good}', f'--output_dir={tmp / "file.txt" / "out"}'], 'output directory'
  if name == 'output_dir_is_a_file':
    (tmp / 'file.txt').write_text('x')
    return [f'--image={good}', f'--output_dir={tmp / "file.txt"}'], 'output directory'
  flag_cases = {
      'scale_3': (['--scale=3'], 'scale must be 2 or 4'),
      'scale_0': (['--scale=0'], 'scale must be 2 or 4'),
      'batch_size_negative': (['--batch_size=-1'], 'batch_size must be >= 0'),
      'scale_abc': (['--scale=abc'], '--scale=abc'),
      'iterations_0': (['--iterations=0'], 'iterations must be positive'),
      'iterations_negative': (['--iterations=-5'], 'iterations must be positive'),
      'crop_not_multiple_of_s': (['--crop=17'], 'multiple of the scale'),
      'crop_too_small': (['--crop=8'], 'crop/scale must exceed 6'),
      'unknown_preset': (['--flagfile=flags/nope.flags'], 'flags/nope.flags'),
      'unknown_flag': (['--no_such_flag=1'], 'no_such_flag'),
      'image_and_input_dir': ([f'--input_dir={tmp}'], 'exactly one of'),
      'stray_argument': (['photo.png'], 'unexpected arguments'),
  }
  extra, word = flag_cases[name]
  # Tiny flags first, so a case's flag overrides them.
  return [f'--image={good}', out, *TINY, *extra], word


BAD_CASES = [
    'missing_path', 'directory', 'not_an_image', 'truncated_png', 'corrupt_png',
    'one_bad_among_many', 'too_small', 'too_small_after_trim', 'output_dir_under_a_file',
    'output_dir_is_a_file', 'scale_3', 'scale_0', 'batch_size_negative', 'scale_abc',
    'iterations_0', 'iterations_negative',
    'crop_not_multiple_of_s', 'crop_too_small', 'unknown_preset', 'unknown_flag',
    'image_and_input_dir', 'stray_argument']


@pytest.mark.parametrize('name', BAD_CASES)
def test_bad_input_or_flag_fails_fast_with_one_line(tmp_path, name):
  args, word = _bad_case(name, tmp_path)
  if not any(a.startswith('--crop') for a in args):
    args += TINY
  before = _files(tmp_path)
  t0 = time.perf_counter()
  res = run_cli(*args, timeout=300)
  elapsed = time.perf_counter() - t0
  assert res.returncode == 2, (res.stdout, res.stderr)
  line = _one_error_line(res.stderr)
  assert word in line, line
  assert 'compiling' not in res.stdout and elapsed < FAST_S, (elapsed, res.stdout)
  assert _files(tmp_path) == before  # no output (nor temporary) file appeared


# --- Conversions (no training): message and the converted pixels. ----------


def _load(path, cfg=CFG):
  notes = []
  lr = pipeline._load(pipeline.Job(str(path)), cfg, notes.append)['lr']  # pylint: disable=protected-access
  assert lr.dtype == np.uint8 and lr.ndim == 3 and lr.shape[2] == 3
  return lr, notes


def test_grey_l_replicated(tmp_path):
  grey = _rgb((40, 40))[..., 0]
  Image.fromarray(grey, 'L').save(tmp_path / 'g.png')
  lr, notes = _load(tmp_path / 'g.png')
  np.testing.assert_array_equal(lr, np.repeat(grey[..., None], 3, -1))
  assert notes == [f'{tmp_path / "g.png"}: greyscale image; replicated to RGB']


def test_grey_la_alpha_dropped_with_warning(tmp_path):
  la = np.stack([_rgb((40, 40))[..., 0], np.full((40, 40), 9, np.uint8)], -1)
  Image.fromarray(la, 'LA').save(tmp_path / 'la.png')
  lr, notes = _load(tmp_path / 'la.png')
  np.testing.assert_array_equal(lr, np.repeat(la[..., :1], 3, -1))
  assert any('greyscale' in n for n in notes)
  assert any(n.startswith('warning: ') and 'alpha channel dropped' in n for n in notes)


def test_rgba_alpha_dropped_with_warning(tmp_path):
  rgb = _rgb((40, 40))
  alpha = np.random.default_rng(5).integers(0, 256, (40, 40, 1), np.uint8)
  Image.fromarray(np.concatenate([rgb, alpha], -1), 'RGBA').save(tmp_path / 'a.png')
  lr, notes = _load(tmp_path / 'a.png')
  np.testing.assert_array_equal(lr, rgb)  # not premultiplied, not composited
  assert notes == [f'warning: {tmp_path / "a.png"}: alpha channel dropped (transparency ignored)']


def test_palette_converted(tmp_path):
  palette = np.random.default_rng(1).integers(0, 256, (256, 3), np.uint8)
  idx = np.random.default_rng(2).integers(0, 256, (40, 40), np.uint8)
  im = Image.fromarray(idx, 'L').convert('P')
  im.putpalette(palette.ravel().tolist())
  im.save(tmp_path / 'p.png')
  lr, notes = _load(tmp_path / 'p.png')
  np.testing.assert_array_equal(lr, palette[idx])
  assert notes == [f'{tmp_path / "p.png"}: palette image; converted to RGB']


def test_16bit_png_scaled_not_clipped(tmp_path):
  values = np.random.default_rng(3).integers(0, 65536, (40, 40)).astype(np.uint16)
  values[0, :4] = [0, 1000, 32896, 65535]
  Image.fromarray(values).save(tmp_path / 'g16.png')
  assert Image.open(tmp_path / 'g16.png').mode.startswith('I')
  lr, notes = _load(tmp_path / 'g16.png')
  np.testing.assert_array_equal(lr[0, :4, 0], [0, 4, 128, 255])  # v / 257, rounded
  np.testing.assert_array_equal(lr[..., 1], np.round(values / 257.0).astype(np.uint8))
  assert lr.mean() > 100  # clipping to 255 would make nearly everything 255
  assert any('16-bit' in n and 'scaled to 8 bit' in n for n in notes)


def test_exif_rotated_jpeg_is_oriented(tmp_path):
  stored = _rgb((40, 48))  # stored 48 wide, displayed 90 degrees clockwise
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(stored).save(tmp_path / 'e.jpg', quality=95, exif=exif)
  lr, notes = _load(tmp_path / 'e.jpg')
  decoded = np.asarray(Image.open(tmp_path / 'e.jpg').convert('RGB'))  # as stored
  assert lr.shape == (48, 40, 3)
  np.testing.assert_array_equal(lr, np.rot90(decoded, k=-1))
  assert notes == [f'{tmp_path / "e.jpg"}: applied EXIF orientation 6 (rotated/flipped)']


def test_odd_sides_trimmed_and_output_size_stated(tmp_path):
  img = _rgb((43, 41))
  Image.fromarray(img).save(tmp_path / 'odd.png')
  lr, notes = _load(tmp_path / 'odd.png')
  np.testing.assert_array_equal(lr, img[:42, :40])
  assert notes == [f'{tmp_path / "odd.png"}: trimmed 1 rows and 1 columns to a multiple of 2; '
                   'output will be 80x84']
  _, notes4 = _load(tmp_path / 'odd.png', CFG.replace(scale=4, crop=32))
  assert notes4[0].endswith('trimmed 3 rows and 1 columns to a multiple of 4; output will be 160x160')


def test_rgba_odd_sides_end_to_end(tmp_path):
  """One CLI run with a conversion: RGBA, 41x41 (trimmed to 40x40)."""
  rgba = np.concatenate([_rgb((41, 41)), np.full((41, 41, 1), 128, np.uint8)], -1)
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'rgba.png')
  out = tmp_path / 'out'
  res = run_cli(f'--image={tmp_path / "rgba.png"}', f'--output_dir={out}', *TINY)
  assert res.returncode == 0, res.stderr[-2000:]
  assert 'warning: ' in res.stdout and 'alpha channel dropped' in res.stdout
  assert 'output will be 80x80' in res.stdout
  sr = iio.imread(out / 'rgba_x2.png')
  assert sr.shape == (80, 80, 3) and sr.dtype == np.uint8
  assert json.loads((out / 'rgba_metrics.json').read_text())['lr_shape'] == [40, 40, 3]
  # Only the outputs: no temporary files, no checkpoint left behind.
  assert _files(out) == set(report.output_names('rgba', 2).values())


# --- Atomic writes. ---------------------------------------------------------


def test_failed_write_leaves_only_complete_files(tmp_path, monkeypatch):
  """A write failing mid-run: one-line OutputError, no partial or temp file."""
  Image.fromarray(_rgb((40, 40))).save(tmp_path / 'p.png')
  out = tmp_path / 'out'
  real_replace = os.replace

  def replace(src, dst):
    if str(dst).endswith('_compare.png'):
      raise OSError(28, 'No space left on device')
    return real_replace(src, dst)

  monkeypatch.setattr(os, 'replace', replace)
  with pytest.raises(errors.OutputError) as info:
    pipeline.super_resolve_files([pipeline.Job(str(tmp_path / 'p.png'))], CFG, str(out),
                            log=lambda _: None)
  assert '\n' not in str(info.value) and 'No space left on device' in str(info.value)
  written = _files(out)
  assert 'p_compare.png' not in written
  assert not [f for f in written if f.endswith('.tmp') or f.startswith('.')], written
  assert 'p_x2.png' in written  # written before the failure, and complete:
  assert iio.imread(out / 'p_x2.png').shape == (80, 80, 3)
  for name in written:
    if name.endswith('.png'):
      iio.imread(out / name)


def test_checkpoint_survives_a_kill_between_renames(tmp_path):
  """Checkpointer: the last complete save is found whatever step a kill hit."""
  ckpt = checkpoint.Checkpointer(tmp_path / 'ck')
  tree = lambda v: {'a': np.full((3,), v, np.float32), 'b': np.asarray(v, np.int32)}
  assert not ckpt.exists()
  ckpt.save(tree(1), {'loss': np.ones((1, 2))})
  ckpt.save(tree(2), {'loss': np.ones((2, 2))})
  states, history = ckpt.restore(tree(0))
  assert int(states['b']) == 2 and history['loss'].shape == (2, 2)
  # Killed after `state` -> `state.old`, before `state.tmp` -> `state`:
  os.replace(tmp_path / 'ck' / 'state', tmp_path / 'ck' / 'state.old')
  os.makedirs(tmp_path / 'ck' / 'state.tmp.orbax-checkpoint-tmp')  # a killed save's debris
  assert ckpt.exists()
  states, history = ckpt.restore(tree(0))
  assert int(states['b']) == 2 and history['loss'].shape == (2, 2)
  ckpt.save(tree(3), {'loss': np.ones((3, 2))})
  assert sorted(os.listdir(tmp_path / 'ck')) == ['state']
  states, history = ckpt.restore(tree(0))
  assert int(states['b']) == 3 and history['loss'].shape == (3, 2)
  ckpt.remove()
  assert not ckpt.exists()


# --- Resume: interrupted runs end with the bytes of an uninterrupted one. ---


def _start(*args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.Popen([sys.executable, '-m', 'ike_jax.main', *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_until(proc, pattern):
  """Reads stdout lines until one matches; returns the lines read."""
  lines = []
  while True:
    line = proc.stdout.readline()
    assert line, f'exited before {pattern!r}: {"".join(lines)} {proc.stderr.read()[-2000:]}'
    lines.append(line)
    if re.search(pattern, line):
      return lines


def test_resume_after_kill_and_sigterm_gives_identical_outputs(tmp_path):
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  flags = [f'--image={lr}', '--crop=16', '--blocks=1', '--iterations=40', '--metrics_every=1']
  ref, out = tmp_path / 'ref', tmp_path / 'out'
  res = run_cli(*flags, f'--output_dir={ref}')
  assert res.returncode == 0, res.stderr[-2000:]

  # 1. Killed outright (no chance to save) after the periodic save at step 3.
  proc = _start(*flags, f'--output_dir={out}', '--checkpoint_every=3')
  _read_until(proc, r'step +5/40')
  proc.kill()
  proc.communicate(timeout=60)
  assert os.listdir(out / 'checkpoints')  # a checkpoint of step >= 3
  assert not os.path.exists(out / 'photo_x2.png')
  res = run_cli(*flags, f'--output_dir={out}', timeout=300)  # no silent restart
  assert res.returncode == 2 and '--resume' in _one_error_line(res.stderr)
  assert 'compiling' not in res.stdout

  # 2. Resumed, then stopped by SIGTERM: a checkpoint is saved, exit 130.
  proc = _start(*flags, f'--output_dir={out}', '--checkpoint_every=3', '--resume')
  lines = _read_until(proc, r'resumed from .* at step \d+')
  first = int(re.search(r'at step (\d+)', lines[-1]).group(1))
  assert 3 <= first < 40
  _read_until(proc, r'step +\d+/40')
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 130, stderr[-2000:]
  line = [l for l in stderr.splitlines() if l.strip()]
  assert len(line) == 1 and line[0].startswith('stopped: interrupted at step '), stderr
  stopped = int(re.search(r'at step (\d+)', line[0]).group(1))
  assert first < stopped < 40 and '--resume' in line[0]
  assert not os.path.exists(out / 'photo_x2.png')

  # 3. Resumed to the end, with a post-processing flag changed (an unused
  # lever's setting): the checkpoint is still this run's.
  res = run_cli(*flags, f'--output_dir={out}', '--resume', '--zssr_steps=7')
  assert res.returncode == 0, res.stderr[-2000:]
  assert f'at step {stopped}' in res.stdout
  assert not os.path.exists(out / 'checkpoints')
  for name in ('photo_x2.png', 'photo_kernel.npy', 'photo_losses.png'):
    assert (out / name).read_bytes() == (ref / name).read_bytes(), name
  final = [json.loads((d / 'photo_metrics.json').read_text())['final_losses'] for d in (ref, out)]
  assert final[0] == final[1]


# --- Divergence and determinism (train.fit, in process). --------------------


def _inputs(n):
  lrs = [_pattern((40, 40), k) for k in range(n)]
  plans = [crops.plan_crops(lr, CFG.scale, CFG.train.crop, CFG.run.iterations, CFG.run.seed)
           for lr in lrs]
  return [data.to_model(lr) for lr in lrs], plans


def _pattern(size, seed):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size[0], :size[1]]
  img = np.stack([(xx * 5 + yy * 3 + c * 40) % 256 for c in range(3)], -1) * 0.7
  return np.clip(img + rng.integers(0, 60, img.shape), 0, 255).astype(np.uint8)


def _fresh_states(images, seeds):
  return train.init_states(jnp.asarray(seeds, jnp.int32),
                           jnp.asarray(loop.pad_images(images)), CFG.train)


def _leaves(states):
  return [np.asarray(l) for l in jax.tree.leaves(jax.device_get(states))]


def test_nan_in_one_image_leaves_the_other_untouched():
  images, plans = _inputs(2)
  clean, hist_clean, _ = loop.fit(images, plans, CFG.train, CFG.run, log=lambda _: None)
  assert not hist_clean['diverged'].any()
  states = _fresh_states(images, [CFG.run.seed] * 2)
  poisoned = states.replace(g=jax.tree.map(
      lambda a: a.at[0].set(jnp.nan) if jnp.issubdtype(a.dtype, jnp.floating) else a, states.g))
  log = []
  bad, hist_bad, _ = loop.fit(images, plans, CFG.train, CFG.run, log=log.append, states=poisoned)
  assert hist_bad['diverged'].tolist() == [True, False]
  assert any('image(s) [0] diverged' in l and 'the others continue' in l for l in log)
  for a, b in zip(_leaves(jax.tree.map(lambda x: x[1], clean)),
                  _leaves(jax.tree.map(lambda x: x[1], bad))):
    np.testing.assert_array_equal(a, b)
  for k, v in hist_clean.items():
    if k != 'diverged':
      np.testing.assert_array_equal(v[:, 1], hist_bad[k][:, 1])


def test_diverging_learning_rate_is_reported_and_writes_nothing(tmp_path):
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  out = tmp_path / 'out'
  res = run_cli(f'--image={lr}', f'--output_dir={out}', *TINY, '--lr_g=1e30')
  assert res.returncode == 1, res.stderr[-2000:]
  assert 'Traceback' not in res.stderr
  assert 'diverged (NaN/Inf); no output written for this image' in res.stdout
  assert res.stdout.strip().splitlines()[-1] == (
      f'{lr}: training diverged (NaN/Inf); no output written for this image')
  assert _files(out) == set()


def test_same_seed_same_result_other_seed_differs():
  images, plans = _inputs(1)
  runs = [loop.fit(images, plans, CFG.train, CFG.run, log=lambda _: None, seeds=[seed])[:2]
          for seed in (0, 0, 1)]
  (s0, h0), (s1, h1), (s2, _) = runs
  for a, b in zip(_leaves(s0), _leaves(s1)):
    np.testing.assert_array_equal(a, b)
  for k in h0:
    np.testing.assert_array_equal(h0[k], h1[k])
  assert any(not np.array_equal(a, b) for a, b in zip(_leaves(s0.g), _leaves(s2.g)))


def test_large_input_is_super_resolved_in_tiles(tmp_path, monkeypatch):
  """An 'enormous' image (here: above a lowered threshold) gets tiled inference."""
  monkeypatch.setattr(estimate, 'AUTO_TILE_PIXELS', 30 * 30)
  monkeypatch.setattr(estimate, 'AUTO_TILE', 16)
  rng = np.random.default_rng(0)
  path = tmp_path / 'big.png'
  iio.imwrite(path, rng.integers(0, 255, (40, 36, 3)).astype(np.uint8))
  logs = []
  cfg = config_lib.Config.create(crop=16, blocks=1, iterations=3, metrics_every=3)
  results = pipeline.super_resolve_files([pipeline.Job(str(path))], cfg, str(tmp_path / 'out'),
                                    pipeline.Options(), log=logs.append)
  assert results[0]['status'] == 'ok'
  assert any('tiles' in line for line in logs)
  assert iio.imread(tmp_path / 'out' / 'big_x2.png').shape == (80, 72, 3)
