"""Kernel estimators: the G of the training step, or a closed form; one module each.

A kernel estimator finds an image's own down-scaling kernel. The registry
below maps `--generator` names to modules; the estimate stage
(`ike_jax.estimate`) is the one place outside this package that asks which
kind a module is. A new estimator is a new module and a line in `_MODULES`.

Every estimator module has

  NAME                                its `--generator` name
  LABEL                               how outputs name its kernel ('IKE', 'spectral')
  TRAINS                              True: a G trained by the vmapped train step
  HAS_INVERSE                         True: G^-1 makes the SR image (else bicubic
                                      is the SR stage's start, and --zssr or
                                      --refine is required)
  training_scale(scale) -> int        the scale it estimates at for an x`scale`
                                      job (x4 kernels may be derived from x2)
  checks(cfg) -> [(ok, message)]      optional: one-line errors for its settings

An estimator that trains nothing (TRAINS = False, e.g. `spectral`) has

  MIN_SIDE                            the smallest LR side (px) it can read
  PEAK_BYTES                          optional: resident memory its estimate adds
                                      to the SR stage's (`--max_memory_gb`)
  estimate(lr_u8, cfg) -> dict        lr_u8 (H, W, 3) uint8, cfg the run's
                                      `config.Config`; its settings are a group
                                      of `cfg.estimate` (flags, help text)

`estimate` returns the kernel at the training scale in the format of
`readout.estimate_kernel`: 'kernel' (k, k) and 'per_colour' (C, k, k) float
arrays, 'sum', 'center_of_mass' (row, col), 'origin' (row, col) for
`kernel.degrade`, 'linear', 'nonlinearity'. Any further keys must be
JSON-serialisable; they are data, not code paths: `<stem>_metrics.json`
records them under 'estimate' (e.g. 'choice' among candidate kernels,
'candidates' with their scores, 'confidence', 'reason', 'noise_sigma',
'covariance'), and the terminal shows 'choice' and 'confidence' and, on a
line of its own, 'reason' when present.

An estimator that trains (TRAINS = True) has instead

  init(key, cfg) -> params            cfg: a `config.TrainConfig` at the training scale
  prepare(params, cfg) -> prepared    once per step (e.g. fuse linear layers)
  forward(prepared, x, cfg) -> (lr, z)
      HR to LR: x (N, H, W, 1) in [-1, 1] -> lr (N, H/s, W/s, 1) and the latent
      z (N, H/s, W/s, s^2 - 1) (zeros for a plain blur)
  receptive_radius(cfg) -> int        HR px an LR pixel can see from its block

and, when HAS_INVERSE,

  forward(prepared, x, cfg, local)    `local(fn, v)` applies G's convolutional
                                      part (inference passes a tiling version)
  inverse(prepared, y, z_up, cfg, local) -> (N, s*h, s*w, 1)
      LR and up-sampled latent to SR
  tile_margins(cfg) -> {'forward', 'inverse'}   overlaps for tiled inference

The kernel of a trained G is read from `forward` by `readout` (the gradient of
one LR pixel), the same way for every such estimator. The colours of an image
are a batch of one-channel images for G (`ike_jax.colours`).
"""

from ike_jax.estimators import blind
from ike_jax.estimators import deep_linear
from ike_jax.estimators import flow
from ike_jax.estimators import gaussian
from ike_jax.estimators import spectral

# Name -> module. A new estimator is a new module and a line here.
_MODULES = {
    'flow': flow,
    'deep_linear': deep_linear,
    'gaussian': gaussian,
    'spectral': spectral,
    'blind': blind,
}
NAMES = tuple(_MODULES)


def get(name):
  """The estimator module registered as `name`."""
  if name not in _MODULES:
    raise ValueError(f'unknown kernel estimator {name!r}; expected one of {", ".join(NAMES)}')
  return _MODULES[name]


def of(cfg):
  """The estimator module a `TrainConfig` (or `Config`) names."""
  train = getattr(cfg, 'train', cfg)
  return get(train.model.generator)
