r"""Zero-shot blind super-resolution with IKE.

  python -m ike_jax.main --image=photo.png --scale=2 --output_dir=out
  python -m ike_jax.main --image=photo.png --flagfile=flags/demo.flags --hr=hr.png

Flags given after a `--flagfile` override it. Every field of
`ike_jax.config.Config` is a flag of the same name.
"""

import dataclasses
import sys

from absl import app
from absl import flags

from ike_jax import config as config_lib
from ike_jax import errors

_HELP = {
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
    'metrics_every': 'Fetch metrics and print progress every N steps.',
}


def _define_config_flags():
  """One absl flag per Config field, with the field's default and type."""
  for field in dataclasses.fields(config_lib.Config):
    help_text = _HELP.get(field.name, field.name.replace('_', ' ') + '.')
    default = field.default
    if isinstance(default, bool):
      flags.DEFINE_bool(field.name, default, help_text)
    elif isinstance(default, int):
      flags.DEFINE_integer(field.name, default, help_text)
    elif isinstance(default, float):
      flags.DEFINE_float(field.name, default, help_text)
    elif isinstance(default, tuple):
      flags.DEFINE_list(field.name, list(default), help_text)
    else:
      flags.DEFINE_string(field.name, default, help_text)


_define_config_flags()
flags.DEFINE_string('image', None, 'The low-resolution input image.')
flags.DEFINE_string('hr', None, 'Optional ground-truth HR image: PSNR/SSIM are reported.')
flags.DEFINE_string('output_dir', 'out', 'Where outputs are written.')
flags.DEFINE_bool('overwrite', False, 'Replace existing outputs.')
FLAGS = flags.FLAGS


def config_from_flags():
  values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(config_lib.Config)}
  values['losses'] = tuple(v for v in values['losses'] if v)
  return config_lib.Config(**values)


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  from ike_jax import run  # pylint: disable=g-import-not-at-top  (JAX after flag checks)
  cfg = config_from_flags()
  if not FLAGS.image:
    raise errors.UserError('--image is required (the low-resolution input)')
  results = run.super_resolve_files(
      [run.Job(FLAGS.image, FLAGS.hr)], cfg, FLAGS.output_dir,
      overwrite=FLAGS.overwrite, log=lambda m: print(m, flush=True))
  for result in results:
    print(run.format_result(result))
  return 0 if all(r['status'] == 'ok' for r in results) else 1


def entry():
  """Runs `main`; a user error is one line on stderr and exit status 2."""
  try:
    app.run(main)
  except errors.UserError as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    sys.exit(130)


if __name__ == '__main__':
  entry()
