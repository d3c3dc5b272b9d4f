r"""Zero-shot blind super-resolution with IKE.

  python -m ike_jax.main --image=photo.png --scale=2 --output_dir=out
  python -m ike_jax.main --image=photo.png --flagfile=flags/demo.flags --hr=hr.png

Flags given after a `--flagfile` override it. Every field of
`ike_jax.config.Config` is a flag of the same name.
"""

import sys

from absl import app
from absl import flags

from ike_jax import errors
from ike_jax import presets

presets.define_config_flags(flags.FLAGS)
flags.DEFINE_string('image', None, 'The low-resolution input image.')
flags.DEFINE_string('hr', None, 'Optional ground-truth HR image: PSNR/SSIM are reported.')
flags.DEFINE_string('kernel', None, 'Optional true kernel (.npy or .mat): the kernel error is reported.')
flags.DEFINE_string('output_dir', 'out', 'Where outputs are written.')
flags.DEFINE_bool('overwrite', False, 'Replace existing outputs.')
FLAGS = flags.FLAGS


def config_from_flags():
  return presets.config_from_flag_values(FLAGS)


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  from ike_jax import run  # pylint: disable=g-import-not-at-top  (JAX after flag checks)
  cfg = config_from_flags()
  if not FLAGS.image:
    raise errors.UserError('--image is required (the low-resolution input)')
  results = run.super_resolve_files(
      [run.Job(FLAGS.image, FLAGS.hr, FLAGS.kernel)], cfg, FLAGS.output_dir,
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
