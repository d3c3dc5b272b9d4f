"""Everything a run writes to disk, written atomically.

Each file is written to a temporary file in the same directory, flushed and
fsynced, then moved into place with `os.replace`, so a reader (or a crash)
never sees a partial file. Whether an existing output may be replaced is
decided once, up front, by `OutputDir.claim`.

Pictures use matplotlib's `Figure` and `FigureCanvasAgg` directly (never
pyplot), so the user's global matplotlib backend is left alone.
"""

import io
import json
import math
import os
import secrets
from typing import Any, Iterable, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ike_jax.errors import OutputError
from ike_jax.errors import one_line


def _open_temp(directory: str, base: str) -> tuple[int, str]:
  """Creates and opens a new hidden temporary file next to the target."""
  while True:
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
    try:
      # Mode 0o666 so the kernel applies the user's umask, as for open().
      return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
    except FileExistsError:
      continue


def _fsync_dir(directory: str) -> None:
  """Makes a rename durable; best effort, as not every platform allows it."""
  try:
    fd = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically; raises OutputError on failure."""
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  tmp = None
  try:
    fd, tmp = _open_temp(directory, os.path.basename(path))
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
    tmp = None
  except OSError as err:
    raise OutputError(f"cannot write {path}: {one_line(err)}") from err
  finally:
    if tmp is not None:
      try:
        os.unlink(tmp)
      except OSError:
        pass
  _fsync_dir(directory)


class OutputDir:
  """A directory of run outputs and the policy for replacing earlier ones."""

  def __init__(self, path: str | os.PathLike, overwrite: bool):
    self.path = os.fspath(path)
    self.overwrite = overwrite

  def __repr__(self) -> str:
    return f"OutputDir({self.path!r}, overwrite={self.overwrite})"

  def check_writable(self) -> None:
    """Creates the directory if needed and proves a file can be written."""
    if os.path.lexists(self.path) and not os.path.isdir(self.path):
      raise OutputError(f"output directory {self.path} exists and is not a directory")
    try:
      os.makedirs(self.path, exist_ok=True)
    except OSError as err:
      raise OutputError(f"cannot create output directory {self.path}: "
                        f"{one_line(err)}") from err
    try:
      fd, tmp = _open_temp(self.path, "write-check")
      os.close(fd)
      os.unlink(tmp)
    except OSError as err:
      raise OutputError(f"cannot write to output directory {self.path}: "
                        f"{one_line(err)}") from err

  def path_for(self, name: str) -> str:
    """The path of output `name`, which must stay inside the directory."""
    norm = os.path.normpath(name)
    if (os.path.isabs(norm) or norm in (os.curdir, os.pardir) or
        norm.startswith(os.pardir + os.sep)):
      raise ValueError(f"output name {name!r} is not inside the directory")
    return os.path.join(self.path, norm)

  def claim(self, names: Iterable[str], owner: str | None = None) -> None:
    """Fails if an output already exists and overwriting was not allowed.

    With `owner` (the input the names are the outputs of, none of them
    complete), the error says they are part of an interrupted write and how
    to make them again without redoing the other inputs' outputs.
    """
    if self.overwrite:
      return
    names = list(names)
    there = [n for n in names if os.path.lexists(self.path_for(n))]
    if not there:
      return
    if owner is None:
      raise OutputError(f"{self.path_for(there[0])} exists; pass --overwrite to replace it")
    shown = ", ".join(sorted(there)[:2]) + (", ..." if len(there) > 2 else "")
    raise OutputError(
        f"{owner}: {len(there)} of its {len(names)} outputs are in {self.path} ({shown}) "
        "but not all (a run stopped while writing them?): delete those to make them "
        "again, or pass --overwrite to replace every output")

  def is_complete(self, names: Iterable[str]) -> bool:
    """Whether every named output exists as a non-empty file."""
    for name in names:
      path = self.path_for(name)
      if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return False
    return True


def _as_uint8_image(img: Any) -> np.ndarray:
  """Checks and returns an HxW or HxWxC (C in 1, 3, 4) uint8 array."""
  arr = np.asarray(img)
  if arr.dtype != np.uint8:
    raise ValueError(f"expected a uint8 image, got dtype {arr.dtype}")
  if arr.ndim == 3 and arr.shape[2] == 1:
    arr = arr[:, :, 0]
  if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got {arr.shape}")
  if arr.shape[0] == 0 or arr.shape[1] == 0:
    raise ValueError(f"image is empty: {arr.shape}")
  return np.ascontiguousarray(arr)


# Pixels above which a PNG is written with zlib level 1, not PIL's 6: on a
# 5.5-megapixel photo level 6 took 1.5 s against 0.5 s, for 4% fewer bytes.
FAST_PNG_PIXELS = 2_000_000


def write_png(path: str | os.PathLike, img_u8: Any) -> None:
  """Writes an HxW or HxWx3 (or x4) uint8 image as a lossless PNG."""
  buf = io.BytesIO()
  img = _as_uint8_image(img_u8)
  level = 1 if img.shape[0] * img.shape[1] > FAST_PNG_PIXELS else 6
  Image.fromarray(img).save(buf, format="PNG", compress_level=level)
  write_bytes_atomic(path, buf.getvalue())


def jsonable(obj: Any) -> Any:
  """Converts numpy/jax values to plain Python; non-finite floats to None."""
  if isinstance(obj, dict):
    return {str(k.item() if isinstance(k, np.generic) else k): jsonable(v)
            for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v) for v in obj]
  if isinstance(obj, (str, bool, int)) or obj is None:
    return obj
  if isinstance(obj, float):
    return obj if math.isfinite(obj) else None
  if isinstance(obj, np.generic):
    return jsonable(obj.item())
  if isinstance(obj, os.PathLike):
    return os.fspath(obj)
  if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):
    # Covers jax arrays without importing jax here.
    return jsonable(np.asarray(obj).tolist())
  raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes `obj` as JSON: indent 2, sorted keys, newline-terminated.

  numpy scalars and arrays and jax arrays become numbers and lists. NaN and
  +-inf become `null`, so the file stays strict JSON that any parser reads.
  """
  text = json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=False)
  write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def write_npy(path: str | os.PathLike, array: Any) -> None:
  """Writes an array (numpy or jax) in .npy format, without pickling."""
  buf = io.BytesIO()
  np.save(buf, np.asarray(array), allow_pickle=False)
  write_bytes_atomic(path, buf.getvalue())


