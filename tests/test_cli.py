"""The command line, end to end, in subprocesses (as a user runs it)."""

import json
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from ike_jax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ['--blocks=1', '--iterations=3', '--metrics_every=3']


def run_cli(*args, timeout=600, cwd=ROOT):
  env = dict(os.environ, JAX_PLATFORMS='cpu',  # conftest sets the shared compilation cache
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
  return subprocess.run([sys.executable, '-m', 'ike_jax.main', *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def _assert_one_line_error(res, message):
  """A user error: exit 2, one line on stderr naming `message`, no traceback."""
  assert res.returncode == 2, res.stderr
  lines = [l for l in res.stderr.strip().splitlines() if l]
  assert len(lines) == 1 and message in lines[0] and 'Traceback' not in res.stderr


def write_png(path, size, seed=0):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size[0], :size[1]]
  img = np.stack([(xx * 5 + c * 40) % 256 for c in range(3)], -1) * 0.7
  img += rng.integers(0, 60, size=img.shape)
  iio.imwrite(path, np.clip(img, 0, 255).astype(np.uint8))
  return path


# x2: 41x40 trims to 40x40, the suite's tiny run (its compiled step is shared);
# x4: the closed-form preset (nothing trains; x4 training is tests/test_flow.py's).
@pytest.mark.parametrize('scale,args,size', [
    (2, ['--crop=16', *TINY_FLAGS], (41, 40)), (4, ['--preset=best_x4'], (70, 66))])
def test_cli_writes_valid_outputs(tmp_path, scale, args, size):
  lr = write_png(tmp_path / 'photo.png', size)
  hr = write_png(tmp_path / 'hr.png', (size[0] * scale, size[1] * scale), seed=1)
  out = tmp_path / 'out'
  res = run_cli(f'--image={lr}', f'--hr={hr}', f'--scale={scale}', f'--output_dir={out}', *args)
  assert res.returncode == 0, res.stderr[-2000:]
  h, w = (size[0] // scale) * scale, (size[1] // scale) * scale  # trimmed to multiples of s
  sr = iio.imread(out / f'photo_x{scale}.png')
  assert sr.shape == (h * scale, w * scale, 3) and sr.dtype == np.uint8
  trains = '--preset=best_x4' not in args
  for name in ('compare', 'kernel') + (('losses',) if trains else ()):
    pic = iio.imread(out / f'photo_{name}.png')
    assert pic.ndim == 3 and pic.shape[0] > 10
  assert not (out / 'photo_losses.png').exists() or trains
  metrics = json.loads((out / 'photo_metrics.json').read_text())
  assert metrics['config']['train']['scale'] == scale and metrics['seed'] == 0
  for who in ('sr', 'bicubic'):
    assert set(metrics['metrics'][who]) == {'psnr_rgb', 'ssim_rgb', 'psnr_y', 'ssim_y'}
  assert 'trimmed' in res.stdout or (size[0] % scale == 0 and size[1] % scale == 0)
  assert 'PSNR Y' in res.stdout
  if trains:
    assert metrics['timings']['compile_s'] > 0
    assert 'step' in res.stdout and 'ETA' in res.stdout


def test_a_flat_photo_through_the_blind_preset_is_its_bicubic_upscale(tmp_path):
  """A photo of one flat colour holds no blur to read: the blind preset writes
  the same flat colour at twice the size and records why it chose bicubic."""
  lr = tmp_path / 'flat.png'
  iio.imwrite(lr, np.full((64, 64, 3), (90, 140, 200), np.uint8))
  out = tmp_path / 'out'
  res = run_cli(f'--image={lr}', '--preset=blind_x2', f'--output_dir={out}')
  assert res.returncode == 0, res.stderr[-2000:]
  sr = iio.imread(out / 'flat_x2.png')
  assert sr.shape == (128, 128, 3) and (sr == np.array([90, 140, 200], np.uint8)).all()
  metrics = json.loads((out / 'flat_metrics.json').read_text())
  record = metrics['estimate']
  assert record['choice'] == 'bicubic' and 'detail' in record['reason']
  # A test turned off (an infinite limit) reads as such in the record, not as null.
  assert metrics['config']['estimate']['blind']['blind_gauss_min'] == 'inf'


def test_cli_same_seed_same_bytes_and_no_silent_overwrite(tmp_path):
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  outs = []
  for k in range(2):
    out = tmp_path / f'out{k}'
    res = run_cli(f'--image={lr}', '--crop=16', f'--output_dir={out}', *TINY_FLAGS)
    assert res.returncode == 0, res.stderr[-2000:]
    outs.append((out / 'photo_x2.png').read_bytes())
  assert outs[0] == outs[1]
  # A second run into the same directory skips the complete image...
  res = run_cli(f'--image={lr}', '--crop=16', f'--output_dir={tmp_path / "out0"}', *TINY_FLAGS)
  assert res.returncode == 0 and res.stdout.count('skipped') == 1
  assert (tmp_path / 'out0' / 'photo_x2.png').read_bytes() == outs[0]
  # ... but not outputs made with other settings: it names the one that changed...
  res = run_cli(f'--image={lr}', '--crop=16', f'--output_dir={tmp_path / "out0"}', *TINY_FLAGS,
                '--seed=1')
  _assert_one_line_error(res, '--seed 0 -> 1')
  assert (tmp_path / 'out0' / 'photo_x2.png').read_bytes() == outs[0]
  # ... and refuses to overwrite a partial one.
  (tmp_path / 'out0' / 'photo_losses.png').unlink()
  res = run_cli(f'--image={lr}', '--crop=16', f'--output_dir={tmp_path / "out0"}', *TINY_FLAGS)
  assert res.returncode == 2
  _assert_one_line_error(res, 'outputs are in')
  assert 'but not all' in res.stderr and 'delete those' in res.stderr
  assert (tmp_path / 'out0' / 'photo_x2.png').read_bytes() == outs[0]
  # --overwrite makes them all again.
  res = run_cli(f'--image={lr}', '--crop=16', f'--output_dir={tmp_path / "out0"}', *TINY_FLAGS,
                '--overwrite')
  assert res.returncode == 0, res.stderr[-2000:]
  assert (tmp_path / 'out0' / 'photo_losses.png').exists()
  assert (tmp_path / 'out0' / 'photo_x2.png').read_bytes() == outs[0]


def test_linear_light_is_recorded_and_a_rerun_without_it_is_refused(tmp_path):
  """--linear_light: the SR image is still an sRGB PNG of the right size; the
  record and the summary say it ran in light; outputs made so are
  never taken for those of a run without it."""
  lr = write_png(tmp_path / 'photo.png', (64, 64))
  out = tmp_path / 'out'
  res = run_cli(f'--image={lr}', '--preset=best_x2', '--linear_light', f'--output_dir={out}')
  assert res.returncode == 0, res.stderr[-2000:]
  assert 'in linear light (--linear_light)' in res.stdout
  assert json.loads((out / 'photo_metrics.json').read_text())['linear_light'] is True
  sr = iio.imread(out / 'photo_x2.png')
  assert sr.shape == (128, 128, 3) and sr.dtype == np.uint8
  before = (out / 'photo_x2.png').read_bytes()
  res = run_cli(f'--image={lr}', '--preset=best_x2', f'--output_dir={out}')
  _assert_one_line_error(res, '--linear_light True -> False')
  assert (out / 'photo_x2.png').read_bytes() == before


def test_flags_after_flagfile_override_it(tmp_path):
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  out = tmp_path / 'out'
  res = run_cli('--flagfile=flags/demo.flags', f'--image={lr}', '--crop=16',
                f'--output_dir={out}', *TINY_FLAGS)
  assert res.returncode == 0, res.stderr[-2000:]
  cfg = json.loads((out / 'photo_metrics.json').read_text())['config']
  assert cfg['train']['crop'] == 16 and cfg['run']['iterations'] == 3
  assert cfg['train']['model']['blocks'] == 1
  assert cfg['train']['model']['inverse'] == 'reference'  # from paper_x2.flags, through demo.flags


def test_preset_works_from_any_directory_and_later_flags_override_it(tmp_path):
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  res = run_cli('--preset=demo', '--image=photo.png', '--crop=16', '--output_dir=out',
                *TINY_FLAGS, cwd=tmp_path)
  assert res.returncode == 0, res.stderr[-2000:]
  cfg = json.loads((tmp_path / 'out' / 'photo_metrics.json').read_text())['config']
  assert cfg['train']['crop'] == 16 and cfg['run']['iterations'] == 3
  assert cfg['train']['optim']['lr_decay_every'] == 75          # from demo.flags
  assert cfg['train']['model']['inverse'] == 'reference'       # from paper_x2.flags inside it
  assert lr.exists()


def test_helpshort_lists_what_a_user_needs():
  res = run_cli('--helpshort', timeout=120)
  assert res.returncode == 0 and 'Traceback' not in res.stderr, res.stderr
  assert 'blind_x2' in res.stdout  # the presets to start from, in --preset's help
  for flag in ('--image', '--input_dir', '--scale', '--preset', '--iterations', '--seed',
               '--hr', '--output_dir'):
    assert flag in res.stdout, flag
  assert '--lambda_sparse' not in res.stdout  # the rest is in --helpfull


@pytest.mark.parametrize('args,message', [
    (['--scale=3'], 'scale'),
    (['--iterations=0'], 'iterations'),
    (['--crop=15'], 'crop'),
    (['--image=/no/such/file.png'], 'no such file'),
    (['--preset=no_such_preset'], 'best_x2'),  # names the presets there are
    (['--flagfile=/no/such.flags'], 'such.flags'),
    (['--hr_dir=/no/such/folder'], 'hr_dir'),
    (['--max_memory_gb=-1'], 'max_memory_gb'),
    (['--preset=blind_x2', '--blind_second_estimator=median'], 'blind_second_estimator'),
    (['--preset=blind_x2', '--blind_width_floor=2'], 'blind_width_floor'),
    (['--preset=blind_x2', '--blind_companion=-0.5'], 'blind_companion'),
    (['--preset=blind_x2', '--blind_rounds=0'], 'blind_rounds'),
    (['--preset=best_x2', '--max_memory_gb=0.1'], 'max_memory_gb'),  # cannot fit
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  res = run_cli(f'--image={lr}', f'--output_dir={tmp_path / "out"}', *args, timeout=120)
  _assert_one_line_error(res, message)
  assert not (tmp_path / 'out' / 'photo_x2.png').exists()


@pytest.mark.parametrize('content,message', [
    (np.full((13, 13), np.nan), 'non-finite'), (np.zeros((13, 13)), 'sums to 0'),
    (b'not a kernel', 'cannot read a kernel'),
    (b'\x89PNG\r\n\x1a\n a picture', 'not a NumPy .npy file')])
def test_a_bad_kernel_file_is_one_line_before_any_output(tmp_path, content, message):
  """A --kernel file that holds NaN, sums to zero or is no array at all is a
  one-line error, exit 2, and nothing is written."""
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  path = tmp_path / 'kernel.npy'
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    np.save(path, content)
  out = tmp_path / 'out'
  res = run_cli(f'--image={lr}', f'--kernel={path}', '--preset=best_x2', f'--output_dir={out}',
                timeout=120)
  _assert_one_line_error(res, message)
  assert not out.exists() or not any(out.iterdir())


def test_an_hr_image_of_another_size_is_refused_before_any_work(tmp_path):
  """--hr must be the SR image's size (to within the scale per side): else a
  one-line error, exit 2, before the kernel is estimated."""
  lr = write_png(tmp_path / 'photo.png', (64, 64))
  hr = write_png(tmp_path / 'hr.png', (96, 96))
  res = run_cli(f'--image={lr}', f'--hr={hr}', '--preset=blind_x2',
                f'--output_dir={tmp_path / "out"}', timeout=120)
  _assert_one_line_error(res, 'SR image will be 128x128')
  assert 'kernel estimate' not in res.stdout


def test_inputs_without_their_hr_image_are_named_not_skipped_silently(tmp_path):
  """With --hr_dir, an input whose HR image is missing is still super-resolved,
  and a warning says how many inputs get no scores."""
  (tmp_path / 'lr').mkdir()
  (tmp_path / 'hr').mkdir()
  for name in ('a', 'b'):
    write_png(tmp_path / 'lr' / f'{name}.png', (40, 40))
  write_png(tmp_path / 'hr' / 'a.PNG', (80, 80), seed=1)  # any case of the extension
  out = tmp_path / 'out'
  res = run_cli(f'--input_dir={tmp_path / "lr"}', f'--hr_dir={tmp_path / "hr"}',
                '--preset=best_x2', f'--output_dir={out}', timeout=300)
  assert res.returncode == 0, res.stderr[-2000:]
  assert 'no HR image' in res.stdout and '1 of 2 inputs (e.g. b.png)' in res.stdout
  assert 'training' not in res.stdout  # nothing trains in this preset
  # Each image's lines come as it is written, before the next one starts.
  assert res.stdout.index('wrote a_x2.png') < res.stdout.index('batch 2/2: b.png')
  assert (out / 'b_x2.png').exists()
  assert 'metrics' in json.loads((out / 'a_metrics.json').read_text())


def test_a_second_run_reads_its_programs_from_the_compilation_cache(tmp_path):
  """The first run fills --compilation_cache_dir (small programs too) and says
  the cache was empty; a second run with the same settings writes the same SR
  image, adds nothing and says nothing of it."""
  lr = write_png(tmp_path / 'photo.png', (40, 40))
  cache = tmp_path / 'xla'
  outs = []
  for n in range(2):
    res = run_cli(f'--image={lr}', '--preset=best_x2', f'--output_dir={tmp_path / f"out{n}"}',
                  f'--compilation_cache_dir={cache}')
    assert res.returncode == 0, res.stderr
    assert ('compilation cache' in res.stderr and 'is empty' in res.stderr) == (n == 0)
    outs.append(iio.imread(tmp_path / f'out{n}' / 'photo_x2.png'))
    entries = sorted(os.listdir(cache))
    if n == 0:
      first = entries
  assert len(first) >= 5, first  # more than the programs over JAX's 1 s default
  assert entries == first
  np.testing.assert_array_equal(outs[0], outs[1])


def test_the_compilation_cache_is_bounded_and_locked(tmp_path):
  """Outside the test session's settings, `use_compilation_cache` gives the cache
  its size limit, under which JAX locks the folder for every read and write (runs
  at once never read a half-written program); the environment overrides it."""
  script = ('import jax; from ike_jax import cli; import sys; '
            'cli.use_compilation_cache(sys.argv[1]); '
            'jax.jit(lambda x: x * 2 + 1)(1.0).block_until_ready(); '
            'print(jax.config.jax_compilation_cache_max_size)')
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_COMPILATION_CACHE')}
  env['JAX_PLATFORMS'] = 'cpu'
  for extra, want in (({}, str(cli.CACHE_MAX_BYTES)), ({'JAX_COMPILATION_CACHE_MAX_SIZE': '-1'}, '-1')):
    cache = tmp_path / f'xla{want}'
    res = subprocess.run([sys.executable, '-c', script, str(cache)], cwd=ROOT, env={**env, **extra},
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-1] == want
    assert (cache / '.lockfile').exists() == (want != '-1')
    assert any(name.endswith('-cache') for name in os.listdir(cache)), os.listdir(cache)


def test_a_cache_path_that_is_a_file_is_a_note_not_an_error(tmp_path, capsys):
  """--compilation_cache_dir naming a file: the run compiles without a cache
  and says so in one line (it was a traceback)."""
  path = tmp_path / 'afile'
  path.write_text('x')
  assert cli.use_compilation_cache(str(path)) == ''
  err = capsys.readouterr().err
  assert 'not a writable folder' in err and len(err.strip().splitlines()) == 1


def test_the_compilation_cache_folder_follows_flag_then_environment(monkeypatch):
  from ike_jax import cli  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', '/var/cache/me')
  assert cli.compilation_cache_dir(None) == '/var/cache/me/ike_jax/xla'
  monkeypatch.setenv('JAX_COMPILATION_CACHE_DIR', '/tmp/jaxc')
  assert cli.compilation_cache_dir(None) == '/tmp/jaxc'
  assert cli.compilation_cache_dir('~/c') == os.path.expanduser('~/c')
  assert cli.compilation_cache_dir('') == ''  # off


def test_hr_files_are_matched_by_stem_in_any_case_the_first_extension_first(tmp_path):
  """--hr_dir's files by stem: any case of an image extension, the first of
  IMAGE_EXTENSIONS where a stem has several; other files and folders ignored."""
  from ike_jax import data  # pylint: disable=g-import-not-at-top
  for name in ('a.jpg', 'a.PNG', 'b.tif', 'notes.txt'):
    (tmp_path / name).write_bytes(b'')
  (tmp_path / 'c.png').mkdir()
  assert data.image_files(str(tmp_path)) == {
      'a': str(tmp_path / 'a.PNG'), 'b': str(tmp_path / 'b.tif')}
