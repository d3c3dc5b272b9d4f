"""Benchmark pictures, drawn without pyplot and written atomically.

Like `ike_jax.outputs`, this uses matplotlib's `Figure` directly, so the
user's global matplotlib backend is left alone.
"""

import os
from typing import Sequence

from matplotlib.figure import Figure
import numpy as np

from ike_jax import outputs


def gain_bar_png(path: str | os.PathLike, names: Sequence[str],
                 gains_db: Sequence[float]) -> None:
  """Bar chart of per-image PSNR gain over bicubic, mean in the title."""
  gains = np.asarray(gains_db, dtype=np.float64).reshape(-1)
  if len(names) != gains.size:
    raise ValueError(f"{len(names)} names for {gains.size} gains")
  fig = Figure(figsize=(max(4.0, 0.5 * len(names) + 2.0), 3.6),
               layout="constrained")
  ax = fig.add_subplot(1, 1, 1)
  finite = gains[np.isfinite(gains)]
  if finite.size:
    title = f"PSNR gain over bicubic (mean {finite.mean():+.2f} dB)"
  else:
    title = "PSNR gain over bicubic (no values)"
  x = np.arange(gains.size)
  colors = ["tab:green" if g >= 0 else "tab:red" for g in gains]
  ax.bar(x, np.nan_to_num(gains, nan=0.0, posinf=0.0, neginf=0.0),
         color=colors)
  ax.axhline(0.0, color="black", linewidth=0.8)
  ax.set_xticks(x, [str(n) for n in names], rotation=45, ha="right")
  ax.set_ylabel("gain (dB)")
  ax.set_title(title)
  outputs.save_figure(fig, path)


def family_gains_png(path: str | os.PathLike, families: Sequence[str],
                     series: dict[str, Sequence[Sequence[float]]], title: str) -> None:
  """Grouped bars of the mean gain per family, one bar per series, each image
  a dot on its bar (NaN: not measured, left out).

  Args:
    path: the PNG.
    families: the groups, left to right.
    series: label -> per family, the per-image gains (dB).
    title: the chart's title.
  """
  fig = Figure(figsize=(max(6.0, 0.9 * len(families) * max(len(series), 1) / 2 + 2.0), 4.2),
               layout="constrained")
  ax = fig.add_subplot(1, 1, 1)
  width = 0.8 / max(len(series), 1)
  x = np.arange(len(families))
  for j, (label, per_family) in enumerate(series.items()):
    if len(per_family) != len(families):
      raise ValueError(f"{label}: {len(per_family)} groups for {len(families)} families")
    pos = x - 0.4 + width * (j + 0.5)
    gains = [np.asarray(g, np.float64) for g in per_family]
    means = [g[np.isfinite(g)].mean() if np.isfinite(g).any() else np.nan for g in gains]
    bars = ax.bar(pos, np.nan_to_num(means, nan=0.0), width, label=label)
    for p, g in zip(pos, gains):
      g = g[np.isfinite(g)]
      ax.plot(np.full(g.shape, p), g, ".", color="black", markersize=3)
    for bar, m in zip(bars, means):
      if not np.isfinite(m):
        bar.set_alpha(0.0)
  ax.axhline(0.0, color="black", linewidth=0.8)
  ax.set_xticks(x, [str(f) for f in families], rotation=30, ha="right")
  ax.set_ylabel("gain over bicubic (dB)")
  ax.set_title(title)
  ax.legend(fontsize="small")
  outputs.save_figure(fig, path)
