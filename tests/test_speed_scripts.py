"""Tests for the timing scripts (speed, stages, side_by_side, throughput) at tiny settings."""

import ast
import json
import math
import os
import subprocess
import sys
import time

import pytest

from benchmarks import side_by_side
from benchmarks import speed
from benchmarks import stages
from benchmarks import throughput
from benchmarks import timing

TINY = ['--crop=16', '--blocks=1']
TIMING = dict(steps=2, warmup=1, repeats=2)
# compile_s is only >= 0: conftest's persistent compilation cache may serve it.
STEP_FIELDS = ('first_step_s', 'init_s', 'step_s', 'step_min_s', 'steps_per_s',
               's_per_3000_steps', 's_per_image_run', 'flops_per_step', 'flops_per_s',
               'peak_rss_mib')


MACHINE = {'device_kind': 'cpu', 'platform': 'cpu', 'cpu_count': 2, 'cpu_model': 'AMD EPYC',
           'jax_version': 'x', 'date': 'today'}


def _positive(row, names):
  for name in names:
    assert isinstance(row[name], (int, float)), name
    assert math.isfinite(row[name]) and row[name] > 0, (name, row[name])


@pytest.fixture(scope='module')
def speed_row():
  # The throughput row below uses the same config and shapes: one compile.
  return speed.speed_row('demo', 'fused', crop=16, sets=['blocks=1'], components=False,
                         **TIMING)


def test_speed_row_fields(speed_row):
  _positive(speed_row, STEP_FIELDS)
  assert speed_row['compile_s'] >= 0 and speed_row['step_iqr_s'] >= 0
  assert speed_row['memory_mib'] >= 0 and speed_row['xla_buffers_mib']['argument'] > 0
  assert speed_row['crop'] == 16 and speed_row['blocks'] == 1 and speed_row['fused']
  assert speed_row['overridden'] and speed_row['params_finite']
  assert speed_row['s_per_3000_steps'] == pytest.approx(3000 * speed_row['step_s'])
  assert len(speed_row['repeat_medians_s']) == TIMING['repeats']


def test_throughput_row_fields(speed_row):
  cfg = timing.load_config('demo', TINY)
  row = throughput.throughput_row(cfg, 1, **TIMING)
  _positive(row, STEP_FIELDS + ('per_image_step_s', 'images_per_hour',
                           'images_per_hour_incl_compile', 'flops_per_image_step'))
  assert row['batch'] == 1 and row['compile_s'] >= 0
  assert row['images_per_hour'] == pytest.approx(3600 / (row['step_s'] * cfg.run.iterations))
  assert row['images_per_hour_incl_compile'] <= row['images_per_hour']
  assert row['flops_per_step'] == speed_row['flops_per_step']  # same compiled step


def test_fused_step_costs_fewer_flops():
  fused = speed.step_flops(timing.load_config('demo', TINY + ['--fuse_linear']), compiled=False)
  unfused = speed.step_flops(timing.load_config('demo', TINY + ['--nofuse_linear']),
                             compiled=False)
  assert 0 < fused < unfused


def test_components():
  cfg = timing.load_config('demo', TINY)
  pieces = speed.component_functions(cfg)
  calls = {p[0]: p[1] for p in pieces}
  assert {'G fwd', 'G fwd+bwd', 'G inv fwd+bwd', 'U fwd+bwd', 'D fwd+bwd', 'UD fwd+bwd',
          'G fuse'} <= set(calls)
  assert calls['UD fwd+bwd'] == 2 + 2 * 2 and calls['D fwd+bwd'] == 3
  for name, _, _, fn, args in pieces:  # lowered only: compiling all takes long
    assert timing.cost_flops(fn.lower(*args)) > 0, name
  rows = speed.measure_components(cfg, 1, 0, 1, names=('U fwd', 'D fwd+bwd'))
  assert [r['name'] for r in rows] == ['U fwd', 'D fwd+bwd']
  for r in rows:
    _positive(r, ('s', 'flops', 'flops_per_s'))


