"""Running an absl program so that user errors are one line and exit status 2."""

import sys

from absl import app

from ike_jax import errors


def run_app(main_fn, flags_parser=None):
  """Runs `main_fn` with `app.run`; maps user errors and signals to exit codes."""
  try:
    if flags_parser is None:
      app.run(main_fn)
    else:
      app.run(main_fn, flags_parser=flags_parser)
  except errors.UserError as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(2)
  except errors.Interrupted as err:
    print(f'stopped: {err}', file=sys.stderr)
    sys.exit(130)
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    sys.exit(130)
