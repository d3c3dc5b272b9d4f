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
    rows.Rows(str(path), {**HEADER, 'kernels': 'levin8.npy'}, KEY)  # one the file lacks
  assert path.read_text() == before


def test_a_setting_added_since_counts_as_unset_in_an_older_file(tmp_path):
  """A file written before a setting existed was measured without it: it
  resumes while the setting is unset (None) and is refused once it is set."""
  path = tmp_path / 'table.json'
  _measure(rows.Rows(str(path), HEADER, KEY), WORK[:2], [])
  for value in ('levin8.npy', float('inf')):  # inf is stored as null, yet it is set
    with pytest.raises(app.UsageError, match=r'other settings \(kernels\)'):
      rows.Rows(str(path), {**HEADER, 'kernels': value}, KEY)
  measured = []
  _measure(rows.Rows(str(path), {**HEADER, 'kernels': None}, KEY), WORK, measured)
  assert measured == WORK[2:]


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


def test_named_rows_resume_and_derived_keys_are_not_settings(tmp_path):
  path = tmp_path / 'table.json'
  table = rows.Rows(str(path), HEADER, key=None, derived=('argv',))
  table.add({'gain': 1.0}, 'IKE')
  assert json.loads(path.read_text())['rows'] == {'IKE': {'gain': 1.0}}
  path.write_text(json.dumps({**json.loads(path.read_text()), 'argv': ['--seeds=3']}))
  again = rows.Rows(str(path), HEADER, key=None, derived=('argv',))  # argv differs: kept
  assert again.get('IKE') == {'gain': 1.0} and again.get('exact G') is None
  again.add({'gain': 2.0}, 'exact G')
  assert json.loads(path.read_text())['rows'] == {'IKE': {'gain': 1.0}, 'exact G': {'gain': 2.0}}
  with pytest.raises(ValueError, match='needs its name'):
    again.add({'gain': 3.0})
  with pytest.raises(app.UsageError, match='not a results table'):
    rows.Rows(str(path), HEADER, KEY)  # named rows read as a list


def test_the_error_class_is_the_callers(tmp_path):
  path = tmp_path / 'table.json'
  _measure(rows.Rows(str(path), HEADER, KEY), WORK[:1], [])
  with pytest.raises(KeyError, match=r'other settings \(scale\)'):
    rows.Rows(str(path), {**HEADER, 'scale': 4}, KEY, error=KeyError)


def test_a_summary_is_never_written_over_an_existing_file(tmp_path):
  path = tmp_path / 'summary.json'
  rows.new_file(str(path))
  rows.new_file(None)
  path.write_text('{}')
  with pytest.raises(app.UsageError, match='summary.json exists: give another --results'):
    rows.new_file(str(path))
