"""Tests for ike_jax.outputs: atomic writes, overwrite policy, pictures."""

import json
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from benchmarks import plots
from ike_jax import outputs
from ike_jax.errors import OutputError


def _rand_image(h, w, c=3, seed=0):
  rng = np.random.default_rng(seed)
  shape = (h, w, c) if c else (h, w)
  return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _check_png(path):
  assert os.path.getsize(path) > 0
  img = iio.imread(path)
  assert img.ndim == 3 and img.shape[2] in (3, 4)
  assert img.shape[0] > 0 and img.shape[1] > 0
  return img


# Atomic writes.


def test_write_bytes_atomic_leaves_no_temp_file(tmp_path):
  path = tmp_path / "a.bin"
  outputs.write_bytes_atomic(path, b"hello")
  assert path.read_bytes() == b"hello"
  outputs.write_bytes_atomic(path, b"world!")
  assert path.read_bytes() == b"world!"
  assert os.listdir(tmp_path) == ["a.bin"]


def test_failed_replace_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
  path = tmp_path / "a.bin"
  path.write_bytes(b"old bytes")

  def failing_replace(src, dst):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, "replace", failing_replace)
  with pytest.raises(OutputError) as info:
    outputs.write_bytes_atomic(path, b"new bytes that never land")
  assert "\n" not in str(info.value)
  assert path.read_bytes() == b"old bytes"
  assert os.listdir(tmp_path) == ["a.bin"]


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
  def failing_replace(src, dst):
    raise OSError(5, "Input/output error")

  monkeypatch.setattr(os, "replace", failing_replace)
  with pytest.raises(OutputError):
    outputs.write_json(tmp_path / "m.json", {"a": 1})
  assert os.listdir(tmp_path) == []


# OutputDir.


def test_check_writable_creates_nested_directory(tmp_path):
  out = outputs.OutputDir(tmp_path / "x" / "y", overwrite=False)
  out.check_writable()
  assert os.path.isdir(tmp_path / "x" / "y")
  assert os.listdir(tmp_path / "x" / "y") == []


def test_check_writable_under_a_file_is_one_line_error(tmp_path):
  blocker = tmp_path / "file.txt"
  blocker.write_text("not a directory")
  out = outputs.OutputDir(blocker / "run", overwrite=True)
  with pytest.raises(OutputError) as info:
    out.check_writable()
  msg = str(info.value)
  assert "\n" not in msg and str(blocker / "run") in msg


def test_check_writable_on_a_file_path_fails(tmp_path):
  blocker = tmp_path / "file.txt"
  blocker.write_text("x")
  with pytest.raises(OutputError):
    outputs.OutputDir(blocker, overwrite=False).check_writable()


def test_claim_refuses_existing_unless_overwrite(tmp_path):
  (tmp_path / "sr.png").write_bytes(b"x")
  out = outputs.OutputDir(tmp_path, overwrite=False)
  out.claim(["other.png"])
  with pytest.raises(OutputError) as info:
    out.claim(["other.png", "sr.png"])
  assert str(info.value) == (
      f"{tmp_path / 'sr.png'} exists; pass --overwrite to replace it")
  outputs.OutputDir(tmp_path, overwrite=True).claim(["sr.png"])
  # An input's own outputs, partly there: named as an interrupted write.
  with pytest.raises(OutputError, match=r"in\.png: 1 of its 2 outputs .* but not all"):
    out.claim(["sr.png", "metrics.json"], owner="in.png")
  outputs.OutputDir(tmp_path, overwrite=True).claim(["sr.png"], owner="in.png")


def test_path_for_and_is_complete(tmp_path):
  out = outputs.OutputDir(tmp_path, overwrite=False)
  assert out.path_for("sr.png") == os.path.join(str(tmp_path), "sr.png")
  with pytest.raises(ValueError):
    out.path_for("../escape.png")
  with pytest.raises(ValueError):
    out.path_for("/abs.png")
  assert not out.is_complete(["a.json", "b.json"])
  outputs.write_json(out.path_for("a.json"), {})
  (tmp_path / "b.json").write_bytes(b"")
  assert not out.is_complete(["a.json", "b.json"])
  outputs.write_json(out.path_for("b.json"), [])
  assert out.is_complete(["a.json", "b.json"])


# Data files.


def test_write_png_round_trips_exactly(tmp_path):
  for c in (3, 0, 4):
    img = _rand_image(17, 23, c, seed=c)
    path = tmp_path / f"img{c}.png"
    outputs.write_png(path, img)
    np.testing.assert_array_equal(iio.imread(path), img)


def test_write_png_rejects_float(tmp_path):
  with pytest.raises(ValueError):
    outputs.write_png(tmp_path / "f.png", np.zeros((4, 4, 3), np.float32))


