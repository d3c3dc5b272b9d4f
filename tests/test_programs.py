"""`programs.release_if_many`: a long run lets its compiled programs go before
the process runs out of memory regions."""

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import programs


def _cosh_plus_seven(x):
  return jnp.cosh(x) + 7.0


def test_programs_stay_until_the_process_nears_the_limit_then_go(monkeypatch):
  f = jax.jit(_cosh_plus_seven)
  x = f(jnp.arange(5.0))
  assert f._cache_size() == 1  # pylint: disable=protected-access
  monkeypatch.setattr(programs, 'memory_maps', lambda: 1000)
  monkeypatch.setattr(programs, 'map_limit', lambda: 2001)
  assert not programs.release_if_many()
  assert f._cache_size() == 1  # pylint: disable=protected-access
  monkeypatch.setattr(programs, 'map_limit', lambda: 1999)
  assert programs.release_if_many()
  assert f._cache_size() == 0  # pylint: disable=protected-access
  # What was computed stays valid, and the function compiles again.
  np.testing.assert_allclose(x, np.cosh(np.arange(5.0)) + 7.0, rtol=1e-6)
  np.testing.assert_allclose(f(jnp.arange(5.0)), x)
  assert f._cache_size() == 1  # pylint: disable=protected-access


def test_releasing_frees_the_programs_memory_regions():
  if not programs.memory_maps():
    return  # no /proc: nothing to count
  keep = [jax.jit(lambda x, i=i: jnp.tanh(x @ x.T * i).sum(0) + jnp.sin(x).cumsum(1)[0] * i)
          for i in range(20)]
  x = jnp.ones((16, 16))
  jax.block_until_ready([f(x) for f in keep])
  loaded = programs.memory_maps()
  assert programs.release_if_many(fraction=0.0)
  assert programs.memory_maps() < loaded - 100  # about 14 regions each were freed
