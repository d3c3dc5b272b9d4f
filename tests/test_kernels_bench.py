"""benchmarks/kernels.py: the kernel-estimation table from quality reports."""

import json
import subprocess
import sys

import pytest

from benchmarks import kernels
from ike_jax import errors

ROOT = __file__.rsplit('/tests/', 1)[0]


def _report(rows_per_seed):
  """rows_per_seed: per seed, {image: (kernel_error, self_check, gain)}."""
  return {'per_seed': [{'images': [
      {'name': n, 'status': 'ok',
       'values': {'kernel_error': e, 'self_check': c, 'gain_psnr_y': g}}
      for n, (e, c, g) in rows.items()]} for rows in rows_per_seed]}


def test_table_means_seeds_and_measures_how_the_self_check_ranks():
  # Three estimators on three images. The self-check orders them exactly as
  # the true error does, and inversely to the gain.
  good = _report([{'a': (0.01, 0.1, 3.0), 'b': (0.02, 0.2, 2.0), 'c': (0.03, 0.3, 1.0)}])
  mid = _report([{'a': (0.04, 0.4, 0.9), 'b': (0.05, 0.5, 0.8), 'c': (0.06, 0.6, 0.7)},
                 {'a': (0.04, 0.4, 0.9), 'b': (0.05, 0.5, 0.8), 'c': (0.08, 0.8, 0.5)}])
  bad = _report([{'a': (0.10, 1.0, 0.1), 'b': (0.20, 2.0, 0.0), 'c': (0.30, 3.0, -1.0)}])
  rows, summary = kernels.compare({'good': good, 'mid': mid, 'bad': bad})
  assert [r['image'] for r in rows] == ['a', 'b', 'c'] and summary['images'] == 3
  assert rows[2]['mid kernel_error'] == pytest.approx(0.07)      # mean over the two seeds
  assert summary['spearman_selfcheck_vs_error'] == pytest.approx(1.0)
  assert summary['spearman_selfcheck_vs_gain'] == pytest.approx(-1.0)
  assert summary['spearman_selfcheck_vs_error_within_image'] == pytest.approx(1.0)
  assert summary['selfcheck_picks_lowest_error'] == '3/3'
  md = kernels.markdown(rows, summary, ['good', 'mid', 'bad'])
  assert md.count('\n| ') == 4 and '+3.00' in md and '+1.00' in md  # 3 images + mean


def test_a_self_check_that_says_nothing_scores_near_zero_and_picks_wrongly():
  # The self-check is the reverse of the truth in one estimator's ranking.
  one = _report([{'a': (0.01, 0.9, 3.0), 'b': (0.02, 0.8, 2.0)}])
  two = _report([{'a': (0.05, 0.1, 1.0), 'b': (0.06, 0.2, 1.0)}])
  _, summary = kernels.compare({'one': one, 'two': two})
  assert summary['spearman_selfcheck_vs_error'] < 0
  assert summary['selfcheck_picks_lowest_error'] == '0/2'
  assert 'spearman_selfcheck_vs_error_within_image' not in summary  # needs >= 3 estimators


def test_reports_without_the_needed_values_are_user_errors():
  old = {'per_seed': [{'images': [{'name': 'a', 'status': 'ok',
                                   'values': {'gain_psnr_y': 1.0, 'kernel_error': 0.1}}]}]}
  with pytest.raises(errors.UserError, match='self-check'):
    kernels.compare({'old': old})
  with pytest.raises(errors.UserError, match='share no image'):
    kernels.compare({'x': _report([{'a': (0.1, 0.1, 1.0)}]), 'y': _report([{'b': (0.1, 0.1, 1.0)}])})


def test_cli_writes_json_and_markdown_and_rejects_bad_input(tmp_path):
  (tmp_path / 'a.json').write_text(json.dumps(_report([{'a': (0.01, 0.1, 3.0), 'b': (0.02, 0.2, 2.0)}])))
  out = tmp_path / 'k.json'
  cmd = [sys.executable, '-m', 'benchmarks.kernels', f'--report=est={tmp_path / "a.json"}',
         f'--results={out}']
  res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert res.returncode == 0, res.stderr
  data = json.loads(out.read_text())
  # One estimator, two images: too few pairs for a rank correlation (NaN, JSON null).
  assert data['summary']['images'] == 2 and data['summary']['spearman_selfcheck_vs_error'] is None
  assert (tmp_path / 'k.md').read_text().startswith('| image')
  before = out.read_text()
  again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert again.returncode == 2 and again.stderr.strip().count('\n') == 0
  assert 'k.json exists' in again.stderr and out.read_text() == before
  bad = subprocess.run(cmd[:3] + ['--report=nolabel'], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
  assert bad.returncode == 2 and bad.stderr.strip().count('\n') == 0 and 'LABEL=path' in bad.stderr
