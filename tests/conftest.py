"""Test-session set-up: one persistent XLA compilation cache for every test.

Many tests compile the same tiny train step, in this process, in other xdist
workers and in CLI subprocesses; a shared on-disk cache compiles it once.
"""

import os
import tempfile

import jax

_CACHE = os.environ.setdefault(
    'JAX_COMPILATION_CACHE_DIR', os.path.join(tempfile.gettempdir(), 'ike_jax_test_xla_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
jax.config.update('jax_compilation_cache_dir', _CACHE)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
