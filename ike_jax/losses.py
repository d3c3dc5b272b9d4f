"""IKE's losses (`docs/method.md`, "Losses"), each a pure function on NHWC images in [-1, 1].

  gan_l1(pred, t)    = mean |pred - t|                     (pixel-wise GAN, t in {0, 1})
  bicubic(lr, crop)  = mean (lr - bic8_down(crop))^2       (KernelGAN's bicubic prior)
  energy(lr, crop)   = mean |lum(lr) - gauss_down(lum(crop))|
  inter(crop, sr)    = mean (1 - edge) |up(crop) - sr|      (edge: Sobel of up(crop), constant)
  tv(sr)             = 2 (mean dv^2 + mean dh^2)
  kernel_priors(k)   = KernelGAN's priors on G's impulse response (sum to 1,
                       mass inside the kernel window, centred on its block)
The backward cross-scale loss L_CSR^bwd is `gan_l1(UD(sr), 1)` (see `train`).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ike_jax import colours
from ike_jax import resize


def gan_l1(pred, target):
  """Pixel-wise GAN loss: L1 between a discriminator map and 0 or 1."""
  return jnp.mean(jnp.abs(pred - target))


def bicubic(lr, crop, scale, mix_colours):
  """MSE between G's LR output and KernelGAN's bicubic downscale of the crop.

  Args:
    lr: (N, h, w, 3). crop: (N, s*h, s*w, 3).
    mix_colours: the PyTorch quirk (every target channel sums all colours).
  """
  target = resize.bicubic_kernel_down(crop, scale, mix_colours)
  return jnp.mean((lr - target[:, :lr.shape[1], :lr.shape[2]]) ** 2)


@functools.lru_cache(maxsize=8)
def gaussian_kernel(size, sigma):
  """OpenCV's `getGaussianKernel(size, sigma)` outer product, (size, size)."""
  x = np.arange(size) - (size - 1) / 2
  g = np.exp(-x ** 2 / (2 * sigma ** 2))
  g /= g.sum()
  return np.outer(g, g).astype(np.float32)


def luminance(x):
  """(N, H, W, 3) -> (N, H, W, 1), weights 0.299, 0.587, 0.114."""
  return jnp.sum(x * jnp.asarray(colours.LUMA, x.dtype), axis=-1, keepdims=True)


def energy(lr, crop, scale, ksize, sigma):
  """L1 between G's output luminance and a Gaussian-blurred, strided input's."""
  k = jnp.asarray(gaussian_kernel(ksize, sigma))[:, :, None, None]
  pad = (ksize - 1) // 2
  target = jax.lax.conv_general_dilated(
      luminance(crop), k, (scale, scale), ((pad, pad), (pad, pad)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return jnp.mean(jnp.abs(luminance(lr) - target[:, :lr.shape[1], :lr.shape[2]]))


def _sobel_magnitude(img):
  """scipy.ndimage.sobel magnitude of (H, W) with mirror ('reflect') borders."""
  p = jnp.pad(img, 1, mode='symmetric')
  smooth = jnp.array([1.0, 2.0, 1.0])
  diff = jnp.array([-1.0, 0.0, 1.0])
  def sep(a, row_k, col_k):
    # Correlate columns with `row_k` (vertical) then rows with `col_k`.
    a = sum(row_k[i] * a[i:i + a.shape[0] - 2, :] for i in range(3))
    return sum(col_k[j] * a[:, j:j + a.shape[1] - 2] for j in range(3))
  gx = sep(p, smooth, diff)
  gy = sep(p, diff, smooth)
  return jnp.hypot(gx, gy)


def edge_mask(up_crop, round_to_uint8=True):
  """L_inter's edge weight in [0, 1] from the up-sampled crop, (N, H, W, 1).

  The PyTorch code rounds `up(crop)` to uint8 per colour, sums the colours,
  takes the Sobel magnitude and min-max normalises it (a flat crop, NaN there,
  gives an all-zero mask here). The result is a constant (no gradient).
  """
  x = jax.lax.stop_gradient(up_crop)
  if round_to_uint8:
    x = jnp.clip(jnp.round((x + 1) * 127.5), 0, 255)
  else:
    x = (x + 1) * 127.5
  mags = jax.vmap(_sobel_magnitude)(jnp.sum(x, axis=-1))
  lo = jnp.min(mags, axis=(1, 2), keepdims=True)
  mags = mags - lo
  hi = jnp.max(mags, axis=(1, 2), keepdims=True)
  return (mags / jnp.where(hi > 0, hi, 1.0))[..., None]


def inter(crop, sr, scale, round_mask=True):
  """L_inter: edge-weighted L1 between the bicubic up-sampled crop and SR."""
  up = resize.torch_align_corners(crop, scale)
  mask = edge_mask(up, round_mask)
  return jnp.mean((1 - mask) * jnp.abs(up - sr))


def tv(x):
  """Total variation as the PyTorch code: 2 (mean dv^2 + mean dh^2)."""
  dv = x[:, 1:, :, :] - x[:, :-1, :, :]
  dh = x[:, :, 1:, :] - x[:, :, :-1, :]
  return 2 * (jnp.mean(dv ** 2) + jnp.mean(dh ** 2))


def kernel_priors(k, scale, radius):
  """KernelGAN's kernel regularisers on G's impulse response.

  Args:
    k: (P, P) weights of the HR pixels that make the LR pixel whose block
      starts at (P/2, P/2) (`readout.impulse_response`); P a multiple of 2s.
    scale: s.
    radius: half the kernel window (HR px from the block centre).
  Returns:
    dict of scalars: 'sum2one' |1 - sum k|; 'boundaries' sum |k| * mask, the
    mask 0 within `radius` of the block centre, rising linearly to 1 one
    pixel further out; 'negative' sum of the negative taps' magnitudes (a
    blur is non-negative); 'sparse' mean |k|^0.2 (KernelGAN's sparsity);
    'centralized' squared distance (HR px) between the
    centre of mass of |k| and the block centre.
  """
  side = k.shape[0]
  centre = side // 2 + (scale - 1) / 2
  yy, xx = jnp.mgrid[:side, :side]
  dist = jnp.sqrt((yy - centre) ** 2 + (xx - centre) ** 2)
  mask = jnp.clip(dist - radius, 0.0, 1.0)
  mag = jnp.abs(k)
  mass = jnp.maximum(jnp.sum(mag), 1e-8)
  com_y, com_x = jnp.sum(mag * yy) / mass, jnp.sum(mag * xx) / mass
  return {'sum2one': jnp.abs(1.0 - jnp.sum(k)),
          'boundaries': jnp.sum(mag * mask),
          'negative': jnp.sum(jax.nn.relu(-k)),
          'sparse': jnp.mean((mag + 1e-12) ** 0.2),
          'centralized': (com_y - centre) ** 2 + (com_x - centre) ** 2}
