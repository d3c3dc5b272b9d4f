r"""Zero-shot blind super-resolution with IKE: flags in, `pipeline` out.

  ike-jax --image=photo.png --preset=blind_x2 --output_dir=out  # unknown blur, 2x (x4: blind_x4)
  ike-jax --image=photo.png --preset=best_x2 --output_dir=out   # Gaussian-like blur
  ike-jax --input_dir=photos/ --hr_dir=hr/ --preset=blind_x2    # many images, scored
  ike-jax --image=photo.png --scale=2 --hr=hr.png               # the paper's method

Flags after a `--preset` or `--flagfile` override it. Every field of
`ike_jax.config.Config` is a flag of the same name (`--helpfull`).
"""

import glob
import os
import sys

from absl import flags
from absl import logging

from ike_jax import cli
from ike_jax import data
from ike_jax import errors
from ike_jax import presets

presets.define_config_flags(flags.FLAGS, module_name='ike_jax.config')
flags.DEFINE_string('image', None, 'The low-resolution input image.')
flags.DEFINE_string('preset', None, 'A preset from flags/ (later flags override it): blind_x2 / '
                    'blind_x4 for an unknown blur, best_x2 / best_x4 for a Gaussian-like one, '
                    f'or any of {", ".join(presets.preset_names())}. Default: the paper '
                    'method at x2 (3000 steps: over an hour on 2 CPU cores, and on par with '
                    'bicubic there).')
flags.DEFINE_string('images', None, 'Many inputs: a glob or a comma list (on an accelerator '
                    'they train together: --batch_size).')
flags.DEFINE_string('input_dir', None, 'Many inputs: every image file in this directory.')
flags.DEFINE_string('hr', None, 'Optional ground-truth HR image: PSNR/SSIM are reported.')
flags.DEFINE_string('hr_dir', None, 'With many inputs: HR images with the same file stems.')
flags.DEFINE_string('kernel', None, 'Optional true kernel (.npy or .mat): the kernel error is reported.')
flags.DEFINE_bool('linear_light', False, "The photos' blur acted on light, before the camera "
                  'encoded them (a lens, a shaking hand; not a resizer): the kernel is estimated '
                  'and the photo deblurred in linear light, and the SR image encoded again as sRGB '
                  "(the blind presets' choice without its second chance).")
flags.DEFINE_string('output_dir', 'out', 'Where outputs are written. A rerun into it skips the '
                    'images whose outputs are complete (made from the same inputs with the '
                    'same settings; other settings are refused) and writes the rest.')
flags.DEFINE_bool('overwrite', False, 'Replace existing outputs instead of skipping or refusing.')
flags.DEFINE_integer('batch_size', 0, 'Images trained at once (memory); the rest queue. '
                     '0: all on an accelerator, 1 on a CPU or where nothing trains.')
flags.DEFINE_integer('tile', 0, "G's inverse: inference tile side in LR pixels (bounded memory); "
                     '0: whole image.')
flags.DEFINE_float('max_memory_gb', 0.0, 'Bound on the SR stage\'s peak memory: the Fourier '
                   'solver\'s windows shrink to fit, or a one-line error says the photo cannot '
                   '(the gradient solver: whether the whole photo fits); 0: no bound, windows '
                   'of 512 LR px.')
flags.DEFINE_integer('checkpoint_every', 0, 'Save a checkpoint every N steps (always on SIGINT/SIGTERM).')
flags.DEFINE_bool('resume', False, 'Continue from the checkpoint of an interrupted run.')
flags.DEFINE_string('compilation_cache_dir', None, 'Persistent XLA compilation cache: a later '
                    'run with the same settings and image sizes skips compiling (every program '
                    f'is kept, however quick to compile; at most {cli.CACHE_MAX_BYTES >> 30} GiB, '
                    'the least recently used dropped). Default: $JAX_COMPILATION_CACHE_DIR, '
                    'else $XDG_CACHE_HOME/ike_jax/xla (~/.cache/ike_jax/xla); "" turns it off.')
flags.DEFINE_bool('distributed', False, 'Multi-host: call jax.distributed.initialize(); each '
                  'process trains a disjoint share of the images.')
for _name in ('scale', 'iterations', 'seed'):  # in --helpshort beside this module's flags
  flags.declare_key_flag(_name)
FLAGS = flags.FLAGS

HELP_FLAGS = ('help', 'helpshort', 'helpfull', 'helpxml', '?', 'h')


def config_from_flags():
  return presets.config_from_flag_values(FLAGS)


def input_paths():
  """The LR inputs named by --image, --images or --input_dir (exactly one)."""
  given = [n for n in ('image', 'images', 'input_dir') if FLAGS[n].value]
  if len(given) != 1:
    raise errors.UserError('give exactly one of --image, --images, --input_dir'
                           + (f' (got {", ".join("--" + g for g in given)})' if given else ''))
  if FLAGS.image:
    return [FLAGS.image]
  if FLAGS.input_dir:
    if not os.path.isdir(FLAGS.input_dir):
      raise errors.UserError(f'{FLAGS.input_dir}: not a directory (--input_dir)')
    paths = sorted(os.path.join(FLAGS.input_dir, f) for f in os.listdir(FLAGS.input_dir)
                   if f.lower().endswith(data.IMAGE_EXTENSIONS))
  else:
    paths = []
    for part in filter(None, (p.strip() for p in FLAGS.images.split(','))):
      matches = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
      paths += matches
  if not paths:
    raise errors.UserError('no input images found')
  return paths


