"""One frozen, hashable configuration for a run (a static argument of `jit`).

Defaults are the PyTorch IKE README command (SPEC 6 and 13), with two
exceptions SPEC asks for: the exact inverse (`inverse='exact'`; the paper
presets set `reference`) and the fused linear subnets (`fuse_linear=True`).
Every PyTorch quirk is a field so the paper presets can reproduce it.
"""

import dataclasses

LOSS_NAMES = ('energy', 'tv', 'inter', 'csr')


@dataclasses.dataclass(frozen=True)
class Config:
  """Method, schedule and run settings. See `ike_jax.main` for the flags."""
  # Problem.
  scale: int = 2
  crop: int = 128
  iterations: int = 3000
  seed: int = 0
  # The invertible flow G (SPEC 3). generator='deep_linear' swaps in
  # KernelGAN's linear down-scaler (a kernel source only: no inverse).
  generator: str = 'flow'           # 'flow' | 'deep_linear'
  blocks: int = 4
  coupling: str = 'additive'        # 'additive' | 'affine'
  tri_channel: bool = True          # False: the two-channel ablation block
  squeeze: str = 'space_to_depth'   # 'space_to_depth' | 'haar'
  linear: bool = True               # linear subnets (the paper's setting)
  bicubic_residual: bool = True
  inverse: str = 'exact'            # 'exact' | 'reference' (PyTorch's)
  fuse_linear: bool = True          # one 11x11 conv per linear subnet
  affine_clamp: float = 1.0
  # 'bfloat16': D, UD and U convolve in bf16 (f32 accumulation; G stays f32).
  compute_dtype: str = 'float32'
  # Losses (SPEC 6). The G step always has the GAN and bicubic terms.
  losses: tuple = ('tv', 'inter', 'csr')
  lambda_bic: float = 5.0
  lambda_inter: float = 5.0
  lambda_csr: float = 2.0
  lambda_tv: float = 1.0
  lambda_energy: float = 4.0        # value switched on by the schedule
  # KernelGAN's priors on G's impulse response (0: off, as in the paper).
  # sparse and centralized apply once lambda_bic has decayed below
  # energy_switch, as KernelGAN switches them on (to 5 and 1).
  lambda_sum2one: float = 0.0
  lambda_boundaries: float = 0.0
  lambda_negative: float = 0.0
  lambda_sparse: float = 0.0
  lambda_centralized: float = 0.0
  lever_kernel_taps: int = 0        # keep the N largest taps of G's kernel (0: all)
  kernel_probe: int = 0             # probe side for them; 0: G's receptive field
  energy_ksize: int = 36
  energy_sigma: float = 0.9
  # Optimisers (Adam for G, D, U, UD).
  lr_g: float = 2e-4
  lr_d: float = 2e-4
  lr_u: float = 2e-4
  lr_ud: float = 2e-4
  beta1: float = 0.25
  beta2: float = 0.999
  adam_eps: float = 1e-8
  lr_decay_every: int = 750         # G, D and U lr / 10 after these many
  lr_decay: float = 0.1
  # lambda_bic schedule (KernelGAN's learner).
  bic_trigger: float = -1.0         # < 0: 1.0 with the residual, else 0.4
  bic_decay_every: int = 200
  bic_decay_rate: float = 100.0
  bic_min: float = 5e-6
  energy_switch: float = 5e-3
  # PyTorch quirks (True/PyTorch values reproduce the reference code).
  bic_mix_colours: bool = True      # bicubic target sums the three colours
  d_noise_accumulate: bool = True   # D's crop noise written into the image
  d_noise_std: float = 2 / 255      # model units ([-1, 1])
  d_fake_noise_std: float = 1 / 255
  recompute_ud_fake: bool = True    # UD's fake from post-U-step U and G
  edge_mask_round: bool = True      # L_inter's mask from uint8-rounded up(crop)
  # Beyond the paper (issue 9 levers), off in the paper presets.
  refine: bool = False              # back-project SR onto G's estimated kernel
  refine_iterations: int = 100
  refine_prior: float = 3e-5        # smoothed-TV weight of the refinement
  self_ensemble: bool = False       # average SR over the 8 flips/rotations
  zssr: bool = False                # SR by a ZSSR net trained with G's kernel
  zssr_steps: int = 2000
  # Run.
  metrics_every: int = 50

  def __post_init__(self):
    # Normalise list-like `losses` so the config stays hashable.
    object.__setattr__(self, 'losses', tuple(sorted(set(self.losses))))

  @property
  def stages(self):
    return {2: 1, 4: 2}[self.scale]

  @property
  def kernel_priors(self):
    return max(self.lambda_sum2one, self.lambda_boundaries, self.lambda_centralized,
               self.lambda_negative, self.lambda_sparse) > 0

  @property
  def d_crop(self):
    return self.crop // self.scale

  @property
  def fused(self):
    return self.fuse_linear and self.linear

  @property
  def bic_threshold(self):
    if self.bic_trigger >= 0:
      return self.bic_trigger
    return 1.0 if self.bicubic_residual else 0.4

  def static(self):
    """This config with the run-only fields (seed, iterations, metrics_every)
    neutralised: what a jitted step depends on, so seeds share one compile."""
    return dataclasses.replace(self, seed=0, iterations=1, metrics_every=1)

  def replace(self, **kw):
    return dataclasses.replace(self, **kw)

  def to_dict(self):
    d = dataclasses.asdict(self)
    d['losses'] = list(self.losses)
    return d


