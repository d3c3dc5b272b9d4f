"""The compiled programs a long run holds, and when to let them go.

XLA:CPU maps each loaded program's machine code into memory regions of its
own: about 14 for a small program, about 1,700 for a train step, about 2,000
for everything the blind estimate and the SR stage compile for one image size
(counted in `/proc/self/maps`). JAX's jit caches keep every program for the
life of the process, so a run over many images of different sizes reaches the
kernel's limit on regions (`vm.max_map_count`, 65,530 by default) and dies
inside LLVM ("Unable to allocate section memory", or a segfault).
`release_if_many`, called between images, clears those caches once half the
limit is in use (after that, half the room the last release left); later
images compile again, or read their programs back from the persistent
compilation cache.
"""

import gc

import jax

DEFAULT_MAP_LIMIT = 65530  # Linux's default vm.max_map_count


def memory_maps():
  """How many memory regions this process maps (0 where /proc is absent)."""
  try:
    with open('/proc/self/maps', 'rb') as f:
      return sum(1 for _ in f)
  except OSError:
    return 0


def map_limit():
  """The kernel's limit on one process's memory regions."""
  try:
    with open('/proc/sys/vm/max_map_count', encoding='ascii') as f:
      return int(f.read())
  except (OSError, ValueError):
    return DEFAULT_MAP_LIMIT


# The regions mapped just after the last release: what a release could not
# free (other libraries' maps, programs still referenced). Process state, as
# the caches it watches are.
_after_release = 0


def release_if_many(fraction=0.5):
  """Clears JAX's jit caches (and so frees the memory regions of the
  programs nothing else holds) when this process maps more than what the last
  release left plus `fraction` of the room from there to `map_limit()` (the
  first time, `fraction` of the limit). Where a release frees little, the
  next one waits until programs have filled that part of the room left,
  rather than clearing (and compiling again) after every image. Arrays and
  jitted functions stay valid. Returns whether it cleared them."""
  global _after_release  # pylint: disable=global-statement
  if memory_maps() <= _after_release + fraction * (map_limit() - _after_release):
    return False
  jax.clear_caches()
  gc.collect()
  _after_release = memory_maps()
  return True
