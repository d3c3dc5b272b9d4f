"""Sub-pixel grid artifacts of SR images (benchmark metric).

A space-to-depth flow can leave a periodic s x s pattern (a checkerboard at
x2) on its SR image; these functions measure it on Y (0..255 RGB in, MATLAB
BT.601, `ike_jax.metrics.rgb_to_y`).
"""

from ike_jax import metrics


def phase_means(img, scale):
  """Mean Y of each of the s x s sub-pixel phases: (s, s) float64.

  Entry (a, b) averages Y (0..255 RGB in, MATLAB BT.601) over pixels
  (s*i + a, s*j + b). On a natural image the phases agree to a fraction of
  a grey level; a periodic s x s grid artifact (the checkerboard that a
  space-to-depth flow can leave) moves them apart by its amplitude.
  """
  y = metrics.rgb_to_y(img)
  h, w = (y.shape[0] // scale) * scale, (y.shape[1] // scale) * scale
  y = y[:h, :w].reshape(h // scale, scale, w // scale, scale)
  return y.mean(axis=(0, 2))


def grid_strength(img, scale):
  """Spread (max - min, grey levels) of `phase_means`: 0 for no grid."""
  m = phase_means(img, scale)
  return float(m.max() - m.min())