def validate(cfg):
  """Raises `errors.UserError` (one line) for settings no run can use."""
  from ike_jax import errors  # pylint: disable=g-import-not-at-top
  checks = [
      (cfg.scale in (2, 4), f'--scale must be 2 or 4, got {cfg.scale}'),
      (cfg.iterations > 0, f'--iterations must be positive, got {cfg.iterations}'),
      (cfg.crop > 0 and cfg.crop % cfg.scale == 0,
       f'--crop must be a positive multiple of the scale ({cfg.scale}), got {cfg.crop}'),
      (cfg.crop // max(cfg.scale, 1) > 6,
       f'--crop/scale must exceed 6 (D is a 7x7 patch discriminator), got crop {cfg.crop}'),
      (cfg.blocks > 0, f'--blocks must be positive, got {cfg.blocks}'),
      (cfg.generator in ('flow', 'deep_linear'),
       f'--generator must be flow or deep_linear, got {cfg.generator}'),
      (cfg.generator == 'flow' or cfg.zssr or cfg.refine,
       '--generator=deep_linear has no inverse: add --zssr or --refine'),
      (cfg.generator == 'flow' or not set(cfg.losses) & {'tv', 'inter', 'csr'},
       '--generator=deep_linear trains no up-sampler: use --losses= (none) or energy'),
      (cfg.coupling in ('additive', 'affine'), f'--coupling must be additive or affine, got {cfg.coupling}'),
      (cfg.squeeze in ('space_to_depth', 'haar'), f'--squeeze must be space_to_depth or haar, got {cfg.squeeze}'),
      (cfg.inverse in ('exact', 'reference'), f'--inverse must be exact or reference, got {cfg.inverse}'),
      (set(cfg.losses) <= set(LOSS_NAMES), f'--losses takes a comma list of {",".join(LOSS_NAMES)}, got {",".join(cfg.losses)}'),
      (cfg.compute_dtype in ('float32', 'bfloat16'),
       f'--compute_dtype must be float32 or bfloat16, got {cfg.compute_dtype}'),
      (cfg.metrics_every > 0, f'--metrics_every must be positive, got {cfg.metrics_every}'),
      (min(cfg.lr_g, cfg.lr_d, cfg.lr_u, cfg.lr_ud) >= 0, 'learning rates must be >= 0'),
  ]
  for ok, message in checks:
    if not ok:
      raise errors.UserError(message)
