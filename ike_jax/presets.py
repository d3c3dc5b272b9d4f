"""Config flags, and presets (absl flagfiles in `flags/`) read into Configs.

`define_config_flags(flags.FLAGS)` gives a program one flag per leaf field of
`config.Config`, named after the field, with the help text written beside the
field. Flagfiles are read by absl alone (`--flagfile=`; a nested
`--flagfile=flags/x.flags` inside a preset is relative to the repository
root). `--preset=NAME` stands for `--flagfile=<repository>/flags/NAME.flags`
and works from any directory.
"""

import contextlib
import os

from absl import flags

from ike_jax import config as config_lib
from ike_jax import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET_DIR = os.path.join(ROOT, 'flags')
FIELDS = tuple(f for _, f in config_lib.leaf_fields())


def preset_names():
  """The presets in `flags/` (file stems), sorted."""
  if not os.path.isdir(PRESET_DIR):
    return []
  return sorted(f[:-len('.flags')] for f in os.listdir(PRESET_DIR) if f.endswith('.flags'))


def define_config_flags(flag_values=flags.FLAGS, module_name=None):
  """Defines one flag per leaf field of Config, with its default, type and help.

  `module_name` is the module the flags are listed under in `--helpfull`.
  """
  for field in FIELDS:
    help_text = field.metadata['help']
    default = field.default
    kw = dict(flag_values=flag_values, module_name=module_name)
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
  values = {f.name: flag_values[f.name].value for f in FIELDS}
  values['losses'] = tuple(v for v in values['losses'] if v)
  return config_lib.Config.create(**values)


def preset_path(name):
  """`flags/NAME.flags`; a one-line error naming the presets if there is none."""
  path = os.path.join(PRESET_DIR, f'{name}.flags')
  if not os.path.isfile(path):
    raise errors.UserError(f'no preset {name!r}; presets: {", ".join(preset_names())}')
  return path


def read_flagfile(path, flag_values=None):
  """The flag arguments of a flagfile, nested flagfiles expanded (by absl).

  Nested relative includes resolve against the repository root, where the
  presets live; `path` itself against the working directory.
  """
  flag_values = flag_values or flags.FlagValues()
  path = os.path.abspath(os.path.expanduser(path))
  try:
    with contextlib.chdir(ROOT):
      return flag_values.read_flags_from_files(['--flagfile=' + path], force_gnu=False)
  except flags.Error as err:
    raise errors.UserError(' '.join(str(err).split())) from None


def expand_presets(argv, flag_values=None):
  """argv with each `--preset=NAME` replaced by that preset's flags, in place,
  so flags after it override it."""
  out, args = [], list(argv)
  while args:
    arg = args.pop(0)
    if arg in ('--preset', '-preset') and args:
      arg = '--preset=' + args.pop(0)
    if arg.startswith(('--preset=', '-preset=')):
      name = arg.split('=', 1)[1]
      out += read_flagfile(preset_path(name), flag_values) + [f'--preset={name}']
    else:
      out.append(arg)
  return out


def config_from_flagfile(path, overrides=()):
  """Reads a preset into a Config; `overrides` (e.g. '--crop=32') come after."""
  flag_values = flags.FlagValues()
  define_config_flags(flag_values)
  args = read_flagfile(path, flag_values) + [
      a if a.startswith('-') else '--' + a for a in overrides]
  try:
    extra = flag_values(['preset'] + args)
  except flags.Error as err:
    raise errors.UserError(f'{path}: {err}') from err
  if len(extra) > 1:
    raise errors.UserError(f'{path}: unexpected arguments: {" ".join(extra[1:])}')
  return config_from_flag_values(flag_values)


def config_summary(cfg):
  """The fields of `cfg` that differ from the defaults, as flags."""
  default = config_lib.flat_dict(config_lib.Config())
  changed = {k: v for k, v in config_lib.flat_dict(cfg).items() if default[k] != v}
  return ' '.join(f'--{k}={",".join(v) if isinstance(v, tuple) else v}'
                  for k, v in changed.items()) or '(defaults)'

