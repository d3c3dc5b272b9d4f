"""Errors a user can cause, reported as one line and exit status 2 by `main`."""


class UserError(ValueError):
  """Bad input or flags. `str(err)` is a one-line message meant for a person."""


class InputError(UserError):
  """An input image that cannot be read or used."""


class OutputError(UserError):
  """An output that cannot be written (or would overwrite an earlier one)."""


class Interrupted(Exception):
  """A run stopped by SIGINT/SIGTERM after saving a checkpoint (exit 130)."""


def one_line(err: BaseException) -> str:
  """`err` as a short single line for a user-facing message.

  An OSError with an errno gives its `strerror` alone (callers name the path
  themselves); anything else gives `str(err)`. Runs of whitespace (multi-line
  PIL messages) collapse to one space; an empty message gives the type's name.
  """
  text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
  return ' '.join(str(text).split()) or type(err).__name__
