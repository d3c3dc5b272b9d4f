"""The configuration of a run: frozen, hashable, nested by concern.

  Config
    train: TrainConfig      what the jitted train step computes (its jit key and,
      scale, crop             with the seed and iteration count, the checkpoint key)
      model: ModelConfig      the kernel estimator G
      loss: LossConfig        loss terms and weights, kernel priors
      optim: OptimConfig      Adam and the schedules
      quirks: QuirksConfig    behaviours of the authors' PyTorch code
    estimate: EstimateConfig  settings of the estimators that train nothing (closed
      spectral: SpectralConfig  forms and the blind choice, computed outside any
      blind: BlindConfig        jitted train step)
    post: PostConfig        what happens to the SR image after the estimate
    run: RunConfig          seed, iterations, progress, population size

Every field is a command-line flag of the same name (`ike_jax.presets`), with
the help text written next to it here. Names are unique across groups, so
`Config.create(blocks=1)` and `cfg.replace(crop=32)` take flat names.
Defaults are the authors' README command at x2, except the exact inverse and
the fused linear subnets (`docs/method.md`, "Deviations of the PyTorch code").
"""

import dataclasses

LOSS_NAMES = ('energy', 'tv', 'inter', 'csr')


def _field(default, help_text):
  return dataclasses.field(default=default, metadata={'help': help_text})


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The kernel estimator G (`ike_jax.estimators`)."""
  generator: str = _field('flow', 'Kernel estimator G: one of ike_jax.estimators.NAMES '
                          "(flow: IKE's invertible flow, the default).")
  blocks: int = _field(4, 'Coupling blocks per squeeze stage of the flow.')
  coupling: str = _field('additive', 'Coupling: additive or affine.')
  tri_channel: bool = _field(True, 'Tri-channel blocks (LR | z | residual); false: two-channel.')
  squeeze: str = _field('space_to_depth', 'Squeeze: space_to_depth or haar.')
  linear: bool = _field(True, 'Linear subnets (no LeakyReLU), the paper setting.')
  bicubic_residual: bool = _field(True, 'The flow works on the residual of the bicubic path.')
  inverse: str = _field('exact', "G's reverse pass: exact, or reference (the PyTorch code's, "
                        'exact only without the residual channel).')
  fuse_linear: bool = _field(True, 'Compose each linear subnet into one 11x11 convolution.')
  affine_clamp: float = _field(1.0, 'Affine coupling: the log-scale is clamp * (2 sigmoid - 1).')
  compute_dtype: str = _field('float32', 'float32 or bfloat16: the dtype D, UD and U convolve '
                              'in (f32 accumulation; G stays float32).')


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Loss terms. The G step always has the GAN and bicubic terms."""
  losses: tuple = _field(('csr', 'inter', 'tv'), 'Optional losses: any of energy,tv,inter,csr.')
  lambda_bic: float = _field(5.0, 'Initial weight of the bicubic loss (decayed by the schedule).')
  lambda_inter: float = _field(5.0, 'Weight of the interpolation loss (edge-masked L1 to bicubic).')
  lambda_csr: float = _field(2.0, "Weight of the cross-scale GAN loss (UD on G's SR image).")
  lambda_tv: float = _field(1.0, 'Weight of the total-variation loss on the SR image.')
  lambda_energy: float = _field(4.0, 'Weight of the energy loss once the schedule switches it on.')
  energy_ksize: int = _field(36, 'Energy loss: Gaussian window side.')
  energy_sigma: float = _field(0.9, 'Energy loss: Gaussian window sigma.')
  lambda_sum2one: float = _field(0.0, "KernelGAN prior on G's kernel: |1 - sum|.")
  lambda_boundaries: float = _field(0.0, "KernelGAN prior on G's kernel: mass outside its window.")
  lambda_negative: float = _field(0.0, "Prior on G's kernel: negative taps.")
  lambda_sparse: float = _field(0.0, "KernelGAN prior on G's kernel (once lambda_bic < "
                                'energy_switch): mean |k|^0.2.')
  lambda_centralized: float = _field(0.0, "KernelGAN prior on G's kernel (once lambda_bic < "
                                     'energy_switch): squared centre offset.')
  kernel_probe: int = _field(0, "Probe side for the kernel priors; 0: G's receptive field.")

  def __post_init__(self):
    # Normalise list-like `losses` so the config stays hashable.
    object.__setattr__(self, 'losses', tuple(sorted(set(self.losses))))

  @property
  def kernel_priors(self):
    return max(self.lambda_sum2one, self.lambda_boundaries, self.lambda_centralized,
               self.lambda_negative, self.lambda_sparse) > 0


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  """Adam for G, D, U and UD; the learning-rate and lambda_bic schedules."""
  lr_g: float = _field(2e-4, "G's Adam learning rate.")
  lr_d: float = _field(2e-4, "D's Adam learning rate.")
  lr_u: float = _field(2e-4, "U's Adam learning rate.")
  lr_ud: float = _field(2e-4, "UD's Adam learning rate (never decayed).")
  beta1: float = _field(0.25, 'Adam beta1.')
  beta2: float = _field(0.999, 'Adam beta2.')
  adam_eps: float = _field(1e-8, 'Adam epsilon.')
  lr_decay_every: int = _field(750, "G's, D's and U's learning rates decay every N steps.")
  lr_decay: float = _field(0.1, 'Learning-rate decay factor.')
  bic_trigger: float = _field(-1.0, 'Bicubic loss below which lambda_bic starts decaying; '
                              '< 0: 1.0 with the bicubic residual, else 0.4.')
  bic_decay_every: int = _field(200, 'lambda_bic decays every N steps once triggered.')
  bic_decay_rate: float = _field(100.0, 'lambda_bic is divided by this at each decay.')
  bic_min: float = _field(5e-6, 'Floor of lambda_bic.')
  energy_switch: float = _field(5e-3, 'lambda_bic below which the energy loss and the late '
                                'kernel priors switch on.')