def test_time_calls_budget_caps_steps():
  calls = []
  t = timing.time_calls(lambda: (calls.append(1), time.sleep(0.01)), steps=100, warmup=1,
                       repeats=2, budget_s=0.1)
  assert 1 <= t['steps'] <= 6 and len(calls) == 2 + 2 * t['steps']
  assert t['median_s'] >= 0.01 and t['iqr_s'] >= 0 and len(t['repeat_medians_s']) == 2
  assert timing.time_calls(lambda: None, steps=3, warmup=0, repeats=1)['steps'] == 3


def test_stage_row_of_a_non_training_preset(tmp_path):
  row = stages.stage_row('best_x2', 40, repeats=1)
  assert [st['name'] for st in row['stages']] == ['estimate', 'bicubic', 'sr stage']
  for st in row['stages']:
    _positive(st, ('first_s', 's'))
  _positive(row['stages'][-1], ('flops', 'flops_per_s'))
  assert row['total_s'] == pytest.approx(sum(st['s'] for st in row['stages']))
  assert row['kernel_size'] == 11 and row['solver'] == 'fourier'
  with pytest.raises(ValueError, match='non-training'):
    stages.stage_row('paper_x2', 40)
  _, text = stages.write_report({'machine': MACHINE, 'settings': {'repeats': 1},
                                 'peak': {'error': 'not measured'},
                                 'rows': [row, {'preset': 'best_x4', 'error': 'boom'}]},
                                str(tmp_path / 'stages.json'))
  assert '### best_x2 (LR 40 px, x2' in text and '| sr stage |' in text
  assert 'best_x4: error: boom' in text and '2 CPUs' in text


def test_torch_row_needs_their_train_py(tmp_path):
  row = side_by_side.torch_row(str(tmp_path), steps=1, warmup=0, timeout=10, log=lambda m: None)
  assert 'train.py' in row['error']


def test_peak_kernels():
  peak = speed.measure_peak(2, 1, 2, matmul=64, conv=(1, 16, 16, 8, 8))
  for k in ('matmul', 'conv'):
    _positive(peak[k], ('flops', 's', 'gflops_per_s'))
  assert peak['matmul']['cost_analysis_flops'] == peak['matmul']['flops']
  assert peak['peak_gflops_per_s'] == max(peak['matmul']['gflops_per_s'],
                                          peak['conv']['gflops_per_s'])


def test_child_process_prints_one_json_row():
  row = timing.run_child(['benchmarks.speed', '--_one=peak', '--steps=1', '--warmup=0',
                         '--repeats=1', '--peak_matmul=32', '--peak_conv=1,8,8,4,4'],
                        timeout=120)
  assert 'error' not in row, row
  assert row['matmul']['gflops_per_s'] > 0
  assert {'device_kind', 'jax_version', 'cpu_count', 'date'} <= set(row['machine'])


def test_reports(tmp_path, speed_row):
  paper = dict(speed_row, preset='paper_x2', overridden=False, step_s=0.62)
  torch_row = {'preset': 'paper_x2', 'variant': 'pytorch', 'crop': 128, 'warmup': 2,
               'step_s': 6.2, 'step_iqr_s': 0.1, 'timed_steps': 8, 'torch_version': '2.x',
               'threads': 2}
  assert side_by_side.torch_speedup(paper, 6.2) == pytest.approx(10.0)
  assert side_by_side.torch_speedup(paper, None) is None  # no PyTorch row in this run
  assert side_by_side.torch_speedup(speed_row, 6.2) is None  # overridden: not paper settings
  peak = {'matmul': {'shape': 'a', 'gflops_per_s': 10.0},
          'conv': {'shape': 'b', 'gflops_per_s': 20.0}, 'peak_gflops_per_s': 20.0}
  report = {'machine': MACHINE, 'settings': {'steps': 2, 'warmup': 1, 'repeats': 2},
            'peak': peak, 'rows': [speed_row, paper, {'preset': 'demo', 'variant': 'unfused',
                                                       'error': 'boom'}]}
  paths, text = speed.write_report(report, str(tmp_path / 'speed.json'))
  assert '| demo | fused | 16 |' in text and 'error: boom' in text and '| matmul f32 |' in text
  assert 'AMD EPYC' in text and 'jax x' in text  # the machine and versions
  with open(paths['json']) as f:
    assert json.load(f)['rows'][0]['step_s'] == speed_row['step_s']
  assert os.path.isfile(paths['md'])

  sbs = dict(report, rows=[paper], torch=torch_row)
  _, text = side_by_side.write_report(sbs, str(tmp_path / 'sbs.json'))
  assert '10.0x' in text and '| paper_x2 | pytorch (torch 2.x, 2 threads) |' in text
  _, text = side_by_side.write_report(dict(sbs, torch=None), str(tmp_path / 'sbs2.json'))
  assert '10.0x' not in text
  _, text = side_by_side.write_report(dict(sbs, torch={'error': 'no train.py'}),
                                      str(tmp_path / 'sbs3.json'))
  assert 'pytorch | error: no train.py' in text

  t_report = {'machine': MACHINE, 'rows': [dict(speed_row, batch=1, per_image_step_s=0.1,
                                               images_per_hour=10.0,
                                               images_per_hour_incl_compile=5.0)],
              'settings': {'flagfile': 'demo', 'crop_used': 16, 'scale': 2,
                           'iterations': 300, 'fused': True, 'steps': 2, 'warmup': 1,
                           'repeats': 2}}
  _, text = throughput.write_report(t_report, str(tmp_path / 'tp.json'))
  assert '| 1 |' in text and '1.00' in text


