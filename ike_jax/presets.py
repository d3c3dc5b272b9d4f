"""Config flags on any `FlagValues`, and presets (flagfiles) read into Configs.

`define_config_flags(flags.FLAGS)` gives a program one flag per `Config` field;
`config_from_flagfile` reads a preset such as `flags/ablation_3_tri.flags` into
a `Config` without touching the global flags, so one process can load several.
"""

import dataclasses
import os

from absl import flags

from ike_jax import config as config_lib
from ike_jax import errors

HELP = {
    'scale': 'Super-resolution factor: 2 or 4.',
    'crop': 'Side of the G training crop (LR pixels).',
    'iterations': 'Training iterations per image.',
    'seed': 'Random seed (initialisation, crops, noise).',
    'blocks': 'Coupling blocks per squeeze stage.',
    'coupling': 'Coupling: additive or affine.',
    'tri_channel': 'Tri-channel blocks (LR | z | residual); false = two-channel.',
    'squeeze': 'Squeeze: space_to_depth or haar.',
    'linear': 'Linear subnets (no LeakyReLU), the paper setting.',
    'bicubic_residual': 'The flow works on the residual of the bicubic path.',
    'inverse': "G's reverse pass: exact, or reference (the PyTorch code's inexact one).",
    'fuse_linear': 'Compose each linear subnet into one 11x11 convolution.',
    'losses': 'Optional losses: any of energy,tv,inter,csr.',
    'd_noise_accumulate': "PyTorch quirk: D's crop noise is written into the training image.",
    'bic_mix_colours': 'PyTorch quirk: the bicubic-loss target sums the three colours.',
    'recompute_ud_fake': "PyTorch order: UD's fake recomputed after the U step.",
    'edge_mask_round': "PyTorch: L_inter's edge mask from the uint8-rounded image.",
    'compute_dtype': ('float32 or bfloat16: the dtype D, UD and U convolve in (f32 '
                      'accumulation; G stays float32). bfloat16 is for accelerators.'),
    'generator': ("G: flow (IKE's invertible flow) or deep_linear (KernelGAN's linear "
                  'down-scaler; a kernel source only, needs --zssr or --refine).'),
    'zssr': "Issue 9 lever: SR by a small ZSSR net trained with G's estimated kernel.",
    'zssr_steps': 'Adam steps of the --zssr net.',
    'refine': "Issue 9 lever: back-project the SR image onto G's estimated kernel.",
    'self_ensemble': 'Average the SR image over the 8 flips/rotations of the input.',
    'lambda_sum2one': "KernelGAN prior on G's kernel: |1 - sum|.",
    'lambda_boundaries': "KernelGAN prior on G's kernel: mass outside the kernel window.",
    'lambda_negative': "Prior on G's kernel: negative taps.",
    'lambda_sparse': "KernelGAN prior on G's kernel (once lambda_bic < energy_switch): mean |k|^0.2.",
    'lambda_centralized': "KernelGAN prior on G's kernel (once lambda_bic < energy_switch): centre offset^2.",
    'lever_kernel_taps': "Keep only the N largest taps of G's kernel for --zssr/--refine (0: all).",
    'metrics_every': 'Fetch metrics and print progress every N steps.',
}

CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(config_lib.Config))


def define_config_flags(flag_values=flags.FLAGS):
  """Defines one flag per Config field, with the field's default and type."""
  for field in dataclasses.fields(config_lib.Config):
    help_text = HELP.get(field.name, field.name.replace('_', ' ') + '.')
    default = field.default
    kw = dict(flag_values=flag_values)
    if isinstance(default, bool):
      flags.DEFINE_bool(field.name, default, help_text, **kw)
    elif isinstance(default, int):
      flags.DEFINE_integer(field.name, default, help_text, **kw)
    elif isinstance(default, float):
      flags.DEFINE_float(field.name, default, help_text, **kw)
    elif isinstance(default, tuple):
      flags.DEFINE_list(field.name, list(default), help_text, **kw)
    else:
      flags.DEFINE_string(field.name, default, help_text, **kw)


def config_from_flag_values(flag_values=flags.FLAGS):
  """The Config that parsed `flag_values` describe."""
  values = {name: flag_values[name].value for name in CONFIG_FIELDS}
  values['losses'] = tuple(v for v in values['losses'] if v)
  return config_lib.Config(**values)


def _resolve(path, including_file):
  """Finds a nested flagfile: as given, else beside or above its includer."""
  path = os.path.expanduser(path)
  if os.path.isabs(path) or including_file is None or os.path.isfile(path):
    return path
  here = os.path.dirname(os.path.abspath(including_file))
  for base in (here, os.path.dirname(here)):
    candidate = os.path.join(base, path)
    if os.path.isfile(candidate):
      return candidate
  return path


def read_flagfile(path, _including=None, _seen=()):
  """The flag arguments of a flagfile, nested `--flagfile=`s expanded.

  Follows absl's format: one flag a line; blank lines and lines starting with
  `#` or `//` are skipped.
  """
  path = _resolve(path, _including)
  real = os.path.realpath(path)
  if real in _seen:
    raise errors.UserError(f'flagfile {path} includes itself')
  try:
    with open(path) as f:
      lines = f.read().splitlines()
  except OSError as err:
    raise errors.UserError(f'cannot read flagfile {path}: {err.strerror or err}') from err
  args = []
  for line in lines:
    line = line.strip()
    if not line or line.startswith(('#', '//')):
      continue
    if line.startswith(('--flagfile=', '-flagfile=')):
      args += read_flagfile(line.split('=', 1)[1], path, _seen + (real,))
    else:
      args.append(line)
  return args


def config_from_flagfile(path, overrides=()):
  """Reads a preset into a Config; `overrides` (e.g. '--crop=32') come after."""
  flag_values = flags.FlagValues()
  define_config_flags(flag_values)
  args = read_flagfile(path) + [
      a if a.startswith('-') else '--' + a for a in overrides]
  try:
    extra = flag_values(['preset'] + args)
  except flags.Error as err:
    raise errors.UserError(f'{path}: {err}') from err
  if len(extra) > 1:
    raise errors.UserError(f'{path}: unexpected arguments: {" ".join(extra[1:])}')
  return config_from_flag_values(flag_values)