def _hr_for(path, hr_files):
  """The HR image of an LR input: --hr, or its stem's file in --hr_dir
  (`hr_files`, `data.image_files` of it, read once per run), or None."""
  if FLAGS.hr:
    return FLAGS.hr
  return hr_files.get(os.path.splitext(os.path.basename(path))[0])


def main(argv):
  logging.set_verbosity(logging.WARNING)  # keep JAX's and orbax's INFO lines out
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  paths = input_paths()
  if FLAGS.max_memory_gb < 0:
    raise errors.UserError(f'--max_memory_gb must be >= 0, got {FLAGS.max_memory_gb:g}')
  for name in ('batch_size', 'tile', 'checkpoint_every'):
    if FLAGS[name].value < 0:
      raise errors.UserError(f'--{name} must be >= 0, got {FLAGS[name].value}')
  if len(paths) > 1 and (FLAGS.hr or FLAGS.kernel):
    raise errors.UserError('--hr and --kernel name one image; with many inputs use --hr_dir')
  if FLAGS.hr_dir and not os.path.isdir(FLAGS.hr_dir):
    raise errors.UserError(f'--hr_dir={FLAGS.hr_dir}: no such folder')
  # Before anything compiles: JAX fixes its cache at the first compilation.
  cli.use_compilation_cache(FLAGS.compilation_cache_dir)
  from ike_jax import pipeline  # pylint: disable=g-import-not-at-top  (JAX after flag checks)
  cfg = config_from_flags()
  index, count = 0, 1
  if FLAGS.distributed:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.initialize()
    index, count = jax.process_index(), jax.process_count()
  batch_size = FLAGS.batch_size
  from ike_jax import estimators  # pylint: disable=g-import-not-at-top
  if not batch_size and len(paths) > 1:
    import jax  # pylint: disable=g-import-not-at-top
    if not estimators.of(cfg).TRAINS:
      batch_size = 1  # nothing trains together: each image is written as soon as it is done
    elif jax.default_backend() == 'cpu':
      # Measured (benchmarks/RESULTS.md, throughput): on a CPU, XLA's grouped
      # convolutions make a vmapped batch slower per image than one at a time.
      batch_size = 1
      print('CPU: training one image at a time (--batch_size sets it)', flush=True)
  options = pipeline.Options(overwrite=FLAGS.overwrite, batch_size=batch_size, tile=FLAGS.tile,
                             max_memory_gb=FLAGS.max_memory_gb,
                             checkpoint_every=FLAGS.checkpoint_every, resume=FLAGS.resume,
                             process_index=index, process_count=count)
  hr_files = data.image_files(FLAGS.hr_dir) if FLAGS.hr_dir else {}
  jobs = [pipeline.Job(p, _hr_for(p, hr_files), FLAGS.kernel, FLAGS.linear_light)
          for p in paths]
  unmatched = [job.lr_path for job in jobs if job.hr_path is None]
  if FLAGS.hr_dir and unmatched:
    print(f'warning: no HR image in {FLAGS.hr_dir} for {len(unmatched)} of {len(jobs)} inputs '
          f'(e.g. {os.path.basename(unmatched[0])}): they get no scores', flush=True)
  preset = f' (--preset={FLAGS.preset})' if FLAGS.preset else ''
  print(f'settings{preset}: {presets.config_summary(cfg)}', flush=True)
  results = pipeline.super_resolve_files(jobs, cfg, FLAGS.output_dir, options,
                                         log=lambda m: print(m, flush=True))
  from ike_jax import report  # pylint: disable=g-import-not-at-top
  if len(jobs) > 1 and count > 1:
    # Each process knows only its own share: a rerun in one process (which
    # skips every finished image and reports its stored scores) sums them up.
    print(f'process {index}: {len(results)} of {len(jobs)} images; run again without '
          '--distributed to write summary.json over all of them', flush=True)
  elif len(jobs) > 1:
    print(report.write_summary(FLAGS.output_dir, results))
  return 0 if all(r['status'] in ('ok', 'skipped') for r in results) else 1


def parse_flags(argv):
  """`app.run`'s flag parser: a bad flag is an `errors.UserError` (one line).

  absl's own parser prints usage text and exits with status 1 instead.
  """
  try:
    return FLAGS(presets.expand_presets(argv, FLAGS))
  except SystemExit:  # absl's --help, --helpshort, --helpfull exit 1 once printed
    if any(a.lstrip('-').split('=')[0] in HELP_FLAGS for a in argv[1:]):
      raise SystemExit(0) from None
    raise
  except flags.Error as err:
    message = ' '.join(str(err).split()).removeprefix('ERROR:: ')
    raise errors.UserError(f'{message} (see --helpshort)') from None


def entry():
  """Runs `main`: a user error is one line on stderr and exit status 2."""
  if __name__ != '__main__':
    # The `ike-jax` console script: absl's --helpshort lists the flags of the
    # module named by argv[0], the script, so name this module's flags there.
    for flag in FLAGS.get_key_flags_for_module(__name__):
      FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    # absl's help begins with the __main__ module's docstring: the script has none.
    sys.modules['__main__'].__doc__ = __doc__
  cli.run_app(main, flags_parser=parse_flags)


if __name__ == '__main__':
  entry()