def test_no_import_cycle_between_benchmark_scripts():
  # Read statically: which benchmarks.* module imports which (at any depth).
  folder = os.path.join(timing.ROOT, 'benchmarks')
  graph = {}
  for name in os.listdir(folder):
    if not name.endswith('.py'):
      continue
    with open(os.path.join(folder, name)) as f:
      tree = ast.parse(f.read())
    deps = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and node.module == 'benchmarks':
        deps |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('benchmarks.'):
        deps.add(node.module.split('.')[1])
      elif isinstance(node, ast.Import):
        deps |= {a.name.split('.')[1] for a in node.names if a.name.startswith('benchmarks.')}
    graph[name[:-3]] = deps

  def reaches(start, goal, seen=()):
    return any(d == goal or (d not in seen and reaches(d, goal, seen + (d,)))
               for d in graph.get(start, ()))
  assert not [m for m in graph if reaches(m, m)]
  assert graph['timing'] <= {'datasets'}  # the shared helpers import no script


def _run_throughput(tmp_path, name, args):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=4')
  env['PYTHONPATH'] = timing.ROOT + os.pathsep + env.get('PYTHONPATH', '')
  results = tmp_path / f'{name}.json'
  proc = subprocess.run([sys.executable, '-m', 'benchmarks.throughput', *args,
                         f'--results={results}'], cwd=timing.ROOT, env=env, timeout=900,
                        capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  with open(results) as f:
    return json.load(f), (tmp_path / f'{name}.md').read_text()


def test_throughput_splits_images_over_four_devices(tmp_path):
  # The training step: 5 images do not divide 4 devices (padded as loop.fit pads).
  report, text = _run_throughput(tmp_path, 'step', [
      '--crop=16', '--blocks=1', '--batch_sizes=5', '--steps=1', '--warmup=0',
      '--repeats=1'])
  assert report['machine']['device_count'] == 4 and '4 device(s)' in text
  (row,) = report['rows']
  assert row['batch'] == 5 and row['devices'] == 4 and row['params_finite']
  assert row['images_per_hour'] == pytest.approx(
      3600 * 5 / (row['step_s'] * report['settings']['iterations']))


def test_throughput_pipeline_mode_runs_the_cli_path(tmp_path):
  # best_x2 trains nothing: the whole path (estimate, bicubic, back-projection, outputs).
  report, text = _run_throughput(tmp_path, 'pipe', [
      '--flagfile=flags/best_x2.flags', '--pipeline', '--lr_side=40', '--batch_sizes=2',
      '--refine_iterations=5'])
  (row,) = report['rows']
  assert row['batch'] == 2 and row['devices'] == 4 and row['ok'] == 2
  assert row['warm_s'] > 0 and row['cold_s'] > 0  # how they compare is the benchmark's
  assert row['images_per_hour'] == pytest.approx(3600 * 2 / row['warm_s'])
  assert set(row['stages_per_image_s']) >= {'estimate_s', 'inference_s', 'post_s'}
  assert '| 2 |' in text and 'whole CLI path' in text
