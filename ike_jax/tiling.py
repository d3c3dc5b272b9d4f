"""The Fourier SR stage over a whole photo, window by window (array code, no file I/O).

`solve.solve` costs a few FFTs per splitting round of the image it is given,
but a 12-megapixel photo at x2 is a 48-megapixel output plane per colour:
held whole, with its spectra, it needs gigabytes. So the photo is cut into
equal cores of at most `tile` LR px; each core is solved inside a window
holding `CONTEXT` LR px of its real neighbours on every side (the photo
mirrored beyond its own border), and only the core is kept. Every window has
the same shape, so one compiled solve serves the whole photo; memory is that
of `WORKERS` windows (solved at once), whatever the photo's size. For the
presets' kernels a tiled result equals the untiled one within a fraction of a
grey level away from the photo's border (tests/test_tiling.py;
`docs/method.md`, "Whole photos", for kernels whose spectrum has zeros). A
photo of at most `TILE` LR px a side is one window: solved whole.

The start of the SR stage is either given (G's inverse, whole) or, when None,
MATLAB bicubic made window by window (`resize.matlab_upscale`, rounded to
uint8 as `resize.bicubic_upscale`), so a whole-photo float image never exists.
"""

from concurrent import futures
import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import errors
from ike_jax import resize
from ike_jax import solve

CONTEXT = 24        # LR px of real neighbours on every side of a core
MIRROR = 16         # LR px mirrored around each window against the periodic seam
TILE = 512          # default core side, LR px
MIN_TILE = 32       # the smallest core a memory limit may ask for
# Windows solved at once, from two threads: XLA's CPU FFTs keep about one core
# busy, and two windows in flight were 25% faster on 2 cores (6 windows of a
# 1440x960 photo at x4: 12.7 s against 17.0 s after compiling).
WORKERS = 2
# Peak bytes of one window's solve per HR px of its (FFT-padded) window, three
# colours, and the process's resident memory besides the photo and the windows
# (interpreter, NumPy, JAX, compiled code): fitted to the peak RSS of a
# 1440x960 photo solved with cores of 512 and 256 LR px at x2 and x4 (808 and
# 501 MB at x2, 2053 and 960 MB at x4; 175 B/px is the larger of the two
# scales' slopes), the runtime rounded up from 325 MB for the CLI's own imports.
BYTES_PER_WINDOW_PX = 175
RUNTIME_BYTES = 400 * 2 ** 20


@dataclasses.dataclass(frozen=True)
class Plan:
  """How a photo is cut: cores of tile_h x tile_w LR px on a rows x cols grid,
  each solved in a window with `context` LR px around it, mirrored by
  `mirror` more (the solve's periodic seam) and padded to `fft_shape` LR px."""
  tile_h: int
  tile_w: int
  rows: int
  cols: int
  context: int
  mirror: int
  fft_shape: tuple

  @property
  def windows(self):
    return self.rows * self.cols


def fourier_settings(post):
  """`solve.solve`'s settings of `--refine_solver=fourier` (from a `config.PostConfig`)."""
  return dict(anchor=post.refine_anchor, tv=post.refine_prior, tv_iterations=post.refine_rounds,
              boundary=post.refine_boundary)


def fft_size(n):
  """The smallest 2^a 3^b 5^c >= n (an FFT-friendly length)."""
  best = 1 << max(int(n - 1).bit_length(), 0)
  for five in (1, 5, 25, 125):
    for three in (1, 3, 9, 27, 81):
      m = five * three
      while m < n:
        m *= 2
      best = min(best, m)
  return best


