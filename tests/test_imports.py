"""The package's imports, read statically: no cycle, and no arrow up from the
kernel ops, the model or the I/O modules to the estimators or the pipeline."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules that must not reach, through any chain of imports, the ones below.
LOW = ('kernel', 'layers', 'nets', 'estimators.flow', 'colours', 'crops', 'data', 'outputs',
       'resize', 'spectrum', 'losses', 'refine', 'ensemble', 'zssr', 'metrics', 'config')
HIGH = ('estimators', 'estimate', 'pipeline', 'report', 'train', 'loop', 'main')


def _graph():
  """{module: set of ike_jax modules it imports} (`from a import b` is a.b when
  b is a module; `importlib.import_module('x')` counts)."""
  mods = {}
  for folder, _, files in os.walk(os.path.join(ROOT, 'ike_jax')):
    for f in files:
      if f.endswith('.py'):
        name = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, '.')
        mods[name.removesuffix('.__init__')] = os.path.join(folder, f)
  graph = {}
  for mod, path in mods.items():
    targets = set()
    with open(path) as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module:
        names = [f'{node.module}.{a.name}' if f'{node.module}.{a.name}' in mods else node.module
                 for a in node.names]
      elif (isinstance(node, ast.Call) and getattr(node.func, 'attr', '') == 'import_module'
            and node.args and isinstance(node.args[0], ast.Constant)):
        names = [node.args[0].value]
      for name in names:
        while name and name not in mods:
          name = name.rpartition('.')[0]
        if name and name != mod:
          targets.add(name)
    graph[mod] = targets
  return graph


def _reach(graph, start):
  seen, todo = set(), [start]
  while todo:
    for nxt in graph[todo.pop()]:
      if nxt not in seen:
        seen.add(nxt)
        todo.append(nxt)
  return seen


def test_no_import_cycle():
  graph = _graph()
  cyclic = sorted(m for m in graph if m in _reach(graph, m))
  assert not cyclic, f'modules on an import cycle: {cyclic}'


def test_kernel_ops_model_and_io_do_not_import_estimators_or_the_pipeline():
  graph = _graph()
  high = {m for m in graph if any(m == f'ike_jax.{h}' or m.startswith(f'ike_jax.{h}.')
                                  for h in HIGH)}
  for low in LOW:
    up = sorted(_reach(graph, f'ike_jax.{low}') & high)
    assert not up, f'ike_jax.{low} imports {up}'
  assert 'ike_jax.data' not in _reach(graph, 'ike_jax.train')  # training does no file I/O