def _resize_nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
  """Nearest-neighbour resize; integer up-scales repeat pixels exactly."""
  h, w = img.shape[:2]
  if (h, w) == (height, width):
    return img
  rows = np.arange(height) * h // height
  cols = np.arange(width) * w // width
  return img[rows[:, None], cols[None, :]]


def _caption_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
  try:
    return ImageFont.load_default(size=size)
  except (TypeError, OSError):  # Old Pillow or no FreeType: bitmap font.
    return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
  """Shortens `text` with '...' until it fits in `width` pixels."""
  if draw.textlength(text, font=font) <= width:
    return text
  while text and draw.textlength(text + "...", font=font) > width:
    text = text[:-1]
  return text + "..."


def compare_image(panels: Sequence[tuple[str, Any]],
                  gap: int = 4) -> np.ndarray:
  """Places captioned images side by side for comparison.

  Every panel is resized (nearest neighbour) to the size of the largest one,
  so an LR or bicubic panel lines up pixel for pixel with SR and HR. Each gets
  its title in a white strip above it.

  Args:
    panels: (title, uint8 HxWx3 or HxW image) pairs, left to right.
    gap: white pixels between neighbouring panels.

  Returns:
    A uint8 (strip + H) x (n * W + (n - 1) * gap) x 3 image.
  """
  if not panels:
    raise ValueError("compare_image needs at least one panel")
  images = []
  for _, img in panels:
    arr = _as_uint8_image(img)
    if arr.ndim == 2:
      arr = np.repeat(arr[:, :, None], 3, axis=2)
    images.append(arr[:, :, :3])
  height, width = max((a.shape[:2] for a in images), key=lambda s: s[0] * s[1])
  font = _caption_font(max(11, min(28, width // 20)))
  ascent, descent = font.getmetrics()
  pad = max(3, (ascent + descent) // 4)
  strip = ascent + descent + 2 * pad

  n = len(images)
  canvas = np.full((strip + height, n * width + (n - 1) * gap, 3), 255,
                   np.uint8)
  for i, arr in enumerate(images):
    x = i * (width + gap)
    canvas[strip:, x:x + width] = _resize_nearest(arr, height, width)
  out = Image.fromarray(canvas)
  draw = ImageDraw.Draw(out)
  for i, (title, _) in enumerate(panels):
    text = _fit_text(draw, str(title), font, width - 2 * pad)
    draw.text((i * (width + gap) + pad, pad), text, fill=(0, 0, 0), font=font)
  return np.asarray(out)


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
  """Renders a matplotlib `Figure` (Agg, 100 dpi) to a PNG file atomically."""
  FigureCanvasAgg(fig)
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=100)
  write_bytes_atomic(path, buf.getvalue())


def loss_curves_png(path: str | os.PathLike,
                    history: dict[str, Sequence[float]],
                    steps: Sequence[int]) -> None:
  """Plots each loss in `history` against `steps`, one subplot per loss.

  A loss whose finite values are all positive gets a log y axis. NaN and inf
  values are left as gaps.
  """
  keys = list(history)
  ncols = max(1, min(3, len(keys)))
  nrows = max(1, math.ceil(len(keys) / ncols))
  fig = Figure(figsize=(4.5 * ncols, 3.2 * nrows), layout="constrained")
  if not keys:
    ax = fig.add_subplot(1, 1, 1)
    ax.text(0.5, 0.5, "no losses recorded", ha="center", va="center")
    ax.set_axis_off()
  x = np.asarray(steps)
  for i, key in enumerate(keys):
    y = np.asarray(history[key], dtype=np.float64)
    if y.shape != x.shape:
      raise ValueError(f"loss {key!r} has {y.size} values for {x.size} steps")
    y = np.where(np.isfinite(y), y, np.nan)
    ax = fig.add_subplot(nrows, ncols, i + 1)
    ax.plot(x, y, linewidth=1.2)
    finite = y[np.isfinite(y)]
    if finite.size and (finite > 0).all():
      ax.set_yscale("log")
    ax.set_title(key)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
  save_figure(fig, path)


def kernel_png(path: str | os.PathLike,
               kernels: Sequence[tuple[str, Any]]) -> None:
  """Shows 2-D kernels side by side, each with its own colour bar."""
  if not kernels:
    raise ValueError("kernel_png needs at least one kernel")
  fig = Figure(figsize=(3.6 * len(kernels), 3.2), layout="constrained")
  for i, (title, kernel) in enumerate(kernels):
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2:
      raise ValueError(f"kernel {title!r} is not 2-D: shape {k.shape}")
    ax = fig.add_subplot(1, len(kernels), i + 1)
    im = ax.imshow(k, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
  save_figure(fig, path)

