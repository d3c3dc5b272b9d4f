"""What a run reports per image: scores, pictures, files, terminal lines.

Per image `<stem>`, in the output directory:
  <stem>_x{s}.png        the SR image
  <stem>_compare.png     bicubic | SR (named after the method that made it) [| HR];
                         of a photo over COMPARE_SIDE SR px, its central crop
  <stem>_losses.png      loss curves (an estimator that trains)
  <stem>_kernel.{npy,png,mat}   the estimated kernel (mean over colours; beside
                                the true kernel when one is given)
  <stem>_metrics.json    method, config, seed, timings, final losses, the
                         self-check (`kernel.self_check`), the estimate's record
                         ('estimate': everything but its arrays, e.g. a
                         choice among candidates and its confidence); with
                         an HR image, PSNR/SSIM of the SR image and of bicubic
                         in both protocols; with a true kernel, the kernel error
Every file is written atomically (`outputs`); claiming the names up front is
the pipeline's job.
"""

import io
import math
import os

import numpy as np
from scipy import io as sio

from ike_jax import kernel as kernel_lib
from ike_jax import metrics as metrics_lib
from ike_jax import outputs
from ike_jax import resize


def output_names(stem, scale, losses=True):
  """{role: file name} of everything written for one image (the loss curves
  only when `losses`: `estimate.output_kinds` has them)."""
  names = {'sr': f'{stem}_x{scale}.png', 'compare': f'{stem}_compare.png',
           'losses': f'{stem}_losses.png', 'metrics': f'{stem}_metrics.json',
           'kernel_npy': f'{stem}_kernel.npy', 'kernel_png': f'{stem}_kernel.png',
           'kernel_mat': f'{stem}_kernel.mat'}
  if not losses:
    del names['losses']
  return names


# The estimate's arrays (written as files) and what the result holds elsewhere.
_NOT_IN_RECORD = ('kernel', 'per_colour', 'population', 'companion_kernel')
# Extra fields of an estimate shown on the terminal, in this order.
_SHOWN = ('choice', 'confidence')
COMPARE_SIDE = 1024  # SR px: a larger SR image is compared on its central crop


