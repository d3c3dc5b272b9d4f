"""ike_jax: IKE (Invertible Kernel Estimator, "Find The Way Back") in JAX.

Zero-shot blind super-resolution: from one low-resolution image alone, learn an
invertible network whose forward pass is the image's own down-scaling and whose
inverse super-resolves it 2x or 4x.
"""

__version__ = "0.2.0"
