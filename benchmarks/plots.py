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
