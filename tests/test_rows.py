"""Tests for benchmarks.rows: results tables that a rerun resumes."""

import json

from absl import app
import pytest

from benchmarks import rows

HEADER = {'scale': 2, 'priors': ['1e-3', '3e-3'], 'limit': float('inf')}
KEY = lambda r: (r['family'], r['image'])


def _measure(table, work, measured):
  """The benchmarks' loop: measure what the table lacks, in order."""
  for family, image in work:
    if table.get((family, image)) is None:
      measured.append((family, image))
      table.add({'family': family, 'image': image, 'gain': len(family) + len(image)})


WORK = [('shake', 'brick'), ('shake', 'camera'), ('gaussian', 'brick'), ('gaussian', 'camera')]


def test_an_interrupted_table_resumed_is_the_uninterrupted_one(tmp_path):
  whole, part = tmp_path / 'whole.json', tmp_path / 'part.json'
  _measure(rows.Rows(str(whole), HEADER, KEY), WORK, [])
  _measure(rows.Rows(str(part), HEADER, KEY), WORK[:3], [])  # stopped after three rows
  measured = []
  _measure(rows.Rows(str(part), HEADER, KEY), WORK, measured)
  assert measured == [WORK[3]]  # only the missing row is measured again
  assert json.loads(part.read_text()) == json.loads(whole.read_text())


def test_a_table_of_other_settings_is_refused_and_kept(tmp_path):
  path = tmp_path / 'table.json'
  _measure(rows.Rows(str(path), HEADER, KEY), WORK[:2], [])
  before = path.read_text()
  with pytest.raises(app.UsageError, match=r'other settings \(priors\)'):
    rows.Rows(str(path), {**HEADER, 'priors': ['1e-3']}, KEY)
  with pytest.raises(app.UsageError, match=r'other settings \(kernels\)'):
    rows.Rows(str(path), {**HEADER, 'kernels': None}, KEY)  # a setting the file lacks
  assert path.read_text() == before


@pytest.mark.parametrize('text', ['not json', '[1, 2]', '{"scale": 2}'])
def test_a_file_that_is_not_a_table_is_refused(tmp_path, text):
  path = tmp_path / 'table.json'
  path.write_text(text)
  with pytest.raises(app.UsageError, match='table.json'):
    rows.Rows(str(path), HEADER, KEY)
  assert path.read_text() == text


def test_without_a_path_rows_stay_in_memory(tmp_path):
  table = rows.Rows(None, HEADER, KEY)
  _measure(table, WORK, [])
  assert len(table) == len(WORK) and table.get(('gaussian', 'camera'))['gain'] == 14
  assert not list(tmp_path.iterdir())


def test_a_missing_folder_is_refused_before_anything_is_measured(tmp_path):
  with pytest.raises(app.UsageError, match='no folder'):
    rows.Rows(str(tmp_path / 'missing' / 'table.json'), HEADER, KEY)