@dataclasses.dataclass(frozen=True)
class QuirksConfig:
  """Behaviours of the authors' PyTorch code; True reproduces it."""
  bic_mix_colours: bool = _field(True, 'The bicubic-loss target sums the three colours.')
  d_noise_accumulate: bool = _field(True, "D's crop noise is written back into the training image.")
  d_noise_std: float = _field(2 / 255, "Std of the noise on D's real crop (model units, [-1, 1]).")
  d_fake_noise_std: float = _field(1 / 255, "Std of the noise on D's fake input (model units).")
  recompute_ud_fake: bool = _field(True, "UD's fake is recomputed after the U step.")
  edge_mask_round: bool = _field(True, "The interpolation loss's edge mask comes from the "
                                 'uint8-rounded image.')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything the train step computes with: its `jit` static argument."""
  scale: int = _field(2, 'Super-resolution factor: 2 or 4.')
  crop: int = _field(128, 'Side of the G training crop (LR pixels).')
  model: ModelConfig = ModelConfig()
  loss: LossConfig = LossConfig()
  optim: OptimConfig = OptimConfig()
  quirks: QuirksConfig = QuirksConfig()

  @property
  def stages(self):
    return {2: 1, 4: 2}[self.scale]

  @property
  def d_crop(self):
    return self.crop // self.scale

  @property
  def fused(self):
    return self.model.fuse_linear and self.model.linear

  @property
  def bic_threshold(self):
    if self.optim.bic_trigger >= 0:
      return self.optim.bic_trigger
    return 1.0 if self.model.bicubic_residual else 0.4

  def replace(self, **flat):
    return _replace(self, flat)


@dataclasses.dataclass(frozen=True)
class SpectralConfig:
  """`--generator=spectral`: the fit of the LR image's power spectrum (`ike_jax.spectrum`).

  Calibrated on the tuning images (docs/method.md, "The spectral kernel estimate").
  """
  spectral_band_lo: float = _field(0.08, 'Spectral fit: lowest upper frequency of a pair '
                                   '(cycles per LR px; its octave below is the lower one).')
  spectral_band_hi: float = _field(0.35, 'Spectral fit: highest upper frequency of a pair '
                                   '(cycles per LR px; clear of Nyquist, aliasing and JPEG).')
  spectral_directions: int = _field(16, 'Spectral fit: direction bins over [0, pi).')
  spectral_per_octave: int = _field(4, 'Spectral fit: radial bins per octave.')
  spectral_phases: int = _field(1, 'Spectral fit: fits averaged over bin edges shifted by '
                                '1/phases of a bin.')
  spectral_variance_scale: float = _field(0.85, 'Spectral fit: the fitted covariance times '
                                          'this (a calibration: too wide a kernel costs '
                                          'back-projection more than too narrow a one).')
  spectral_robust_iterations: int = _field(0, 'Spectral fit: Huber re-weighted refits '
                                           '(0: plain weighted least squares).')
  spectral_huber_k: float = _field(1.345, 'Spectral fit: where the Huber weights start, in '
                                   'robust standard deviations.')
  spectral_whittle_cap: float = _field(0.0, 'If > 0: where the Gaussian of highest spectral '
                                       'likelihood (ike_jax.whittle), times this, is narrower '
                                       '(smaller trace) than the fitted one, it is the kernel '
                                       '(docs/method.md, "The spectral kernel estimate"); 0: off.')


@dataclasses.dataclass(frozen=True)
class BlindConfig:
  """`--generator=blind`: the per-image choice among a non-parametric kernel, the
  spectral Gaussian and bicubic (docs/method.md, "Blind SR: the kernel choice").

  Variances are in units of the LR pixel's own, s^2/12 HR px^2. Defaults: chosen
  on the x2 tuning photos; flags/blind_x4.flags holds the x4 ones.
  """
  blind_agree_max: float = _field(0.8, 'Blind choice: largest disagreement of the kernels '
                                  'found on the two halves of the image (kernel error over '
                                  'their mean squared size) at which the blind kernel is used.')
  blind_wide_min: float = _field(6.0, "Blind choice: the blind kernel's widest variance from "
                                 'which it is used (narrower: no blur worth undoing).')
  blind_whittle_waive: float = _field(0.0, 'Blind choice: a blind kernel whose spectral-'
                                     "likelihood gap (whittle.gap: how much better a kernel "
                                     "fitted to the image's power spectrum alone explains it) is "
                                     'at most this passes without the halves agreeing '
                                     '(--blind_agree_max; 0: never, the default; blind_x2 '
                                     'sets 0.4).')
  blind_hallucination: float = _field(75.0, 'Blind choice: a blind kernel wider than this '
                                      'while the spectral Gaussian sits at its floor is not used.')
  blind_noise_max: float = _field(4.0, 'Blind choice: noise (grey levels) above which the '
                                  'output is bicubic unless the blind kernel is used.')
  blind_gauss_min: float = _field(float('inf'), "Blind choice: the spectral Gaussian's "
                                  'widest variance up to which the output is bicubic rather '
                                  "than the Gaussian (inf: never the Gaussian).")
  blind_ringing_max: float = _field(6.0, "Blind choice: largest ratio of the blind SR image's "
                                    "gradient energy to bicubic's (luma) at which the blind kernel "
                                    'is used; beyond it the deblurring rings rather than restores.')
  blind_gauss_ringing_per_sd: float = _field(1.2, "Blind choice: the spectral Gaussian's "
                                             'SR image may raise the gradient energy up to this '
                                             'times the square root of its widest variance (in '
                                             "units of the LR pixel's own) over bicubic's; "
                                             'beyond, the output is bicubic.')
  blind_rounds: int = _field(12, 'Alternations of x- and k-step per pyramid level of the '
                             'non-parametric kernel estimate.')
  blind_gamma: float = _field(0.0, "L2 weight on the kernel, per LR pixel, in the pyramid's "
                              'k-steps of the blind kernel and its halves (favours spread kernels '
                              'over a delta; the settling rounds fit without it).')
  blind_settle_rounds: int = _field(24, 'Alternations after the pyramid, at the finest level '
                                    'and the low L0 threshold --blind_settle_lam (0: none).')
  blind_settle_lam: float = _field(5e-4, 'L0 threshold of the settling alternations '
                                   '(--blind_settle_rounds).')
  blind_width_floor: float = _field(0.0, 'The settling alternations keep the blind kernel '
                                    'at least this fraction of the spread of the '
                                    'marginal-likelihood estimate (ike_jax.marginal), '
                                    'blending it in where they fall below (0: off; '
                                    'docs/method.md, "A width floor").')
  blind_companion: float = _field(0.0, 'Where the blind kernel is chosen, the SR image is '
                                  "blended with the marginal-likelihood kernel's (ike_jax.marginal) "
                                  'at this weight on the latter (0: off; docs/method.md, "Two '
                                  'kernels, one image").')
  blind_cross_max: float = _field(0.5, "Blind choice: largest |log| ratio of the blind kernel's "
                                  'widest variance to that of a second estimate whose k-step also '
                                  'fits the gradient autocorrelation (--blind_cross_autocorr) at '
                                  'which the blind kernel is used (inf: no second estimate).')
  blind_cross_autocorr: float = _field(0.03, "The second estimate's autocorrelation weight "
                                       '(--blind_cross_max).')
  blind_second_estimator: str = _field('autocorr', "The second chance's estimate: autocorr (the "
                                       'edge fit that also fits the gradient autocorrelation, '
                                       '--blind_cross_autocorr) or marginal (the marginal-likelihood '
                                       'estimate, ike_jax.marginal).')
  blind_second_agree_max: float = _field(0.8, 'Second chance: where the rule gives bicubic, '
                                         'the second estimate (--blind_second_estimator) is used '
                                         'if its halves agree within this (as --blind_agree_max; '
                                         'inf: its halves are not estimated) ...')
  blind_second_wide_min: float = _field(float('inf'), '... its widest variance is at least '
                                        'this (LR-pixel units; inf, the default: no second '
                                        'chance; blind_x2 sets 20: docs/method.md, "A second '
                                        'chance") ...')
  blind_second_ringing_max: float = _field(3.0, '... its SR image rings at most this '
                                           '(as --blind_ringing_max) ...')
  blind_second_whittle_max: float = _field(float('inf'), "... and its spectral-likelihood gap "
                                           '(whittle.gap) is at most this (inf: not measured).')
  blind_evidence_min: float = _field(float('inf'), 'Last chance: where the rule and the '
                                     'second chance give bicubic, the spectral Gaussian is used '
                                     "if the photo's power spectrum asks for a blur, i.e. no blur "
                                     "(the LR pixel's own footprint) explains it worse than the "
                                     'likelier of the Gaussian and the blind kernel by at least '
                                     'this (whittle.nll, per LR frequency; inf, the default: never; '
                                     'blind_x2 and blind_x4 set 0.5: docs/method.md, "Evidence of '
                                     'a blur"), '
                                     'the Gaussian sits above its floor ...')
  blind_evidence_ringing_max: float = _field(2.0, "... and the Gaussian's SR image rings at "
                                             'most this (as --blind_ringing_max; blind_x4 sets '
                                             '1.5).')
  blind_autocorr: float = _field(0.0, "Weight of the non-parametric estimate's fit to the "
                                 "image's gradient autocorrelation (0: none; 0.03 was tried: "
                                 'docs/method.md, "The non-parametric kernel estimate").')
  blind_shaped_max: float = _field(0.05, 'Blind choice: the spectral Gaussian is chosen first '
                                   'where the blind kernel lies within this of it (kernel error '
                                   "over the blind kernel's squared size): a Gaussian-shaped blur "
                                   '(0: never first).')
  blind_prior: float = _field(1e-3, 'Smoothed-TV weight of --refine when the blind kernel is '
                              'chosen (on a clean image: --blind_clean_max).')
  blind_noisy_factor: float = _field(1.0, '--blind_prior is multiplied by this on an image that '
                                     'is not clean (--blind_clean_max).')
  blind_clean_max: float = _field(float('inf'), 'Blind choice: noise (grey levels) up to which an '
                                  'image without JPEG blocks (--blind_blocky_min) counts as clean; '
                                  'on one that is not, the SR prior is --blind_noisy_prior with '
                                  'the Gaussian and --blind_prior x --blind_noisy_factor with the '
                                  'blind kernel.')
  blind_blocky_min: float = _field(1.05, 'Blind choice: JPEG blockiness (noise.blockiness) '
                                   'from which an image is not clean (--blind_clean_max; inf: '
                                   'blocks never count).')
  blind_noisy_prior: float = _field(3e-3, 'Smoothed-TV weight of --refine with the Gaussian on '
                                    'an image that is not clean (--blind_clean_max); on a clean '
                                    'one it keeps --refine_prior.')
  blind_denoise_prior: float = _field(0.0, 'Blind choice: where the rule gives bicubic on an '
                                      'image that is not clean (--blind_clean_max, '
                                      '--blind_blocky_min) and the blind kernel is near a delta '
                                      '(--blind_denoise_narrow_max), its SR image at this TV '
                                      'weight instead: a denoised upscale, the choice '
                                      '"denoised" (0: never, the default and the presets\'; '
                                      'tried at 1e-2: docs/method.md, "Denoised instead of '
                                      'bicubic").')
  blind_denoise_narrow_max: float = _field(6.0, "... the blind kernel's widest variance, in "
                                           "units of the LR pixel's own (s^2 / 12 HR px^2), "
                                           'at most this (a delta: 2.5) ...')
  blind_denoise_noise_min: float = _field(0.0, '... and the noise estimate (grey levels) at '
                                          'least this (JPEG alone leaves little noise to '
                                          'remove, and a smooth photo loses its detail).')
  blind_shrink: float = _field(0.0, 'L0 threshold of a last alternation at the SR pitch that '
                               'shrinks the blind kernel found at the LR pitch to a milder one '
                               '(0: none).')


@dataclasses.dataclass(frozen=True)
class EstimateConfig:
  """Settings of the kernel estimators that train nothing, one group each.

  They act outside the train step, so they are not part of its jit key.
  """
  spectral: SpectralConfig = SpectralConfig()
  blind: BlindConfig = BlindConfig()


@dataclasses.dataclass(frozen=True)
class PostConfig:
  """Post-processing of the SR image; never part of the train step."""
  zssr: bool = _field(False, "SR by a small ZSSR net trained with G's estimated kernel.")
  zssr_steps: int = _field(2000, 'Adam steps of the --zssr net.')
  refine: bool = _field(False, "Make the SR image consistent with G's estimated kernel "
                        '(back-projection).')
  refine_solver: str = _field('fourier', 'How --refine solves: fourier (data term + TV by '
                              'half-quadratic splitting, each round a closed form in the '
                              'Fourier domain; whole photos window by window) or gradient '
                              '(projected accelerated gradient steps).')
  refine_prior: float = _field(3e-5, 'TV weight of --refine per HR px (gradient: '
                               'Charbonnier-smoothed TV).')
  refine_rounds: int = _field(8, 'Splitting rounds of --refine_solver=fourier.')
  refine_anchor: float = _field(1e-4, 'Pull of --refine_solver=fourier towards its start '
                                '(what the kernel removes stays as the start had it).')
  refine_boundary: str = _field('mirror', "Borders of --refine_solver=fourier: mirror (the LR "
                                 'image mirrored beyond its edges, as data) or unknown (no data '
                                 'beyond them; for kernels not symmetric about their centre, '
                                 'e.g. camera shake: docs/method.md, "The SR stage").')
  refine_context: int = _field(24, 'LR px of real neighbours around each window of '
                               '--refine_solver=fourier on a whole photo (a kernel with zeros '
                               'in its spectrum reaches further).')
  refine_iterations: int = _field(100, 'Gradient steps of --refine_solver=gradient.')
  self_ensemble: bool = _field(False, 'Average the SR image over the 8 flips/rotations.')
  consensus: str = _field('medoid', "How --population's kernels become one: medoid, median "
                          '(centre-aligned geometric median) or mean.')
  lever_kernel_taps: int = _field(0, "Keep only the N largest taps of G's kernel for --zssr "
                                  'and --refine (0: all).')


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """How long, from which seed, how often to report, how many estimators per image."""
  iterations: int = _field(3000, 'Training iterations per image.')
  seed: int = _field(0, 'Random seed (initialisation, crops, noise).')
  metrics_every: int = _field(50, 'Fetch metrics and print progress every N steps.')
  population: int = _field(1, 'Kernel estimators trained per image (seeds seed, seed+1, ...) '
                           'in one vmapped step; their kernels are combined (--consensus) '
                           'and the member nearest the others makes the SR image.')


@dataclasses.dataclass(frozen=True)
class Config:
  """A whole run: `train` (jit key), `estimate`, `post`, `run`."""
  train: TrainConfig = TrainConfig()
  estimate: EstimateConfig = EstimateConfig()
  post: PostConfig = PostConfig()
  run: RunConfig = RunConfig()

  @classmethod
  def create(cls, **flat):
    """A Config from flat field names, e.g. `Config.create(crop=32, zssr=True)`."""
    return _replace(cls(), flat)

  @property
  def scale(self):
    return self.train.scale

  def replace(self, **flat):
    """A copy with fields replaced by flat name (`cfg.replace(blocks=2)`)."""
    return _replace(self, flat)

  def to_dict(self):
    """Nested plain dict (JSON-ready)."""
    d = dataclasses.asdict(self)
    d['train']['loss']['losses'] = list(self.train.loss.losses)
    return d


def leaf_fields(cls=Config, prefix=()):
  """(path, field) for every leaf field, depth first: (('train', 'model'), blocks)."""
  for f in dataclasses.fields(cls):
    if dataclasses.is_dataclass(f.type):
      yield from leaf_fields(f.type, prefix + (f.name,))
    else:
      yield prefix, f


def _replace(obj, flat):
  """Replaces flat-named leaf fields anywhere below `obj`."""
  flat = dict(flat)
  changes = {}
  for f in dataclasses.fields(obj):
    if f.name in flat:
      changes[f.name] = flat.pop(f.name)
    elif dataclasses.is_dataclass(f.type):
      names = {leaf.name for _, leaf in leaf_fields(f.type)}
      mine = {k: flat.pop(k) for k in list(flat) if k in names}
      if mine:
        changes[f.name] = _replace(getattr(obj, f.name), mine)
  if flat:
    raise TypeError(f'unknown config fields: {", ".join(sorted(flat))}')
  return dataclasses.replace(obj, **changes)


def flat_dict(cfg):
  """{flat name: value} of every leaf field."""
  out = {}
  for path, f in leaf_fields(type(cfg)):
    node = cfg
    for name in path:
      node = getattr(node, name)
    out[f.name] = getattr(node, f.name)
  return out


def validate(cfg):
  """Raises `errors.UserError` (one line) for settings no run can use.

  What depends on the estimator the config names is checked by
  `ike_jax.estimate.check`, which calls this first.
  """
  from ike_jax import errors  # pylint: disable=g-import-not-at-top
  t, m, run = cfg.train, cfg.train.model, cfg.run
  losses = set(t.loss.losses)
  if t.scale not in (2, 4):  # first: the checks below divide by it
    raise errors.UserError(f'--scale must be 2 or 4, got {t.scale}')
  checks = [
      (run.iterations > 0, f'--iterations must be positive, got {run.iterations}'),
      (t.crop > 0 and t.crop % t.scale == 0,
       f'--crop must be a positive multiple of the scale ({t.scale}), got {t.crop}'),
      (t.crop // t.scale > 6,
       f'--crop/scale must exceed 6 (D is a 7x7 patch discriminator), got crop {t.crop}'),
      (m.blocks > 0, f'--blocks must be positive, got {m.blocks}'),
      (m.coupling in ('additive', 'affine'), f'--coupling must be additive or affine, got {m.coupling}'),
      (m.squeeze in ('space_to_depth', 'haar'), f'--squeeze must be space_to_depth or haar, got {m.squeeze}'),
      (m.inverse in ('exact', 'reference'), f'--inverse must be exact or reference, got {m.inverse}'),
      (losses <= set(LOSS_NAMES),
       f'--losses takes a comma list of {",".join(LOSS_NAMES)}, got {",".join(t.loss.losses)}'),
      (m.compute_dtype in ('float32', 'bfloat16'),
       f'--compute_dtype must be float32 or bfloat16, got {m.compute_dtype}'),
      (run.metrics_every > 0, f'--metrics_every must be positive, got {run.metrics_every}'),
      (run.population > 0, f'--population must be positive, got {run.population}'),
      (cfg.post.refine_rounds >= 0 and cfg.post.refine_anchor > 0,
       '--refine_rounds must be >= 0 and --refine_anchor > 0'),
      (cfg.post.refine_boundary in ('mirror', 'unknown'),
       f"--refine_boundary must be mirror or unknown, got {cfg.post.refine_boundary!r}"),
      (cfg.post.refine_context >= 0,
       f'--refine_context must be >= 0, got {cfg.post.refine_context}'),
      (cfg.post.refine_solver in ('fourier', 'gradient'),
       f'--refine_solver must be fourier or gradient, got {cfg.post.refine_solver}'),
      (cfg.post.consensus in ('medoid', 'median', 'mean'),
       f'--consensus must be medoid, median or mean, got {cfg.post.consensus}'),
      (min(t.optim.lr_g, t.optim.lr_d, t.optim.lr_u, t.optim.lr_ud) >= 0,
       'learning rates must be >= 0'),
  ]
  for ok, message in checks:
    if not ok:
      raise errors.UserError(message)
