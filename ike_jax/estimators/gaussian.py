"""An anisotropic Gaussian down-scaler as a kernel estimator (`ike_jax.estimators`).

With `--generator=gaussian` the G of the training step blurs with one
anisotropic Gaussian and keeps every s-th pixel: three numbers (the two
principal variances, in HR px^2, and the angle of the first axis). The kernel
is unit-sum and non-negative by construction, so none of KernelGAN's kernel
priors is needed and it cannot collapse; the adversarial loss alone sets its
width and shape (docs/method.md, "A Gaussian kernel space"). Like
`deep_linear`, it has no inverse: the SR image comes from `--zssr` or
`--refine`, and for x4 jobs it trains at x2 and the x4 kernel is derived.

The parameters are stored divided by `RATE`, so that Adam, whose steps are
about its learning rate in parameter units, moves the log-variances and the
angle `RATE` times faster than a deep-linear weight (about 0.01 per step at
the default 2e-4).
"""

import jax
import jax.numpy as jnp

from ike_jax import kernel

NAME = 'gaussian'
TRAINS = True
HAS_INVERSE = False
LABEL = 'Gaussian G'
KERNEL_SIZE = 13
RATE = 50.0
# Where a run starts: isotropic variance INIT_VAR (HR px^2), each axis moved
# by a seed-drawn factor exp(U(-INIT_SPREAD, INIT_SPREAD)), angle U(0, pi).
INIT_VAR = 2.0
INIT_SPREAD = 0.3
MIN_VAR = 0.05  # keeps the kernel wider than a fraction of a pixel
MODE = 'reflect'  # `kernel.degrade`'s mirrored borders: no dark rim for D to see


def training_scale(scale):
  """Like KernelGAN, learns the x2 kernel also for x4 jobs."""
  del scale
  return 2


def receptive_radius(cfg):
  del cfg
  return KERNEL_SIZE // 2


def init(key, cfg):
  """{'gaussian': {'log_var': (2,), 'angle': ()}}, both divided by RATE."""
  del cfg
  k_var, k_angle = jax.random.split(key)
  log_var = jnp.log(INIT_VAR) + jax.random.uniform(
      k_var, (2,), minval=-INIT_SPREAD, maxval=INIT_SPREAD)
  angle = jax.random.uniform(k_angle, (), minval=0.0, maxval=jnp.pi)
  return {'gaussian': {'log_var': log_var / RATE, 'angle': angle / RATE}}


def shape(params):
  """(variances (2,), angle) in HR px^2 and radians."""
  p = params['gaussian']
  return MIN_VAR + jnp.exp(RATE * p['log_var']), RATE * p['angle']


def covariance(variances, angle):
  """R diag(variances) R^T, R the rotation by `angle`: variances[0] lies along
  the direction at `angle` from +col (`kernel.gaussian_kernel`'s axes)."""
  c, s = jnp.cos(angle), jnp.sin(angle)
  rot = jnp.array([[c, -s], [s, c]])
  return rot @ jnp.diag(variances) @ rot.T


def prepare(params, cfg):
  """{'kernel': (13, 13)} from the three shape parameters."""
  return {'kernel': kernel.gaussian_kernel(covariance(*shape(params)), KERNEL_SIZE, cfg.scale)}


def forward(prepared, x, cfg):
  """(N, H, W, 1) -> (lr (N, H/s, W/s, 1), zero latent (N, H/s, W/s, s^2 - 1)).

  One strided correlation with mirrored borders (`kernel.degrade`).
  """
  s = cfg.scale
  lr = jax.vmap(lambda v: kernel.degrade(v, prepared['kernel'], s, mode=MODE, fft=False))(x)
  return lr, jnp.zeros((*lr.shape[:-1], s * s - 1), lr.dtype)