def test_write_json_numpy_and_nonfinite(tmp_path):
  path = tmp_path / "m.json"
  outputs.write_json(path, {
      "b": np.float32(1.5), "a": np.arange(3), "n": float("nan"),
      "inf": np.array([1.0, np.inf, -np.inf]), "ok": np.bool_(True),
      "nested": ({"i": np.int64(7)},)})
  text = path.read_text()
  assert text.endswith("\n") and "NaN" not in text and "Infinity" not in text
  assert json.loads(text) == {
      "a": [0, 1, 2], "b": 1.5, "inf": [1.0, None, None], "n": None,
      "nested": [{"i": 7}], "ok": True}
  keys = [line.split('"')[1] for line in text.splitlines()
          if line.startswith('  "')]
  assert keys == sorted(keys)


def test_write_json_jax_array(tmp_path):
  jnp = pytest.importorskip("jax.numpy")
  path = tmp_path / "j.json"
  outputs.write_json(path, {"x": jnp.array([1.0, 2.0]), "s": jnp.float32(3)})
  assert json.loads(path.read_text()) == {"x": [1.0, 2.0], "s": 3.0}


def test_write_npy_round_trips(tmp_path):
  arr = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
  outputs.write_npy(tmp_path / "k.npy", arr)
  np.testing.assert_array_equal(np.load(tmp_path / "k.npy"), arr)


# Pictures.


def test_compare_image_sizes_and_nearest_upscale():
  lr = _rand_image(8, 10, seed=1)
  sr = _rand_image(32, 40, seed=2)
  hr = _rand_image(32, 40, 0, seed=3)
  gap = 4
  out = outputs.compare_image(
      [("LR", lr), ("IKE 31.20 dB", sr), ("HR", hr)], gap=gap)
  assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
  assert out.shape[1] == 3 * 40 + 2 * gap
  strip = out.shape[0] - 32
  assert strip > 0
  np.testing.assert_array_equal(out[strip:, :40],
                                np.repeat(np.repeat(lr, 4, 0), 4, 1))
  np.testing.assert_array_equal(out[strip:, 44:84], sr)
  np.testing.assert_array_equal(out[strip:, 88:128, 0], hr)
  # Caption strip holds some dark text pixels.
  assert (out[:strip] < 128).any()


def test_compare_image_long_title_and_no_gap():
  img = _rand_image(12, 12)
  out = outputs.compare_image([("a very long title " * 5, img), ("b", img)],
                              gap=0)
  assert out.shape[1] == 24
  # The long caption is cut to its panel: both pictures sit whole under the strip.
  np.testing.assert_array_equal(out[-12:, :12], img)
  np.testing.assert_array_equal(out[-12:, 12:], img)


def test_loss_curves_png(tmp_path):
  path = tmp_path / "loss.png"
  steps = list(range(0, 100, 10))
  outputs.loss_curves_png(path, {
      "total": [1.0 / (s + 1) for s in steps],
      "signed": [float(s - 50) for s in steps],
      "with_nan": [float("nan")] + [1.0] * 9}, steps)
  _check_png(path)
  assert os.listdir(tmp_path) == ["loss.png"]


def test_loss_curves_png_length_mismatch(tmp_path):
  with pytest.raises(ValueError):
    outputs.loss_curves_png(tmp_path / "l.png", {"a": [1.0, 2.0]}, [0])


def test_kernel_png(tmp_path):
  path = tmp_path / "kernel.png"
  g = np.exp(-np.linspace(-2, 2, 13) ** 2)
  k = np.outer(g, g)
  outputs.kernel_png(path, [("estimated", k / k.sum()), ("true", k.T)])
  _check_png(path)


def test_gain_bar_png(tmp_path):
  path = tmp_path / "gain.png"
  plots.gain_bar_png(path, ["baby", "bird", "butterfly"], [0.8, -0.2, 1.5])
  _check_png(path)
  with pytest.raises(ValueError):
    plots.gain_bar_png(path, ["a"], [1.0, 2.0])


def test_family_gains_png(tmp_path):
  """Per family the mean of each series with its images as dots; a family a
  series did not measure (NaN, e.g. no true kernel for a filter) is left out;
  a series with a group too few is refused."""
  path = tmp_path / "families.png"
  plots.family_gains_png(path, ["shake", "median"],
                         {"best": [[0.1, -0.2], [-1.0, -2.0]], "blind": [[0.5, 1.0], [0.0, 0.0]],
                          "true kernel": [[9.0, 8.0], [np.nan, np.nan]]}, "gains")
  _check_png(path)
  with pytest.raises(ValueError, match="1 groups for 2 families"):
    plots.family_gains_png(path, ["shake", "median"], {"best": [[0.1]]}, "gains")


def test_pictures_do_not_load_pyplot(tmp_path):
  png = str(tmp_path / "k.png")
  code = ("import sys, numpy as np\n"
          "from ike_jax import outputs\n"
          f"outputs.kernel_png({png!r}, [('k', np.eye(3))])\n"
          "assert 'matplotlib.pyplot' not in sys.modules\n")
  subprocess.run([sys.executable, "-c", code], check=True,
                 cwd=os.path.dirname(os.path.dirname(__file__)))
  _check_png(tmp_path / "k.png")
