"""Running an absl program: user errors are one line and exit status 2; the
persistent compilation cache."""

import os
import sys

from absl import app

from ike_jax import errors


def run_app(main_fn, flags_parser=None, argv=None):
  """Runs `main_fn` with `app.run` (on `argv`, else sys.argv); maps user errors
  and signals to exit codes."""
  kw = {} if flags_parser is None else {'flags_parser': flags_parser}
  try:
    app.run(main_fn, argv=argv, **kw)
  except errors.UserError as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(2)
  except errors.Interrupted as err:
    print(f'stopped: {err}', file=sys.stderr)
    sys.exit(130)
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    sys.exit(130)


CACHE_MAX_BYTES = 2 << 30  # the persistent compilation cache's size limit


def compilation_cache_dir(flag_value):
  """Where the persistent XLA compilation cache lives ('' for none): the flag
  if given, else $JAX_COMPILATION_CACHE_DIR, else the user's cache folder."""
  if flag_value is None:
    flag_value = os.environ.get('JAX_COMPILATION_CACHE_DIR') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.join('~', '.cache'), 'ike_jax', 'xla')
  return os.path.expanduser(flag_value)


def use_compilation_cache(flag_value):
  """Turns JAX's persistent compilation cache on in `compilation_cache_dir`,
  keeping every program (the blind path compiles some seventy small ones per
  image size, about 10 s on 2 cores; JAX keeps only those over 1 s by
  default). A folder that cannot be written is a one-line note, not an error.
  The cache holds at most `CACHE_MAX_BYTES` (the least recently used programs
  go; $JAX_COMPILATION_CACHE_MAX_SIZE overrides it), and with a size limit JAX
  locks the folder around every read and write: two runs at once never read
  each other's half-written program. Call before anything compiles. Returns
  the folder used ('' for none)."""
  cache = compilation_cache_dir(flag_value)
  if not cache:
    return ''
  try:
    os.makedirs(cache, exist_ok=True)
  except OSError:
    pass
  if not os.path.isdir(cache) or not os.access(cache, os.W_OK):
    print(f'note: compiling without a persistent cache ({cache} is not a writable folder; '
          'set --compilation_cache_dir)', file=sys.stderr)
    return ''
  if not any(name.startswith('jit_') for name in os.listdir(cache)):
    # One 128 px photo through blind_x2: 19 s with an empty cache, 8 s cached
    # (benchmarks/RESULTS.md, "Blind SR per degradation family").
    print(f'note: the compilation cache ({cache}) is empty: this run compiles its programs '
          'and keeps them there; later runs of the same image sizes start faster',
          file=sys.stderr)
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  if 'JAX_COMPILATION_CACHE_MAX_SIZE' not in os.environ:
    jax.config.update('jax_compilation_cache_max_size', CACHE_MAX_BYTES)
  return cache
