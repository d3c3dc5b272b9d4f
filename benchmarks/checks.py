"""One-line errors for the benchmarks' flags (the family benchmarks'
`blind_families`, `blind_tuning`, `blind_estimators`, `solvers` share the
first three; `blind_families` also `hr_size`; it, `cli_families` and
`solvers` `kernel_sets`; the timing ones use `numbers`): a scale, family,
crop position, kernel set or number they cannot use stops the run before
anything is measured, as a one-line `errors.UserError` naming it."""

from benchmarks import datasets
from benchmarks import families as families_lib
from ike_jax import errors

VARIANTS = ('', '+noise', '+readnoise', '+jpeg', families_lib.FIXED_NOISE, families_lib.LIGHT)


def scale(value):
  if value not in datasets.SCALES:
    raise errors.UserError(f'--scale must be 2 or 4, got {value}')


def families(names):
  """Every name a family `families.degrade` knows: a kernel family, a
  resampler, a published set, a non-linear filter or a camera check, with a
  noise variant (not for the non-linear filters and camera checks)."""
  bases = (set(families_lib.KERNELS) | set(families_lib.RESAMPLERS)
           | set(families_lib.PUBLISHED))
  bad = []
  for name in names:
    base = name.split('+')[0]
    variant = name[len(base):]
    if not ((base in bases and variant in VARIANTS) or
            (base in families_lib.NONLINEAR + families_lib.CAMERA and not variant)):
      bad.append(name)
  if bad:
    raise errors.UserError(f'--families: no {", ".join(bad)}; there are '
                           f'{", ".join(sorted(bases))}, each also with '
                           f'{", ".join(v for v in VARIANTS if v)}, and '
                           f'{", ".join(families_lib.NONLINEAR + families_lib.CAMERA)}')


def positions(values):
  """Crop positions (`families.crop`): 0 the centre, 1-4 the quadrants."""
  bad = [v for v in values if v not in ('0', '1', '2', '3', '4')]
  if bad:
    raise errors.UserError(f'--positions: no {", ".join(bad)}; there are 0 (the centre) to 4')


def hr_size(value, scale_, ranges):
  """An HR crop side: a multiple of the scale, at most the shorter side of the
  smallest photo in `ranges` (`datasets.indices`), so that every crop is
  whole. None (the family's default side) passes."""
  if value is None:
    return
  names = list(datasets.OFFLINE_IMAGES)
  smallest = min(min(datasets.OFFLINE_IMAGES[names[i]]().shape[:2])
                 for i in datasets.indices(ranges))
  if not (0 < value <= smallest and value % scale_ == 0):
    raise errors.UserError(f'--hr_size must be a multiple of {scale_} up to {smallest} (the '
                           f'smallest of these photos), got {value}')


def numbers(flag, values, kind=float):
  """`values` as `kind` (float or int), or an error naming --flag and what is
  not such a number."""
  try:
    return [kind(v) for v in values]
  except ValueError:
    what = 'whole numbers' if kind is int else 'numbers'
    raise errors.UserError(f'--{flag}: not {what}: {", ".join(values)}') from None


def define_kernel_set_flags():
  """--levin_kernels and --usrnet_kernels, the files of the report-only
  published families (`kernel_sets`; `benchmarks/kernel_sets.py` writes them)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('levin_kernels', None, "Levin et al.'s eight kernels, (8, K, K) .npy, for "
                      "the report-only family 'levin' (docs/method.md, \"Degradation families\").")
  flags.DEFINE_string('usrnet_kernels', None, "USRNet's twelve kernels, (12, K, K) .npy, for the "
                      "report-only family 'usrnet' (docs/method.md, \"Degradation families\").")


def kernel_set_paths():
  """{'levin': --levin_kernels, 'usrnet': --usrnet_kernels} (`define_kernel_set_flags`)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  return {name: getattr(flags.FLAGS, f'{name}_kernels') for name in families_lib.PUBLISHED}


def kernel_sets(names, images, paths):
  """The report-only families' conditions: published kernel sets and camera
  checks only on the report photos (`images` 'report'), and each published
  set in `names` read from its path (`paths`: {'levin': path or None, ...},
  `kernel_set_paths`; `families.use_kernel_set`)."""
  report_only = (set(families_lib.PUBLISHED) | set(families_lib.CAMERA)) & set(names)
  if images != 'report' and report_only:
    raise errors.UserError(f'{", ".join(sorted(report_only))}: published kernel sets and '
                           'camera checks are report only')
  for name in families_lib.PUBLISHED:
    path = paths.get(name)
    if path:
      try:
        families_lib.use_kernel_set(name, path)
      except (OSError, ValueError, EOFError, AttributeError) as e:  # .npz: AttributeError
        raise errors.UserError(f'--{name}_kernels: {e}') from None
    elif name in names:
      raise errors.UserError(f'family {name!r} needs --{name}_kernels')
