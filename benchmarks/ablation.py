r"""The six ablation presets of the IKE project page, measured side by side.

  python -m benchmarks.ablation --dataset=offline [--num_images=N] \
      [--crop=32 --iterations=300] [--set=metrics_every=25] [--seeds=N] \
      [--output_dir=runs/ablation] [--results=benchmarks/results/ablation_x2.json]

Each row loads `flags/ablation_*.flags`, applies `--set` overrides, then
`--crop` / `--iterations`: a new iteration count scales `lr_decay_every` and
`bic_decay_every` proportionally unless they are given (by flag or `--set`).
The mean PSNR/SSIM (both protocols) are printed next to the project page's
table (`docs/method.md`, "Published figures"), with a check of whether our
rows order as the paper's. Each preset's row is written to --results as it
finishes (`benchmarks/rows.py`): the same command run again keeps the presets
measured and measures the rest, so an interrupted run ends with the table an
uninterrupted one writes. A preset whose row is missing but whose folder
under --output_dir holds outputs (an interrupted row) needs --overwrite.
"""

import math
import os
import sys

from absl import flags
import numpy as np

from benchmarks import quality
from benchmarks import rows as rows_lib
from ike_jax import errors
from ike_jax import outputs
from ike_jax import presets

FLAGS = flags.FLAGS
FLAGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'flags')

# (our mean metric, the paper's column) pairs whose ordering is checked.
ORDERINGS = (('ike_psnr_y', 'psnr'), ('ike_ssim_y', 'ssim'),
             ('ike_psnr_rgb', 'psnr'), ('ike_ssim_rgb', 'ssim'))
SCHEDULE = ('lr_decay_every', 'bic_decay_every')


def _override_name(arg):
  return arg.lstrip('-').split('=', 1)[0]


def shrink(cfg, *, crop=None, iterations=None, lr_decay_every=None,
           bic_decay_every=None, keep=()):
  """Overrides crop and iterations; the schedule follows the iteration count.

  Args:
    cfg: a preset's Config.
    crop, iterations, lr_decay_every, bic_decay_every: new values, or None.
    keep: schedule fields set elsewhere (e.g. by `--set`), never rescaled.
  """
  kw = {}
  if crop is not None:
    kw['crop'] = crop
  if iterations is not None:
    kw['iterations'] = iterations
    ratio = iterations / cfg.run.iterations
    for name in SCHEDULE:
      if name not in keep:
        kw[name] = max(1, round(getattr(cfg.train.optim, name) * ratio))
  for name, value in (('lr_decay_every', lr_decay_every), ('bic_decay_every', bic_decay_every)):
    if value is not None:
      kw[name] = value
  return cfg.replace(**kw)


def row_configs(flags_dir=FLAGS_DIR, overrides=(), **shrink_kw):
  """(ablation row, Config) for the six presets, overrides applied."""
  keep = {_override_name(a) for a in overrides}
  configs = []
  for row in quality.IKE_ABLATION:
    cfg = presets.config_from_flagfile(os.path.join(flags_dir, row['preset'] + '.flags'),
                                       overrides)
    configs.append((row, shrink(cfg, keep=keep, **shrink_kw)))
  return configs


def _ranks(values):
  """Ranks from 1, ties get their average rank."""
  values = np.asarray(values, np.float64)
  order = np.argsort(values, kind='stable')
  ranks = np.empty(len(values))
  ranks[order] = np.arange(1, len(values) + 1)
  for v in np.unique(values):
    tied = values == v
    ranks[tied] = ranks[tied].mean()
  return ranks


