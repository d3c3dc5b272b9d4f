"""One kernel from a population: several estimates of the same image's kernel.

A GAN-trained estimator's kernel varies from seed to seed. Given N estimates
(same size, same origin convention), `combine` returns one kernel:

  'medoid'  the member with the least summed `kernel.kernel_error` to all
            others (a real estimate; ignores outliers as long as they are a
            minority)
  'median'  the centre-aligned geometric median: every member is moved by the
            integer shift that puts its centre of mass nearest the medoid's,
            then Weiszfeld's iteration finds the kernel with the least summed
            L2 distance to them (robust to a minority of outliers, smoother
            than any single member)
  'mean'    the centre-aligned mean (for comparison; not robust)

Kernels are normalised to unit sum first. NumPy only; no I/O.
"""

import numpy as np

from ike_jax import kernel as kernel_lib

METHODS = ('medoid', 'median', 'mean')


def _unit(kernels):
  kernels = np.asarray(kernels, np.float64)
  if kernels.ndim != 3 or len(kernels) == 0:
    raise ValueError(f'expected (N, k, k) kernels, got shape {kernels.shape}')
  sums = kernels.sum(axis=(1, 2), keepdims=True)
  if not np.all(np.isfinite(sums)) or np.any(np.abs(sums) < 1e-12):
    raise ValueError('every kernel must have a finite, non-zero sum')
  return kernels / sums


def distances(kernels):
  """(N, N) symmetric matrix of `kernel.kernel_error` between members."""
  kernels = _unit(kernels)
  n = len(kernels)
  d = np.zeros((n, n))
  for i in range(n):
    for j in range(i + 1, n):
      d[i, j] = d[j, i] = 0.5 * (kernel_lib.kernel_error(kernels[i], kernels[j])
                                 + kernel_lib.kernel_error(kernels[j], kernels[i]))
  return d


def medoid_index(kernels):
  """Index of the member with the least summed distance to the others."""
  return int(np.argmin(distances(kernels).sum(axis=1)))


def _shift(k, by):
  """k moved by integer (rows, cols), zero-filled (no wrap-around)."""
  out = np.zeros_like(k)
  h, w = k.shape
  dy, dx = int(by[0]), int(by[1])
  src = k[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
  out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
  return out


def align(kernels, reference):
  """Each kernel moved by the integer shift nearest to `com(reference) - com(k)`."""
  target = kernel_lib.center_of_mass(reference)
  return np.stack([
      _shift(k, np.floor(target - kernel_lib.center_of_mass(k) + 0.5)) for k in kernels])


def geometric_median(points, iterations=50, eps=1e-12):
  """Weiszfeld's iteration on (N, ...) points: argmin_x sum_i ||x - p_i||."""
  flat = points.reshape(len(points), -1)
  x = flat.mean(axis=0)
  for _ in range(iterations):
    dist = np.linalg.norm(flat - x, axis=1)
    if np.any(dist < eps):  # at a data point: that point is a fixed point
      x = flat[np.argmin(dist)]
      break
    w = 1.0 / dist
    x = (w[:, None] * flat).sum(axis=0) / w.sum()
  return x.reshape(points.shape[1:])


def combine(kernels, method='medoid', medoid=None):
  """One unit-sum kernel from (N, k, k) estimates; see the module docstring.

  `medoid`: the medoid's index when the caller has it (saves the distances).
  """
  if method not in METHODS:
    raise ValueError(f'consensus method must be one of {", ".join(METHODS)}, got {method!r}')
  kernels = _unit(kernels)
  m = medoid_index(kernels) if medoid is None else medoid
  if method == 'medoid':
    return kernels[m]
  aligned = align(kernels, kernels[m])
  k = aligned.mean(axis=0) if method == 'mean' else geometric_median(aligned)
  return k / k.sum()


def population_estimate(estimates, method='medoid'):
  """One kernel estimate from a population's `readout.estimate_kernel` dicts.

  Returns (index of the medoid member, an estimate dict like the members':
  the medoid's, with 'kernel' and every colour of 'per_colour' replaced by
  `combine(...)` scaled to the medoid's sum, plus 'population': the
  consensus method, the member count and the mean pairwise distance).
  The members must share the kernel size; the medoid's origin is kept (the
  consensus is centre-aligned to it).
  """
  kernels = np.stack([e['kernel'] for e in estimates])
  d = distances(kernels)
  pick = int(np.argmin(d.sum(axis=1)))
  k = combine(kernels, method, medoid=pick) * estimates[pick]['sum']
  colours = len(estimates[pick]['per_colour'])
  n = len(estimates)
  spread = float(d.sum() / (n * (n - 1))) if n > 1 else 0.0
  return pick, dict(estimates[pick], kernel=k, per_colour=np.repeat(k[None], colours, 0),
                    population={'consensus': method, 'members': n, 'spread': spread,
                                'medoid': pick})
