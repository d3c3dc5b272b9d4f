#!/bin/bash
# GPU call 1: speed table and fused/unfused/bf16 quality.
export PYTHONUNBUFFERED=1
R=$OUT/r; mkdir -p $R
# gpu_run/offline: the offline set, built beforehand on the CPU machine with
#   python -c "from benchmarks import datasets; datasets.offline('gpu_run/offline', scale=2, num_images=4)"
exec > >(tee $OUT/log1.txt) 2>&1
nvidia-smi -L; python3 -c "import jax, flax, optax; print(jax.__version__, flax.__version__, optax.__version__, jax.devices())"
date +%s > $R/t0
timeout 130 python3 -m benchmarks.speed --presets=paper_x2 --variants=fused,fused_bf16,unfused --nocomponents --steps=10 --warmup=3 --repeats=3 --budget_s=10 --results=$R/speed_gpu_paper_x2.json
timeout 110 python3 -m benchmarks.speed --presets=paper_x4,demo --variants=fused,fused_bf16 --nocomponents --steps=10 --warmup=3 --repeats=3 --budget_s=10 --results=$R/speed_gpu_x4_demo.json
export JAX_DEFAULT_MATMUL_PRECISION=highest
for v in fused bf16 unfused; do
  case $v in fused) extra="";; bf16) extra="--compute_dtype=bfloat16";; unfused) extra="--nofuse_linear";; esac
  timeout 90 python3 -m benchmarks.quality --dataset=offline --root=gpu_run/offline --num_images=4 --seeds=3 \
    --flagfile=flags/demo.flags $extra --output_dir=/tmp/q_$v --results=$R/quality_gpu_$v.json | tail -25
done
date +%s >> $R/t0
tar czf $OUT/results1.tgz -C $OUT r