def _view(lr_shape, scale):
  """(LR rows, LR cols, title note) of what the compare picture shows."""
  side = COMPARE_SIDE // scale
  box = [slice((n - side) // 2, (n - side) // 2 + side) if n > side else slice(0, n)
         for n in lr_shape[:2]]
  note = ' (centre crop)' if any(n > side for n in lr_shape[:2]) else ''
  return box[0], box[1], note


def _bicubic_of(lr, rows, cols, scale):
  """`resize.bicubic_upscale` of the whole LR image, cut to rows x cols (LR px):
  made from those rows and columns and 2 more on each side (bicubic's reach)."""
  r0, c0 = max(rows.start - 2, 0), max(cols.start - 2, 0)
  up = resize.bicubic_upscale(lr[r0:rows.stop + 2, c0:cols.stop + 2], scale)
  return up[scale * (rows.start - r0):scale * (rows.stop - r0),
            scale * (cols.start - c0):scale * (cols.stop - c0)]


def config_record(cfg):
  """The run's settings as `<stem>_metrics.json` holds them: `cfg.to_dict()`,
  a setting that is infinite (a test turned off) as the string 'inf' (JSON
  has no infinity)."""
  def plain(v):
    if isinstance(v, dict):
      return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
      return [plain(x) for x in v]
    return str(v) if isinstance(v, float) and not math.isfinite(v) else v
  return outputs.jsonable(plain(cfg.to_dict()))


def write_kernel_files(out, names, estimate, true_kernel=None):
  """Writes the kernel as .npy, .mat (key 'Kernel', as KernelGAN) and .png.

  Returns the result fields: 'kernel_sum', 'kernel_linear',
  'kernel_nonlinearity' and, with a true kernel, 'kernel_error'.
  """
  k = np.asarray(estimate['kernel'], np.float32)
  outputs.write_npy(out.path_for(names['kernel_npy']), k)
  buf = io.BytesIO()
  sio.savemat(buf, {'Kernel': k})
  outputs.write_bytes_atomic(out.path_for(names['kernel_mat']), buf.getvalue())
  result = {'kernel_sum': estimate['sum'], 'kernel_linear': bool(estimate['linear']),
            'kernel_nonlinearity': estimate['nonlinearity']}
  title = 'estimated' if estimate['linear'] else 'estimated (linearised)'
  if estimate.get('refine') is False:  # a choice of no deblurring: the kernel went unused
    title = f"{title}, not used ({estimate.get('choice', 'no deblurring')} chosen)"
  panels = [(title, k)]
  if true_kernel is not None:
    result['kernel_error'] = kernel_lib.kernel_error(k, true_kernel)
    panels = [(f'{title}, error {result["kernel_error"]:.2e}', k),
              ('true', np.asarray(true_kernel, np.float64))]
  if 'companion_kernel' in estimate:  # its SR image is blended in: shown beside
    panels.insert(1, (f"companion (weight {estimate['companion_weight']:g})",
                      np.asarray(estimate['companion_kernel'][0], np.float64)))
  outputs.kernel_png(out.path_for(names['kernel_png']), panels)
  return result


def write_image_outputs(out, names, image, cfg, label, estimate, history, timings):
  """Scores one image and writes all its files; returns its result dict.

  Args:
    out: an `outputs.OutputDir`.
    names: `output_names(...)`.
    image: dict with 'lr_path', 'lr' (uint8), 'sr' (uint8), optional 'hr'
      (uint8), 'hr_path', 'true_kernel' (2-D, at G's training scale),
      'self_check' (`kernel.self_check` of SR, LR and the SR kernel),
      'linear_light' (estimated, and any SR stage run, on the photo's light).
    cfg: the run's `config.Config`.
    label: what made the SR image (`estimate.method_label`).
    estimate: the kernel estimate of this image (`readout.estimate_kernel`'s
      format, any extra JSON-serialisable keys recorded under 'estimate').
    history: {metric: (steps,) array}.
    timings: dict of seconds.
  """
  s = cfg.scale
  lr, sr_u8, hr = image['lr'], image['sr'], image.get('hr')
  rows, cols, note = _view(lr.shape, s)
  hr_rows, hr_cols = slice(s * rows.start, s * rows.stop), slice(s * cols.start, s * cols.stop)
  result = {
      'image': image['lr_path'], 'image_sha256': image.get('lr_sha256'), 'status': 'ok',
      'method': label, 'seed': cfg.run.seed,
      'lr_shape': list(lr.shape), 'sr_shape': list(sr_u8.shape),
      'config': config_record(cfg), 'timings': timings,
      'final_losses': {k: float(v[-1]) for k, v in history.items()},
      'estimate': {k: v for k, v in estimate.items() if k not in _NOT_IN_RECORD},
      'outputs': dict(names),
  }
  sr_view = sr_u8[hr_rows, hr_cols]
  panels = [(f'bicubic{note}', _bicubic_of(lr, rows, cols, s)), (label, sr_view)]
  if hr is not None:
    bic = resize.bicubic_upscale(lr, s)
    scores = {'sr': metrics_lib.compare(sr_u8, hr, s), 'bicubic': metrics_lib.compare(bic, hr, s)}
    result['metrics'] = scores
    result['hr'] = image.get('hr_path')
    result['hr_sha256'] = image.get('hr_sha256')
    # The score first: a long method name is cut short to fit its panel.
    panels = [(f'bicubic {scores["bicubic"]["psnr_y"]:.2f} dB{note}', bic[hr_rows, hr_cols]),
              (f'{scores["sr"]["psnr_y"]:.2f} dB: {label}', sr_view),
              ('HR', hr[:sr_u8.shape[0], :sr_u8.shape[1]][hr_rows, hr_cols])]
  if 'self_check' in image:
    result['self_check'] = image['self_check']
  if image.get('linear_light'):
    result['linear_light'] = True
  if 'population' in estimate:
    result['population'] = estimate['population']
  if estimate.get('scale', s) != s:
    result['kernel_scale'] = estimate['scale']
  result.update(write_kernel_files(out, names, estimate, image.get('true_kernel')))
  outputs.write_png(out.path_for(names['sr']), sr_u8)
  outputs.write_png(out.path_for(names['compare']), outputs.compare_image(panels))
  steps = list(range(1, len(next(iter(history.values()))) + 1)) if history else []
  curves = {k: list(map(float, v)) for k, v in history.items() if k not in ('lr',)}
  if curves:
    outputs.loss_curves_png(out.path_for(names['losses']), curves, steps)
  outputs.write_json(out.path_for(names['metrics']), result)
  return result


def format_result(result):
  """One line per image for the terminal (and the scores beneath it)."""
  if result['status'] != 'ok':
    return f"{result['image']}: {result['status']}"
  line = (f"{result['image']}: wrote {result['outputs']['sr']} "
          f"({result['sr_shape'][1]}x{result['sr_shape'][0]}, {result['method']})")
  if 'metrics' in result:
    sr, bic = result['metrics']['sr'], result['metrics']['bicubic']
    shave = result['config']['train']['scale']
    line += (f"\n  PSNR Y (shave {shave}): SR {sr['psnr_y']:.2f} dB, "
             f"bicubic {bic['psnr_y']:.2f} dB ({sr['psnr_y'] - bic['psnr_y']:+.2f})"
             f"\n  PSNR RGB (no shave):   SR {sr['psnr_rgb']:.2f} dB, bicubic {bic['psnr_rgb']:.2f} dB"
             f"\n  SSIM Y: SR {sr['ssim_y']:.4f}, bicubic {bic['ssim_y']:.4f}")
  shown = [f'{k} {_short(result["estimate"][k])}' for k in _SHOWN
           if k in result.get('estimate', {})]
  if shown:
    of = (' (of 1: how far its deciding score sits from its threshold)'
          if 'confidence' in result['estimate'] else '')
    line += f"\n  kernel estimate: {', '.join(shown)}{of}"
  if result.get('linear_light'):
    line += ('\n  in linear light (--linear_light): the kernel estimated, and any SR stage '
             'run, on its light')
  if 'reason' in result.get('estimate', {}):
    line += f"\n  why: {result['estimate']['reason']}"
  if 'kernel_error' in result:
    line += f"\n  kernel error (sum of squared differences): {result['kernel_error']:.3g}"
  return line


def _short(value):
  """A number to 3 significant digits; anything else as it prints."""
  return f'{value:.3g}' if isinstance(value, float) else str(value)


def write_summary(output_dir, results):
  """Writes `summary.json` for a many-image run; returns the printed table."""
  rows = ['| image | status | PSNR Y SR | PSNR Y bicubic | gain | SSIM Y SR |',
          '|---|---|---|---|---|---|']
  gains = []
  for r in results:
    m = r.get('metrics')
    if m:
      gain = m['sr']['psnr_y'] - m['bicubic']['psnr_y']
      gains.append(gain)
      rows.append(f"| {os.path.basename(r['image'])} | {r['status']} | {m['sr']['psnr_y']:.2f} | "
                  f"{m['bicubic']['psnr_y']:.2f} | {gain:+.2f} | {m['sr']['ssim_y']:.4f} |")
    else:
      rows.append(f"| {os.path.basename(r['image'])} | {r['status']} | | | | |")
  summary = {'images': results, 'count': len(results),
             'ok': sum(r['status'] == 'ok' for r in results),
             'skipped': sum(r['status'] == 'skipped' for r in results),  # done by an earlier run
             'mean_psnr_y_gain': float(np.mean(gains)) if gains else None}
  outputs.write_json(os.path.join(output_dir, 'summary.json'), summary)
  if gains:
    rows.append(f'| mean | | | | {np.mean(gains):+.2f} | |')
  return '\n'.join(rows)