def _plan(tile_h, tile_w, h, w, context=CONTEXT, mirror=MIRROR):
  rows, cols = -(-h // tile_h), -(-w // tile_w)
  fft_shape = tuple(fft_size(t + 2 * (context + mirror)) for t in (tile_h, tile_w))
  return Plan(tile_h, tile_w, rows, cols, context, mirror, fft_shape)


def memory_bytes(plan, lr_shape, scale, extra_bytes=0):
  """Predicted peak resident bytes of the SR stage with `plan`: the runtime,
  the LR photo and the uint8 output, and `WORKERS` windows' solves, plus
  `extra_bytes` (what the kernel estimate leaves resident)."""
  h, w = lr_shape[:2]
  window_px = scale * scale * plan.fft_shape[0] * plan.fft_shape[1]
  return (RUNTIME_BYTES + extra_bytes + 2 * 3 * h * w * (1 + scale * scale)
          + WORKERS * BYTES_PER_WINDOW_PX * window_px)


def plan(lr_shape, scale, tile=0, max_memory_gb=0.0, context=CONTEXT, extra_bytes=0):
  """The tiling of an (h, w) LR photo.

  Args:
    lr_shape: (h, w[, C]).
    scale: s.
    tile: core side (LR px); 0: `TILE`, or less under a memory limit.
    max_memory_gb: a limit on the predicted peak (`memory_bytes`); 0: none.
    context: LR px of real neighbours around each core.
    extra_bytes: resident memory besides the SR stage's (`memory_bytes`).
  Raises:
    errors.UserError: no tiling fits the limit.
  """
  h, w = lr_shape[:2]
  side = tile or TILE
  even = lambda n, t: -(-n // -(-n // t))  # n cut into equal cores of at most t
  make = lambda t: _plan(even(h, t), even(w, t), h, w, context)
  if max_memory_gb < 0:
    raise errors.UserError(f'--max_memory_gb must be >= 0, got {max_memory_gb:g}')
  if not max_memory_gb:
    return make(side)
  limit = max_memory_gb * 2 ** 30
  while side > MIN_TILE and memory_bytes(make(side), lr_shape, scale, extra_bytes) > limit:
    side //= 2
  chosen = make(max(side, MIN_TILE))
  need = memory_bytes(chosen, lr_shape, scale, extra_bytes)
  if need > limit:
    raise errors.UserError(
        f'a {w}x{h} photo at x{scale} needs about {need / 2 ** 30:.1f} GB (its {w * scale}x'
        f'{h * scale} output alone {3 * h * w * scale * scale / 2 ** 30:.2f} GB); '
        f'--max_memory_gb={max_memory_gb:g} is too low')
  return chosen


def solve_photo(lr_u8, start, kernel, origin, scale, settings, plan_, log=None, rounded=True):
  """The Fourier SR stage (`solve.solve`) of a whole photo, window by window.

  Args:
    lr_u8: (h, w, 3) uint8 LR photo.
    start: (s h, s w, 3) float start in [-1, 1], or None for MATLAB bicubic.
    kernel: (C, kh, kw) or (kh, kw) SR kernel; origin: its static (row, col).
    scale: s.
    settings: dict of `solve.solve`'s anchor, tv, tv_iterations and boundary.
    plan_: a `Plan` (`plan`).
    log: progress lines (step, ETA) for runs of more than a few seconds.
    rounded: uint8 output; False: float32 in 0..255, unrounded (for tests).
  Returns:
    (s h, s w, 3) uint8 (or float32).
  """
  s, p = scale, plan_
  h, w = lr_u8.shape[:2]
  c = p.context
  extra = (p.fft_shape[0] - p.tile_h - 2 * (c + p.mirror),
           p.fft_shape[1] - p.tile_w - 2 * (c + p.mirror))
  pads = ((c, p.rows * p.tile_h - h + c + extra[0]), (c, p.cols * p.tile_w - w + c + extra[1]),
          (0, 0))
  lr_p = np.pad(np.asarray(lr_u8), pads, mode='symmetric')
  start_p = None if start is None else np.pad(
      np.asarray(start, np.float32), [(s * a, s * b) for a, b in pads], mode='symmetric')
  win = (p.tile_h + 2 * c + extra[0], p.tile_w + 2 * c + extra[1])
  out = np.empty((h * s, w * s, 3), np.uint8 if rounded else np.float32)
  kernel = np.asarray(kernel, np.float32)
  if kernel.ndim == 3 and np.all(kernel == kernel[:1]):
    kernel = kernel[0]  # one transfer function serves every colour
  solve_window = functools.partial(
      _window, jnp.asarray(kernel), scale=s, origin=tuple(int(o) for o in origin),
      core=(p.tile_h, p.tile_w), context=c, mirror=p.mirror, rounded=rounded, **settings)

  def solve_core(n):
    i, j = divmod(n, p.cols)
    r0, c0 = i * p.tile_h, j * p.tile_w
    lr_win = lr_p[r0:r0 + win[0], c0:c0 + win[1]]
    st_win = None if start_p is None else start_p[s * r0:s * (r0 + win[0]),
                                                  s * c0:s * (c0 + win[1])]
    # The window's pixels inside the photo (its context beyond the photo's
    # edges is mirrored: data only with --refine_boundary=mirror).
    rows = (np.arange(r0, r0 + win[0]) >= c) & (np.arange(r0, r0 + win[0]) < c + h)
    cols = (np.arange(c0, c0 + win[1]) >= c) & (np.arange(c0, c0 + win[1]) < c + w)
    core = np.asarray(solve_window(lr_win, st_win, np.outer(rows, cols).astype(np.float32)))
    rh, rw = min(p.tile_h, h - r0), min(p.tile_w, w - c0)
    out[s * r0:s * (r0 + rh), s * c0:s * (c0 + rw)] = core[:s * rh, :s * rw]

  t0 = last = time.perf_counter()
  solve_core(0)  # compiles, alone
  with futures.ThreadPoolExecutor(WORKERS) as pool:
    for n, _ in enumerate(pool.map(solve_core, range(1, p.windows)), start=2):
      now = time.perf_counter()
      if log is not None and (now - last > 5 or n == p.windows) and now - t0 > 5:
        eta = (now - t0) / n * (p.windows - n)
        log(f'SR stage: window {n}/{p.windows}, {now - t0:.0f} s, ETA {eta:.0f} s')
        last = now
  return out


@functools.partial(jax.jit, static_argnames=('scale', 'origin', 'core', 'context', 'mirror',
                                             'tv_iterations', 'boundary', 'rounded'))
def _window(kernel, lr_u8, start, valid, *, scale, origin, core, context, mirror, anchor, tv,
            tv_iterations, rounded, boundary='mirror'):
  """One window's SR: its start (bicubic when None), the solve, the core as uint8;
  `valid` (1 inside the photo) tells `solve.solve` which LR pixels are data."""
  s = scale
  lr_f = jnp.asarray(lr_u8, jnp.float32)
  if start is None:
    start = jnp.clip(jnp.round(resize.matlab_upscale(lr_f, s)), 0, 255) / 127.5 - 1.0
  sr = solve.solve(lr_f / 127.5 - 1.0, kernel, start, scale=s, origin=origin, anchor=anchor,
                   tv=tv, tv_iterations=tv_iterations, margin=mirror, boundary=boundary,
                   valid=valid if boundary == 'unknown' else None)
  sr = sr[s * context:s * (context + core[0]), s * context:s * (context + core[1])]
  sr = jnp.clip((sr + 1.0) * 127.5, 0, 255)
  return jnp.round(sr).astype(jnp.uint8) if rounded else sr