def spearman(a, b):
  """Spearman's rank correlation of the finite pairs; NaN if undefined."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  ok = np.isfinite(a) & np.isfinite(b)
  if ok.sum() < 2:
    return float('nan')
  ra, rb = _ranks(a[ok]), _ranks(b[ok])
  if ra.std() == 0 or rb.std() == 0:
    return float('nan')
  return float(np.corrcoef(ra, rb)[0, 1])


def ordering(ours, paper, names=None):
  """Whether `ours` rises as `paper` does.

  Returns {'spearman', 'monotone' (ours never falls, in the paper's order, and
  every value is finite), 'inversions' (adjacent pairs, in the paper's order,
  where ours falls)}.
  """
  names = list(names) if names is not None else list(range(len(ours)))
  order = np.argsort(np.asarray(paper, np.float64), kind='stable')
  seq = [ours[i] for i in order]
  inversions = [[names[order[k]], names[order[k + 1]]] for k in range(len(seq) - 1)
                if seq[k + 1] < seq[k]]
  finite = all(v is not None and math.isfinite(v) for v in ours)
  return {'spearman': spearman(ours, paper), 'monotone': finite and not inversions,
          'inversions': inversions}


def run_ablation(samples, output_dir, *, flags_dir=FLAGS_DIR, overrides=(),
                 seeds=1, overwrite=False, log=print, measure=quality.measure,
                 dataset=None, results=None, data_flags=None, **shrink_kw):
  """Measures every ablation row on `samples`; returns the report dict.

  Rows go to `results` (JSON) as they come; the presets it holds already,
  measured with the same settings (`data_flags`: the data-set flags), are kept.
  """
  header = {'dataset': dataset, 'num_images': len(samples), 'overrides': list(overrides),
            'shrink': shrink_kw, 'paper_source': quality.IKE_PAGE, 'seeds': seeds,
            'data': data_flags}
  table = rows_lib.Rows(results, header, key=lambda r: r['preset'], derived=('ordering', 'argv'),
                        error=errors.UserError)
  configs = row_configs(flags_dir, overrides, **shrink_kw)
  for row, cfg in configs:
    kept = table.get(row['preset'])
    if kept is not None:
      if kept['config'] != outputs.jsonable(cfg.to_dict()):
        raise errors.UserError(f"--results={results} holds {row['preset']} measured with another "
                               'config: give another file, or delete it to measure again')
      log(f"== {row['preset']}: kept")
      continue
    model = cfg.train.model
    log(f"== {row['preset']}: crop {cfg.train.crop}, {cfg.run.iterations} iterations, "
        f"losses {','.join(cfg.train.loss.losses)}, tri_channel {model.tri_channel}, "
        f"bicubic_residual {model.bicubic_residual}")
    folder = os.path.join(output_dir, row['preset'])
    if not overwrite and any(files for _, _, files in os.walk(folder)):
      raise errors.UserError(f'{folder} holds outputs of a row the table lacks (an interrupted '
                             'run?): pass --overwrite to measure it again, or delete it')
    rep = measure(cfg, samples, folder, seeds=seeds, overwrite=overwrite, log=log,
                  dataset=dataset)
    table.add({**row, 'config': cfg.to_dict(), 'mean': rep['mean']['mean'],
               'std': rep['mean']['std'], 'timings': [s['timings'] for s in rep['per_seed']],
               'images': rep['images'], 'seeds': rep['seeds']})
  rows = [table.get(row['preset']) for row, _ in configs]
  names = [r['preset'] for r in rows]
  checks = {}
  for ours_key, paper_key in ORDERINGS:
    ours = [r['mean'].get(ours_key) for r in rows]
    ours = [float('nan') if v is None else v for v in ours]  # a kept row stores NaN as null
    checks[ours_key] = {'against': paper_key,
                        **ordering(ours, [r[paper_key] for r in rows], names)}
  return {**table.table, 'rows': rows, 'ordering': checks}


def markdown(report):
  rows = report['rows']
  with_std = len(rows[0]['seeds']) > 1 if rows else False
  first = rows[0]['config'] if rows else {}
  header = ['preset'] + [label for _, label in quality.SWITCHES] + [
      'paper PSNR', 'paper SSIM', 'our PSNR Y', 'our SSIM Y', 'our PSNR RGB', 'our SSIM RGB']
  table = []
  for r in rows:
    table.append([r['preset']] + ['yes' if r[key] else '' for key, _ in quality.SWITCHES] + [
        f"{r['psnr']:.3f}", f"{r['ssim']:.4f}"] + [
            quality.fmt(r['mean'].get(k), r['std'].get(k), number_format, with_std)
            for k, number_format in (('ike_psnr_y', '.2f'), ('ike_ssim_y', '.4f'),
                            ('ike_psnr_rgb', '.2f'), ('ike_ssim_rgb', '.4f'))])
  bic = rows[0]['mean'] if rows else {}
  lines = [
      f"# IKE ablation: {report.get('dataset') or '?'} "
      f"x{quality.config_value(first, 'scale') or 2}",
      '',
      f"{report['num_images']} image(s); crop {quality.config_value(first, 'crop')}, "
      f"{quality.config_value(first, 'iterations')} iterations per row. "
      f"Paper: {report['paper_source']} "
      '(DIV2K Track 2, x2, protocol not stated; full 3000-iteration runs).',
      f"Y: {quality.PROTOCOLS['y']}. RGB: {quality.PROTOCOLS['rgb']}.",
      f"Bicubic on the same images: PSNR Y {quality.fmt(bic.get('bicubic_psnr_y'), None, '.2f', False)}, "
      f"SSIM Y {quality.fmt(bic.get('bicubic_ssim_y'), None, '.4f', False)}, "
      f"PSNR RGB {quality.fmt(bic.get('bicubic_psnr_rgb'), None, '.2f', False)}, "
      f"SSIM RGB {quality.fmt(bic.get('bicubic_ssim_rgb'), None, '.4f', False)}.",
      '', quality.md_table(header, table), '', '## Ordering against the paper', '',
  ]
  check_rows = []
  for key, c in report['ordering'].items():
    inv = '; '.join(f'{a} > {b}' for a, b in c['inversions']) or 'none'
    check_rows.append([key, c['against'], quality.fmt(c['spearman'], None, '+.3f', False),
                       'yes' if c['monotone'] else 'no', inv])
  lines += [quality.md_table(['ours', 'paper', 'Spearman', 'same order', 'inversions (ours falls)'],
                             check_rows), '']
  return '\n'.join(lines)


def write_report(report, results_path):
  """Writes the JSON and the Markdown beside it; returns their paths."""
  md_path = os.path.splitext(results_path)[0] + '.md'
  try:
    os.makedirs(os.path.dirname(os.path.abspath(results_path)), exist_ok=True)
  except OSError as err:
    raise errors.OutputError(f'cannot create {os.path.dirname(results_path)}: {err}') from err
  outputs.write_json(results_path, report)
  outputs.write_bytes_atomic(md_path, markdown(report).encode('utf-8'))
  return {'json': results_path, 'md': md_path}


def define_flags(flag_values=FLAGS):
  quality.define_dataset_flags('runs/ablation', flag_values)
  kw = dict(flag_values=flag_values)
  flags.DEFINE_integer('crop', None, 'Override every preset\'s crop.', **kw)
  flags.DEFINE_integer('iterations', None,
                       'Override every preset\'s iterations; the schedule scales with it.', **kw)
  flags.DEFINE_integer('lr_decay_every', None, 'Override the lr decay step.', **kw)
  flags.DEFINE_integer('bic_decay_every', None, 'Override the lambda_bic decay step.', **kw)
  flags.DEFINE_multi_string('set', [], 'Any Config flag for every row, e.g. '
                            '--set=metrics_every=25 (applied after the preset).', **kw)
  flags.DEFINE_string('flags_dir', FLAGS_DIR, 'Folder of the ablation_*.flags presets.', **kw)


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments: {" ".join(argv[1:])}')
  configs = row_configs(FLAGS.flags_dir, FLAGS.set)
  scale = configs[0][1].scale
  samples = quality.load_samples(FLAGS, scale)
  results = FLAGS.results or os.path.join('benchmarks', 'results', f'ablation_x{scale}.json')
  report = run_ablation(
      samples, FLAGS.output_dir, flags_dir=FLAGS.flags_dir, overrides=FLAGS.set,
      seeds=FLAGS.seeds, overwrite=FLAGS.overwrite, log=lambda m: print(m, flush=True),
      dataset=FLAGS.dataset, results=results,
      data_flags=quality.data_flags(), crop=FLAGS.crop,
      iterations=FLAGS.iterations, lr_decay_every=FLAGS.lr_decay_every,
      bic_decay_every=FLAGS.bic_decay_every)
  report['argv'] = sys.argv[1:]
  paths = write_report(report, results)
  print(markdown(report))
  print('wrote ' + ', '.join(paths.values()))
  return 0


if __name__ == '__main__':
  define_flags()
  quality.entry(main)
