"""A benchmark's JSON table, written row by row, that a rerun resumes.

The long benchmarks (`blind_families`, `blind_tuning`, `blind_estimators`,
`solvers`, `ablation`, `levers`, `spectral_tuning`, `srstage`) measure one row
at a time for tens of minutes. Each row is written as it comes (atomically,
the whole file each time); run again with the same `--results` and the same
settings, a benchmark keeps the rows already there and measures only the
missing ones, so an interrupted run ends with the table an uninterrupted one
writes. A file written under other settings is never overwritten: the run
stops with an error naming the settings that differ. A summary that is not
made row by row is never written over an existing file (`new_file`).
"""

import json
import os
from typing import Any, Callable, Hashable

from absl import app

from ike_jax import outputs

def new_file(path: str | None, error: type[Exception] = app.UsageError) -> None:
  """Refuses a results file that exists: a summary is written whole, never over one."""
  if path and os.path.lexists(path):
    raise error(f'--results={path} exists: give another --results, or delete it')


class Rows:
  """The rows of one results file.

  Args:
    path: the JSON file (None: rows kept in memory only).
    header: the settings the rows depend on, stored beside them; a file whose
      header differs is refused.
    key: a row -> the identity of what it measured (e.g. family and image);
      None: the rows are named, stored as {name: row} (`add(row, name)`).
    derived: keys the benchmark writes beside the rows at the end, derived
      from them (a summary, the command line): not settings, not compared.
    error: the exception a refused file raises (`errors.UserError` where
      `cli.run_app` runs the benchmark: one line, no usage text).
  """

  def __init__(self, path: str | None, header: dict[str, Any],
               key: Callable[[dict[str, Any]], Hashable] | None,
               derived: tuple[str, ...] = (), error: type[Exception] = app.UsageError):
    self.path, self.key = path, key
    self.table = {**header, 'rows': [] if key else {}}
    if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
      raise error(f'--results={path}: no folder {os.path.dirname(path)!r} to write it in')
    if path and os.path.exists(path):
      try:
        with open(path, encoding='utf-8') as f:
          old = json.load(f)
      except (OSError, ValueError) as e:
        raise error(f'--results={path}: cannot read it ({e}); give another file') from None
      if not isinstance(old, dict) or type(old.get('rows')) is not type(self.table['rows']):
        raise error(f'--results={path} is not a results table; give another file')
      stored = {k: v for k, v in old.items() if k != 'rows' and k not in derived}
      wanted = outputs.jsonable(header)  # as the file stores it (inf as null)
      # A file that lacks a setting predates it: it was measured with the
      # setting unset (None; not inf, which the file also stores as null).
      stored = {**{k: None for k, v in header.items() if v is None}, **stored}
      if stored != wanted:
        differ = sorted(k for k in set(stored) | set(wanted)
                        if k not in stored or k not in wanted or stored[k] != wanted[k])
        raise error(f'--results={path} holds rows measured with other settings '
                    f'({", ".join(differ)}): give another file, or delete it to measure again')
      self.table['rows'] = old['rows']
      print(f'{path}: {len(old["rows"])} rows already measured, kept')
    self._index = self.table['rows'] if key is None else {key(r): r for r in self.table['rows']}

  def __len__(self) -> int:
    return len(self.table['rows'])

  def get(self, key: Hashable) -> dict[str, Any] | None:
    """The row already measured for `key`, or None."""
    return self._index.get(key)

  def add(self, row: dict[str, Any], name: str | None = None) -> None:
    """Appends a row (named rows: under `name`) and writes the table (atomically)."""
    if self.key is None:
      if name is None:
        raise ValueError('a named table needs its name for each row')
      self.table['rows'][name] = row
    else:
      self.table['rows'].append(row)
      self._index[self.key(row)] = row
    if self.path:
      outputs.write_json(self.path, self.table)
