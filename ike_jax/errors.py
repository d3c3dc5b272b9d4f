"""Errors a user can cause, reported as one line and exit status 2 by `main`."""


class UserError(ValueError):
  """Bad input or flags. `str(err)` is a one-line message meant for a person."""


class InputError(UserError):
  """An input image that cannot be read or used."""


class OutputError(UserError):
  """An output that cannot be written (or would overwrite an earlier one)."""


class Interrupted(Exception):
  """A run stopped by SIGINT/SIGTERM after saving a checkpoint (exit 130)."""
