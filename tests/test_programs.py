"""`programs.release_if_many`: a long run lets its compiled programs go before
the process runs out of memory regions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ike_jax import outputs
from ike_jax import pipeline
from ike_jax import presets
from ike_jax import programs
from tests.test_train import TINY
from tests.test_train import synthetic_image


def _cosh_plus_seven(x):
  return jnp.cosh(x) + 7.0


def test_programs_stay_until_the_process_nears_the_limit_then_go(monkeypatch):
  f = jax.jit(_cosh_plus_seven)
  x = f(jnp.arange(5.0))
  assert f._cache_size() == 1  # pylint: disable=protected-access
  monkeypatch.setattr(programs, '_after_release', 0)
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


def test_where_a_release_frees_little_the_next_waits_for_half_the_room_left(monkeypatch):
  # 40,000 of 65,530 regions that no release frees: one release, then none
  # until programs fill half the room left (52,765), not one per image.
  f = jax.jit(_cosh_plus_seven)
  monkeypatch.setattr(programs, '_after_release', 0)
  monkeypatch.setattr(programs, 'map_limit', lambda: 65530)
  maps = [40000]
  monkeypatch.setattr(programs, 'memory_maps', lambda: maps[0])
  assert programs.release_if_many()
  assert programs._after_release == 40000  # pylint: disable=protected-access
  f(jnp.arange(3.0))
  maps[0] = 52700
  assert not programs.release_if_many()
  assert f._cache_size() == 1  # pylint: disable=protected-access
  maps[0] = 52800
  assert programs.release_if_many()
  assert f._cache_size() == 0  # pylint: disable=protected-access


def test_releasing_frees_the_programs_memory_regions(monkeypatch):
  monkeypatch.setattr(programs, '_after_release', 0)
  if not programs.memory_maps():
    pytest.skip('no /proc/self/maps: nothing to count')
  keep = [jax.jit(lambda x, i=i: jnp.tanh(x @ x.T * i).sum(0) + jnp.sin(x).cumsum(1)[0] * i)
          for i in range(20)]
  x = jnp.ones((16, 16))
  jax.block_until_ready([f(x) for f in keep])
  loaded = programs.memory_maps()
  assert programs.release_if_many(fraction=0.0)
  assert programs.memory_maps() < loaded - 100  # about 14 regions each were freed


@pytest.mark.parametrize('trained', [False, True], ids=['best_x2', 'trained_flow'])
def test_a_run_that_lets_its_programs_go_between_images_writes_the_same_images(
    tmp_path, monkeypatch, trained):
  # Two images of two sizes, once as usual, once with the programs released
  # after every image's estimate (closed form) or SR stage: best_x2's closed
  # form, and a short flow training one image per batch (its train step and
  # G^-1 compile again for the second image).
  if trained:
    cfg = TINY.replace(iterations=4, metrics_every=2)
    options = pipeline.Options(batch_size=1)
    calls = 2  # after each image's SR stage
  else:
    cfg = presets.config_from_flagfile(presets.preset_path('best_x2'))
    options = pipeline.Options()
    calls = 4  # and after each image's estimate
  jobs = []
  for size in (32, 36):
    path = str(tmp_path / f'in{size}.png')
    outputs.write_png(path, synthetic_image(size, seed=size))
    jobs.append(pipeline.Job(path))
  pipeline.super_resolve_files(jobs, cfg, str(tmp_path / 'kept'), options, log=lambda m: None)
  released = []
  monkeypatch.setattr(programs, '_after_release', 0)
  real = programs.release_if_many
  monkeypatch.setattr(programs, 'release_if_many',
                      lambda: released.append(real(fraction=0.0)))
  pipeline.super_resolve_files(jobs, cfg, str(tmp_path / 'released'), options,
                               log=lambda m: None)
  assert len(released) == calls and all(released)
  for size in (32, 36):
    name = f'in{size}_x2.png'
    assert (tmp_path / 'kept' / name).read_bytes() == (tmp_path / 'released' / name).read_bytes()
