"""Test-session set-up: one persistent XLA compilation cache for every test.

Many tests compile the same tiny train step, in this process, in other xdist
workers and in CLI subprocesses; a shared on-disk cache compiles it once.
JAX writes a cache entry in place, so one worker could read another's entry
half written; a size limit makes JAX take a file lock around every read and
write (`filelock`).
An xdist worker loads the programs of hundreds of tests: after each test,
`programs.release_if_many` lets them go before the worker reaches the
kernel's limit on memory regions (see that module), where it died in JAX's
persistent-cache read.
"""

import os
import tempfile

import jax
import pytest

from ike_jax import programs

_CACHE = os.environ.setdefault(
    'JAX_COMPILATION_CACHE_DIR', os.path.join(tempfile.gettempdir(), 'ike_jax_test_xla_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
_MAX_BYTES = int(os.environ.setdefault('JAX_COMPILATION_CACHE_MAX_SIZE', str(4 << 30)))
jax.config.update('jax_compilation_cache_dir', _CACHE)
jax.config.update('jax_compilation_cache_max_size', _MAX_BYTES)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)


@pytest.fixture(autouse=True)
def _release_programs_when_many_are_loaded():
  yield
  programs.release_if_many()
