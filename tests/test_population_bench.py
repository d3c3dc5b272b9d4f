"""benchmarks/population.py: the single-vs-population comparison from quality reports."""

import json
import subprocess
import sys

import pytest

from benchmarks import population

ROOT = __file__.rsplit('/tests/', 1)[0]


def _report(gains_per_seed, errors_per_seed, pop=1, consensus='medoid', wall=100.0):
  per_seed = []
  for gains, errs in zip(gains_per_seed, errors_per_seed):
    per_seed.append({'timings': {'wall_s': wall}, 'images': [
        {'name': n, 'status': 'ok', 'values': {'gain_psnr_y': g, 'kernel_error': e}}
        for n, g, e in zip(('a', 'b'), gains, errs)]})
  return {'per_seed': per_seed,
          'config': {'run': {'population': pop}, 'post': {'consensus': consensus}}}


def test_compare_gives_single_spread_and_population_rows():
  single = _report([[1.0, 2.0], [3.0, 2.0], [2.0, 2.0]], [[0.1, 0.2]] * 3)
  pop = _report([[2.5, 2.1]], [[0.05, 0.1]], pop=3, wall=300.0)
  rows, summary, labels = population.compare(single, [pop])
  assert labels == ['population 3 (medoid)']
  a = rows[0]
  assert a['single_gain_mean'] == pytest.approx(2.0) and a['single_gain_min'] == 1.0
  assert a['single_gain_max'] == 3.0 and a['population 3 (medoid) gain'] == 2.5
  assert summary['single_mean_gain'] == pytest.approx(2.0)           # image means 1.5, 2.5, 2.0
  assert summary['single_mean_gain_std_over_seeds'] == pytest.approx(0.4082, abs=1e-4)
  assert summary['population 3 (medoid) mean gain'] == pytest.approx(2.3)
  assert summary['single_wall_s_per_image'] == 50.0
  assert summary['population 3 (medoid) wall_s_per_image'] == 150.0
  md = population.markdown(rows, summary, labels)
  assert md.count('\n| ') == 3 and '+2.50' in md


def test_cli_writes_json_and_markdown_and_rejects_bad_input(tmp_path):
  (tmp_path / 's.json').write_text(json.dumps(_report([[1.0, 2.0]], [[0.1, 0.2]])))
  (tmp_path / 'p.json').write_text(json.dumps(_report([[2.0, 2.0]], [[0.1, 0.1]], pop=2)))
  out = tmp_path / 'cmp.json'
  cmd = [sys.executable, '-m', 'benchmarks.population', f'--single={tmp_path / "s.json"}',
         f'--population_results={tmp_path / "p.json"}', f'--results={out}']
  res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert res.returncode == 0, res.stderr
  assert json.loads(out.read_text())['summary']['images'] == 2
  assert (tmp_path / 'cmp.md').read_text().startswith('| image')
  before = out.read_text()
  res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert res.returncode == 2 and 'cmp.json exists' in res.stderr and out.read_text() == before
  res = subprocess.run(cmd[:3] + [f'--single={tmp_path / "none.json"}', cmd[4]], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
  assert res.returncode == 2 and res.stderr.startswith('error:') and 'Traceback' not in res.stderr
