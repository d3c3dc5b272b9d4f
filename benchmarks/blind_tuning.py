"""What the blind kernel choice sees, per tuning image and family (tuning only).

For every family and tuning photo: the choice's inputs (the halves'
agreement, the blind kernel's distance from the Gaussian and its widest
variance, the Gaussian's widest variance, the noise level) and the Y-PSNR
gain over bicubic of each candidate (blind kernel at two SR priors, the
spectral Gaussian at its preset prior, bicubic = 0). Rows go to --results as
they come; `ike_jax/estimators/blind.py`'s thresholds are read off this
table (docs/method.md, "Blind SR: the kernel choice").

  python -m benchmarks.blind_tuning --scale=2 --results=/tmp/blind_tuning_x2.json
"""

from absl import app
from absl import flags

from benchmarks import blind_families
from benchmarks import datasets
from benchmarks import families
from ike_jax import metrics
from ike_jax import outputs
from ike_jax import presets
from ike_jax import resize
from ike_jax.estimators import blind as blind_estimator

FLAGS = flags.FLAGS
PRIORS = (1e-3, 3e-3)


def define_flags():
  flags.DEFINE_integer('scale', 2, '2 or 4.')
  flags.DEFINE_list('families', list(families.FAMILIES) + ['none'], 'Families.')
  flags.DEFINE_string('results', None, 'JSON written row by row.')


def main(argv):
  del argv
  s = FLAGS.scale
  cfg = presets.config_from_flagfile(presets.preset_path(f'blind_x{s}'))
  names = list(datasets.OFFLINE_IMAGES)
  out = {'scale': s, 'rows': []}
  for family in FLAGS.families:
    for i in datasets.indices(datasets.TUNING_IMAGES):
      lr, hr, _, _ = families.pair(i, family, s)
      bic = resize.bicubic_upscale(lr, s)
      base = metrics.compare(bic, hr, s)['psnr_y']
      gain = lambda sr: float(metrics.compare(sr, hr, s)['psnr_y'] - base)
      feats, k_blind, k_gauss = blind_estimator.features(lr, cfg)
      del feats['covariance']
      origin = (blind_estimator.SIZE // 2,) * 2
      row = {'family': family, 'image': names[i], **feats,
             'gaussian': gain(blind_families.back_project(
                 bic, lr, k_gauss, origin, blind_families.SPECTRAL_PRIOR[s], s))}
      for prior in PRIORS:
        row[f'blind_{prior:g}'] = gain(blind_families.back_project(bic, lr, k_blind, origin, prior, s))
      out['rows'].append(row)
      print(' '.join(f'{k} {v:.3f}' if isinstance(v, float) else f'{k} {v}'
                     for k, v in row.items()), flush=True)
      if FLAGS.results:
        outputs.write_json(FLAGS.results, out)


if __name__ == '__main__':
  define_flags()
  app.run(main)
