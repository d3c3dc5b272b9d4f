"""Degradation families for blind SR: kernels, noise and JPEG (benchmark-only).

Every family draws from a `numpy.random.Generator`, so a seed gives the same
kernel and the same LR bytes on every machine. The recipes are written down
in `docs/method.md`, "Degradation families".

Linear families (a kernel on a `SIZE x SIZE` grid, HR px, centre of mass at
`kernel.kernel_center(SIZE, s)` so that the LR grid lines up with bicubic's):

  gaussian   DIV2KRK-style anisotropic Gaussian (`degradations.div2krk_kernel`)
  shake      camera shake: a random-walk trajectory of random length
             (5-25 HR px extent), its velocity perturbed every step and
             jerked now and then, splatted bilinearly, softened by a
             Gaussian of 0.5 HR px
  motion     linear motion: a segment of 5-21 HR px at a random angle
  disk       defocus: a uniform disk of radius 1.5-6 HR px
  mixture    two or three Gaussians (variances 0.5-3 HR px^2) at random
             offsets of up to 5 HR px, random weights
  none       no blur: the HR crop only subsampled (a delta at the origin)

Published kernel sets, report only: never tuned on, never measured on the
tuning photos (docs/method.md, "Degradation families"):

  levin      Levin et al. 2009's eight camera-shake kernels, 13-27 px, image
             index i taking kernel i mod 8
  usrnet     USRNet's twelve kernels (Zhang et al. 2020: eight Gaussians,
             four camera-shake), 25 px, image index i taking kernel i mod 12
             (both loaded from a file by `use_kernel_set`; not part of the
             repository)

Resampled photos, a check no setting was chosen on:

  area, cubic, lanczos
             a photo downscaled by a standard resampler with its
             anti-aliasing: an s x s box (area averaging), Keys' cubic
             (a = -0.5) stretched by s (MATLAB's imresize), Lanczos-3
             stretched by s; negative lobes kept

What a camera adds, report-only checks (`CAMERA`; no variants), each on a
DIV2KRK-style Gaussian blur drawn as `gaussian`'s:

  sharpened  the camera's sharpening: an unsharp mask on the LR image
             (amount 0.5-1.5, Gaussian of 0.8-1.5 LR px)
  chromatic  chromatic aberration: the red and the blue channel each blurred
             by the Gaussian softened by a further 0.6-1.5 HR px and shifted
             by up to 1 HR px along each axis (green as drawn)
  varying    a blur that widens towards the corners (a lens's field
             curvature): the LR image of the Gaussian blended with that of the
             Gaussian softened by a further 1-2 HR px, the latter's weight
             the squared distance from the centre over the corner's
  shot       signal-dependent noise: Poisson photon counts (500-5000 photons
             at white: 3.6-11 grey levels of noise there, 2.5-8 at mid-grey),
             then read noise of sigma 1 grey level, no JPEG
  demosaic   a colour filter array: each LR pixel keeps one colour of an RGGB
             Bayer mosaic, the other two filled in by bilinear interpolation

`+noise` variants add Gaussian read noise (sigma 1-5 grey levels) to the LR
image and then store it as JPEG (quality 70-95); `+jpeg` (JPEG alone) and
`+readnoise` (read noise alone) are the two halves of it (`CHECKS`; at x2
some of them joined the tuning set: docs/method.md, "Degradation families").
`+n2q90` is `+noise` at one fixed point of that range, a camera's: sigma 2,
quality 90 (a report-only check).
Non-linear families are
`degradations.KINDS` (median, bilateral, diffusion, mix). The LR image is
`degradations.blur_subsample` of the HR crop.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from benchmarks import degradations
from ike_jax import colours
from ike_jax import kernel as kernel_lib
from ike_jax import resize

SIZE = 31  # kernel grid side (HR px), both scales
LINEAR = ('gaussian', 'shake', 'motion', 'disk', 'mixture', 'none')
NONLINEAR = ('median', 'bilateral', 'diffusion')
FAMILIES = LINEAR + tuple(f + '+noise' for f in LINEAR) + NONLINEAR
CHECKS = tuple(f + v for v in ('+jpeg', '+readnoise') for f in LINEAR)
FIXED_NOISE = '+n2q90'  # read noise of sigma 2 grey levels, then JPEG at quality 90
LIGHT = '+light'  # the kernel blurs the photo's linear light, which is then encoded again
PUBLISHED = {'levin': 8, 'usrnet': 12}  # report-only kernel sets: name -> how many kernels
RESAMPLERS = ('area', 'cubic', 'lanczos')  # checks: standard anti-aliased downscaling
CAMERA = ('sharpened', 'chromatic', 'varying', 'shot', 'demosaic')  # report-only checks: what a camera adds


def _finish(k, scale, soften=0.0):
  """Non-negative, softened, unit-sum kernel with its centre of mass at kernel_center."""
  k = np.clip(np.asarray(k, np.float64), 0.0, None)
  if soften:
    k = ndimage.gaussian_filter(k, soften, mode='constant')
  k /= k.sum()
  c = kernel_lib.kernel_center(SIZE, scale)
  return degradations._shift_to_center(k, np.array([c, c]))  # pylint: disable=protected-access


def _splat(points, size=SIZE):
  """Bilinear splat of (N, 2) (row, col) points, centred on the grid, into a (size, size) image."""
  pts = points - points.mean(axis=0) + (size - 1) / 2
  k = np.zeros((size, size))
  r0, c0 = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
  fr, fc = pts[:, 0] - r0, pts[:, 1] - c0
  for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)),
                    (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
    rr, cc = np.clip(r0 + dr, 0, size - 1), np.clip(c0 + dc, 0, size - 1)
    np.add.at(k, (rr, cc), w)
  return k


def shake_kernel(rng, scale, length=None):
  """A camera-shake kernel: a random-walk trajectory of the given extent (HR px)."""
  length = float(rng.uniform(5.0, 25.0)) if length is None else float(length)
  n = 1000
  angle = rng.uniform(0, 2 * np.pi)
  v = np.array([np.cos(angle), np.sin(angle)])
  pos = np.zeros((n, 2))
  for t in range(1, n):
    v = v + rng.normal(0, 0.12, 2)
    if rng.random() < 0.004:  # a jerk
      v = v + rng.normal(0, 1.0, 2)
    v = v / max(np.linalg.norm(v), 1e-9)
    pos[t] = pos[t - 1] + v
  extent = max(np.ptp(pos[:, 0]), np.ptp(pos[:, 1]), 1e-9)
  pos = pos * (length / extent)
  # Dwell time varies along the path: the camera moves at varying speed.
  keep = rng.random(n) < rng.uniform(0.3, 1.0)
  return _finish(_splat(pos[keep] if keep.sum() > 10 else pos), scale, 0.5), {
      'family': 'shake', 'length': length}


def motion_kernel(rng, scale):
  length = float(rng.uniform(5.0, 21.0))
  angle = float(rng.uniform(0, np.pi))
  t = np.linspace(-0.5, 0.5, 400)[:, None] * length
  pts = t * np.array([[np.sin(angle), np.cos(angle)]])
  return _finish(_splat(pts), scale, 0.5), {'family': 'motion', 'length': length, 'angle': angle}


def disk_kernel(rng, scale):
  radius = float(rng.uniform(1.5, 6.0))
  rows, cols = np.indices((SIZE, SIZE)) - (SIZE - 1) / 2
  # Anti-aliased disk: 8x8 supersampling of each tap.
  sub = (np.arange(8) + 0.5) / 8 - 0.5
  k = np.zeros((SIZE, SIZE))
  for a in sub:
    for b in sub:
      k += (rows + a) ** 2 + (cols + b) ** 2 <= radius ** 2
  return _finish(k, scale), {'family': 'disk', 'radius': radius}


def mixture_kernel(rng, scale):
  n = int(rng.integers(2, 4))
  rows, cols = np.indices((SIZE, SIZE)) - (SIZE - 1) / 2
  k = np.zeros((SIZE, SIZE))
  parts = []
  for _ in range(n):
    var = rng.uniform(0.5, 3.0, 2)
    off = rng.uniform(-5, 5, 2)
    w = rng.uniform(0.3, 1.0)
    k += w * np.exp(-0.5 * ((rows - off[0]) ** 2 / var[0] + (cols - off[1]) ** 2 / var[1]))
    parts.append({'var': var.tolist(), 'offset': off.tolist(), 'weight': w})
  return _finish(k, scale), {'family': 'mixture', 'parts': parts}


def gaussian_kernel(rng, scale):
  k, info = degradations.div2krk_kernel(rng, 2)  # 11x11 at x2, centred
  if scale == 4:
    k = kernel_lib.x4_from_x2(k)
  big = np.zeros((SIZE, SIZE))
  off = (SIZE - k.shape[0]) // 2
  big[off:off + k.shape[0], off:off + k.shape[1]] = k
  return _finish(big, scale), {'family': 'gaussian', **info}


def no_blur(rng, scale):
  del rng, scale
  k = np.zeros((SIZE, SIZE))
  k[SIZE // 2, SIZE // 2] = 1.0
  return k, {'family': 'none'}


_PUBLISHED = {}  # name -> the kernels `use_kernel_set` has read


def use_kernel_set(name, path):
  """Reads a published kernel set for its report-only family (`PUBLISHED`): an
  .npy of shape (n, K, K), each kernel zero-padded to K (docs/method.md,
  "Degradation families", says how to make one from the published .mat)."""
  kernels = np.load(path)
  n = PUBLISHED[name]
  if kernels.ndim != 3 or len(kernels) != n:
    raise ValueError(f'{path}: expected ({n}, K, K) {name} kernels, got shape {kernels.shape}')
  if max(kernels.shape[1:]) > SIZE:
    raise ValueError(f'{path}: kernels of {kernels.shape[1:]} px do not fit the {SIZE} px grid')
  _PUBLISHED[name] = list(kernels)


def published_kernel(name, index, scale):
  """Kernel index mod n of a published set, centred on the SIZE x SIZE grid."""
  if name not in _PUBLISHED:
    raise ValueError(f'family {name!r} needs use_kernel_set({name!r}, path) first (report only)')
  kernels = _PUBLISHED[name]
  k = np.asarray(kernels[index % len(kernels)], np.float64)
  grid = np.zeros((SIZE, SIZE))
  r, c = (SIZE - k.shape[0]) // 2, (SIZE - k.shape[1]) // 2
  grid[r:r + k.shape[0], c:c + k.shape[1]] = k
  return _finish(grid, scale), {'family': name, 'kernel_index': index % len(kernels)}


def resampler_kernel(name, scale):
  """The kernel of an anti-aliased downscale by `scale` (`RESAMPLERS`): the
  separable product of the resampler's 1-D kernel stretched by s, its taps at
  their offsets from `kernel_center` (half-integers at x2: symmetric about
  the LR pixel, on bicubic's grid), unit sum, negative lobes kept."""
  t = (np.arange(SIZE) - kernel_lib.kernel_center(SIZE, scale)) / scale
  if name == 'area':
    w = (np.abs(t) < 0.5).astype(np.float64)
  elif name == 'cubic':
    w = resize.cubic(t, -0.5)
  elif name == 'lanczos':
    w = np.sinc(t) * np.sinc(t / 3) * (np.abs(t) < 3)
  else:
    raise ValueError(f'unknown resampler {name!r}')
  w = w / w.sum()
  return np.outer(w, w), {'family': name}


KERNELS = {'none': no_blur, 'gaussian': gaussian_kernel, 'shake': shake_kernel, 'motion': motion_kernel,
           'disk': disk_kernel, 'mixture': mixture_kernel}


def _softened(k, rng, low, high):
  """k convolved with an isotropic Gaussian of sigma in [low, high) HR px, unit sum."""
  k = ndimage.gaussian_filter(k, float(rng.uniform(low, high)), mode='constant')
  return k / k.sum()


def _camera(hr, family, scale, rng):
  """(LR float64, kernel or None, info) of a camera check (`CAMERA`): a
  `gaussian_kernel` blur and what the family adds. The kernel is returned
  only where it is the whole linear part (`shot`)."""
  k, info = gaussian_kernel(rng, scale)
  lr = degradations.blur_subsample(hr, k, scale)
  if family == 'shot':
    photons = float(rng.uniform(500.0, 5000.0))
    counts = rng.poisson(np.clip(lr, 0.0, 255.0) / 255.0 * photons)
    return counts / photons * 255.0 + rng.normal(0.0, 1.0, lr.shape), k, {
        **info, 'photons_at_white': photons}
  if family == 'sharpened':
    amount, sigma = float(rng.uniform(0.5, 1.5)), float(rng.uniform(0.8, 1.5))
    soft = ndimage.gaussian_filter(lr, (sigma, sigma, 0.0), mode='mirror')
    return lr + amount * (lr - soft), None, {**info, 'amount': amount, 'sigma': sigma}
  if family == 'chromatic':
    channels = []
    for c in range(3):
      kc = k
      if c != 1:  # red and blue: wider and shifted
        kc = ndimage.shift(_softened(k, rng, 0.6, 1.5), rng.uniform(-1.0, 1.0, 2), order=1)
        kc = kc / kc.sum()  # linear interpolation keeps it >= 0
      channels.append(degradations.blur_subsample(hr[..., c], kc, scale))
    return np.stack(channels, -1), None, info
  if family == 'varying':
    wide = degradations.blur_subsample(hr, _softened(k, rng, 1.0, 2.0), scale)
    rows, cols = np.indices(lr.shape[:2], dtype=np.float64)
    r2 = (rows - (lr.shape[0] - 1) / 2) ** 2 + (cols - (lr.shape[1] - 1) / 2) ** 2
    w = (r2 / r2.max())[..., None]
    return (1.0 - w) * lr + w * wide, None, info
  if family == 'demosaic':
    return _bilinear_demosaic(lr), None, info
  raise ValueError(f'unknown camera family {family!r}')


def in_light(family):
  """Whether a family's kernel blurred the photo's linear light (`+light`; else its grey levels)."""
  return family.endswith(LIGHT)


def _bilinear_demosaic(img):
  """An (H, W, 3) image through an RGGB Bayer mosaic and bilinear demosaicing."""
  rows, cols = np.indices(img.shape[:2])
  masks = [(rows % 2 == 0) & (cols % 2 == 0), (rows + cols) % 2 == 1,
           (rows % 2 == 1) & (cols % 2 == 1)]
  cross = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4.0
  box = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4.0
  return np.stack([ndimage.convolve(img[..., c] * masks[c], cross if c == 1 else box,
                                    mode='mirror') for c in range(3)], -1)


def jpeg(img_u8, quality):
  """The image after a JPEG round trip at `quality` (PIL, 4:2:0 chroma)."""
  buf = io.BytesIO()
  Image.fromarray(img_u8).save(buf, format='JPEG', quality=int(quality))
  buf.seek(0)
  return np.asarray(Image.open(buf).convert('RGB'))


def degrade(hr, family, scale, seed):
  """(lr uint8, kernel or None, info) of one HR crop under a family, deterministic."""
  rng = np.random.default_rng(seed)
  base = family.split('+')[0]
  if base in NONLINEAR:
    lr, _, info = degradations.degrade(hr, base, scale, seed)
    return lr, None, {**info, 'family': family}
  if base in CAMERA:
    if family != base:
      raise ValueError(f'{family!r}: the camera checks take no variant')
    lr, k, info = _camera(hr, base, scale, rng)
    return degradations.to_uint8(lr), k, {**info, 'family': family, 'scale': scale, 'seed': seed}
  if base in PUBLISHED:
    k, info = published_kernel(base, seed - 100, scale)
  elif base in RESAMPLERS:
    k, info = resampler_kernel(base, scale)
  else:
    k, info = KERNELS[base](rng, scale)
  variant = family[len(base):]
  if variant == LIGHT:  # a lens or a moving camera blurs light, before the camera encodes it
    light = degradations.blur_subsample(colours.srgb_decode(np.asarray(hr) / 255.0), k, scale)
    return degradations.to_uint8(colours.srgb_encode(light) * 255.0), k, {
        **info, 'family': family, 'scale': scale, 'seed': seed}
  lr = degradations.blur_subsample(hr, k, scale)
  if variant in ('+noise', '+readnoise', '+jpeg', FIXED_NOISE):  # the same draws: comparable images
    sigma = float(rng.uniform(1.0, 5.0))
    quality = int(rng.integers(70, 96))
    if variant == FIXED_NOISE:
      sigma, quality = 2.0, 90
    if variant != '+jpeg':
      lr = lr + rng.normal(0, sigma, lr.shape)
      info = {**info, 'noise_sigma': sigma}
    if variant != '+readnoise':
      lr = jpeg(degradations.to_uint8(lr), quality)
      info = {**info, 'jpeg_quality': quality}
  elif variant:
    raise ValueError(f'unknown family {family!r}')
  return degradations.to_uint8(lr), k, {**info, 'family': family, 'scale': scale, 'seed': seed}


HR_SIZE = {2: 256, 4: 384}  # HR crop side per scale: LR 128 px at x2, 96 at x4


def crop(img, side, position=0):
  """A square HR crop: `position` 0 is the centre, 1-4 are centred on the
  centres of the image's four quadrants (moved inside the image)."""
  from benchmarks import datasets  # pylint: disable=g-import-not-at-top
  if position == 0:
    return datasets.center_crop(img, side)
  h, w = img.shape[:2]
  side = min(h, w, side) // 4 * 4
  r, c = divmod(position - 1, 2)
  top = int(np.clip((2 * r + 1) * h // 4 - side // 2, 0, h - side))
  left = int(np.clip((2 * c + 1) * w // 4 - side // 2, 0, w - side))
  return img[top:top + side, left:left + side]


def pair(index, family, scale, hr_size=None, position=0):
  """(LR uint8, HR crop trimmed to s x the LR, kernel or None, info) of offline photo `index`
  under a family: its crop at `position` (0: centre; `crop`) of side `HR_SIZE`,
  degraded with seed 100 + index (+ 16 x position for the other crops)."""
  from benchmarks import datasets  # pylint: disable=g-import-not-at-top
  img = datasets.OFFLINE_IMAGES[list(datasets.OFFLINE_IMAGES)[index]]()
  hr = crop(img, hr_size or HR_SIZE[scale], position)
  lr, k, info = degrade(hr, family, scale, 100 + index + 16 * position)
  return lr, hr[:lr.shape[0] * scale, :lr.shape[1] * scale], k, info


def export(folder, family, scale, indices, hr_size=None):
  """Writes a family's LR images (`<folder>/lr/<name>.png`), HR crops (`hr/`) and
  kernels (`kernels/<name>.npy`, linear families) for the CLI's --input_dir / --hr_dir."""
  import os  # pylint: disable=g-import-not-at-top
  from benchmarks import datasets  # pylint: disable=g-import-not-at-top
  from ike_jax import outputs  # pylint: disable=g-import-not-at-top
  names = list(datasets.OFFLINE_IMAGES)
  for sub in ('lr', 'hr', 'kernels'):
    os.makedirs(os.path.join(folder, sub), exist_ok=True)
  for i in indices:
    lr, hr, k, _ = pair(i, family, scale, hr_size)
    outputs.write_png(os.path.join(folder, 'lr', f'{names[i]}.png'), lr)
    outputs.write_png(os.path.join(folder, 'hr', f'{names[i]}.png'), hr)
    if k is not None:
      outputs.write_npy(os.path.join(folder, 'kernels', f'{names[i]}.npy'), k)
