r"""The kernel-estimation table: per image and estimator, kernel error, self-check, gain.

Reads `benchmarks.quality` results, one per estimator, on the same images
(each with a true kernel, so that the kernel error is known). Per image and
estimator it gives the true kernel error, the ground-truth-free self-check
(`kernel.self_check`, docs/method.md "Self-check") and the Y-PSNR gain over
bicubic, each the mean over that report's seeds. Below the table it gives how
far the self-check predicts the truth: Spearman rank correlations of the
self-check with the kernel error and with the gain, over every (image,
estimator) pair and within each image across the estimators. Writes the
table as Markdown and the numbers as JSON, never over an existing --results
(a summary of whole reports, made in a moment: nothing to resume).

  python -m benchmarks.kernels \
      --report=spectral=runs/spectral.json --report='KernelGAN G'=runs/kgan.json \
      --results=benchmarks/results/kernels_x2.json
"""

import os

from absl import flags
import numpy as np
from scipy import stats

from benchmarks import quality
from benchmarks import rows as rows_lib
from ike_jax import cli
from ike_jax import errors
from ike_jax import outputs

FLAGS = flags.FLAGS
KEYS = ('kernel_error', 'self_check', 'gain_psnr_y')


def define_flags():
  """Defined only when run (tests import this module beside others' flags)."""
  flags.DEFINE_multi_string('report', [], 'LABEL=path of a quality.py results JSON (repeatable).')
  flags.DEFINE_string('results', None, 'Where the JSON goes (the .md beside it).')


def per_image(report):
  """{image: {key: mean over seeds}} of the ok runs, for the keys present."""
  acc = {}
  for run in report['per_seed']:
    for img in run['images']:
      if img['status'] != 'ok':
        continue
      row = acc.setdefault(img['name'], {})
      for key in KEYS:
        if key in img['values']:
          row.setdefault(key, []).append(img['values'][key])
  return {name: {k: float(np.mean(v)) for k, v in row.items()} for name, row in acc.items()}


def _spearman(x, y):
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
    return float('nan')
  return float(stats.spearmanr(x, y)[0])


def compare(reports):
  """`reports`: {label: quality report}. Returns (rows, summary).

  rows: one per image common to all reports: {'image', '<label> <key>': ...}.
  summary: per label the means; 'spearman_selfcheck_vs_error' and
  '..._vs_gain' over all (image, label) pairs; and the same within each image
  across labels, averaged over images ('..._within_image').
  """
  tables = {label: per_image(r) for label, r in reports.items()}
  names = sorted(set.intersection(*(set(t) for t in tables.values())))
  if not names:
    raise errors.UserError('the reports share no image with a result')
  missing = [label for label, t in tables.items() for n in names
             if 'self_check' not in t[n] or 'kernel_error' not in t[n]]
  if missing:
    raise errors.UserError(f'{sorted(set(missing))}: results without a self-check or kernel '
                           'error (run quality.py with true kernels and a current ike_jax)')
  rows, summary = [], {'images': len(names)}
  for n in names:
    row = {'image': n}
    for label, t in tables.items():
      row.update({f'{label} {k}': t[n].get(k, float('nan')) for k in KEYS})
    rows.append(row)
  for label, t in tables.items():
    for k in KEYS:
      summary[f'{label} mean {k}'] = float(np.mean([t[n].get(k, np.nan) for n in names]))
  pairs = [(t[n]['self_check'], t[n]['kernel_error'], t[n].get('gain_psnr_y', np.nan))
           for t in tables.values() for n in names]
  check, err, gain = map(np.asarray, zip(*pairs))
  summary['spearman_selfcheck_vs_error'] = _spearman(check, err)
  summary['spearman_selfcheck_vs_gain'] = _spearman(check, gain)
  if len(tables) >= 3:
    within_e = [_spearman([t[n]['self_check'] for t in tables.values()],
                          [t[n]['kernel_error'] for t in tables.values()]) for n in names]
    within_g = [_spearman([t[n]['self_check'] for t in tables.values()],
                          [t[n]['gain_psnr_y'] for t in tables.values()]) for n in names]
    summary['spearman_selfcheck_vs_error_within_image'] = float(np.nanmean(within_e))
    summary['spearman_selfcheck_vs_gain_within_image'] = float(np.nanmean(within_g))
  # Does the lowest self-check pick the estimator with the lowest true error?
  picks = [min(tables, key=lambda l, n=n: tables[l][n]['self_check']) for n in names]
  best = [min(tables, key=lambda l, n=n: tables[l][n]['kernel_error']) for n in names]
  summary['selfcheck_picks_lowest_error'] = f'{sum(p == b for p, b in zip(picks, best))}/{len(names)}'
  return rows, summary


def markdown(rows, summary, labels):
  head = ['image'] + [f'{label}: {h}' for label in labels
                      for h in ('kernel error', 'self-check', 'gain (dB)')]
  fmt = {'kernel_error': '.4g', 'self_check': '.3f', 'gain_psnr_y': '+.2f'}
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row in rows + [dict({'image': '**mean**'},
                          **{f'{l} {k}': summary[f'{l} mean {k}'] for l in labels for k in KEYS})]:
    cells = [row['image']] + [format(row[f'{l} {k}'], fmt[k]) for l in labels for k in KEYS]
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines += ['', 'Spearman rank correlation of the self-check over all (image, estimator) '
            f"pairs: with the kernel error {summary['spearman_selfcheck_vs_error']:+.2f}, "
            f"with the gain {summary['spearman_selfcheck_vs_gain']:+.2f}."]
  if 'spearman_selfcheck_vs_error_within_image' in summary:
    lines.append('Within an image, across the estimators (mean over images): with the kernel '
                 f"error {summary['spearman_selfcheck_vs_error_within_image']:+.2f}, with the "
                 f"gain {summary['spearman_selfcheck_vs_gain_within_image']:+.2f}.")
  lines.append('The lowest self-check is the lowest kernel error on '
               f"{summary['selfcheck_picks_lowest_error']} images.")
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  if not FLAGS.report:
    raise errors.UserError('give at least one --report=LABEL=path')
  rows_lib.new_file(FLAGS.results, errors.UserError)
  reports = {}
  for item in FLAGS.report:
    label, sep, path = item.partition('=')
    if not sep or not label or not path:
      raise errors.UserError(f'--report takes LABEL=path, got {item!r}')
    reports[label] = quality.load_report(path)
  rows, summary = compare(reports)
  md = markdown(rows, summary, list(reports))
  print(md)
  if FLAGS.results:
    outputs.write_json(FLAGS.results, {'reports': dict(zip(reports, FLAGS.report)),
                                       'rows': rows, 'summary': summary})
    root = os.path.splitext(FLAGS.results)[0]
    outputs.write_bytes_atomic(root + '.md', md.encode())
    print(f'wrote {FLAGS.results}, {root}.md')


if __name__ == '__main__':
  define_flags()
  cli.run_app(main)
