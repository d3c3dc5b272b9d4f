#!/bin/bash
export PYTHONUNBUFFERED=1 JAX_DEFAULT_MATMUL_PRECISION=highest
mkdir -p $OUT/r
for v in unfused fused bf16; do
  case $v in fused) extra="";; bf16) extra="--compute_dtype=bfloat16";; unfused) extra="--nofuse_linear";; esac
  timeout 115 python3 -m benchmarks.quality --dataset=offline --root=gpu_run/offline --num_images=4 --seeds=3 \
    --flagfile=flags/demo.flags $extra --metrics_every=100 --output_dir=/tmp/q_$v --results=$OUT/r/quality_gpu_$v.json 2>&1 | grep -v "^I1126\|^W1126" | tail -12
  tar czf $OUT/results2.tgz -C $OUT r
done
