#!/bin/bash
# On a GPU host: the training-step speed table (paper_x2 fused, bf16 and
# unfused; paper_x4 and demo) and the demo preset's quality fused, in bf16 and
# unfused, each command under its own timeout (sized for an NVIDIA H200).
#
#   bash benchmarks/accelerator/speed.sh RESULTS_DIR
#
# Writes RESULTS_DIR/log_speed.txt, the JSON reports, and the offline set it
# builds first (RESULTS_DIR/offline; no download). benchmarks/RESULTS.md,
# "Speed on a GPU", has what it measured.
set -u
DIR=${1:?usage: bash benchmarks/accelerator/speed.sh RESULTS_DIR}
export PYTHONUNBUFFERED=1
mkdir -p "$DIR"
exec > >(tee "$DIR/log_speed.txt") 2>&1
nvidia-smi -L; python3 -c "import jax, flax, optax; print(jax.__version__, flax.__version__, optax.__version__, jax.devices())"
date
JAX_PLATFORMS=cpu python3 -c "from benchmarks import datasets; datasets.offline('$DIR/offline', scale=2, num_images=4)"
timeout 130 python3 -m benchmarks.speed --presets=paper_x2 --variants=fused,fused_bf16,unfused --nocomponents --steps=10 --warmup=3 --repeats=3 --budget_s=10 --results="$DIR/speed_gpu_paper_x2.json"
timeout 110 python3 -m benchmarks.speed --presets=paper_x4,demo --variants=fused,fused_bf16 --nocomponents --steps=10 --warmup=3 --repeats=3 --budget_s=10 --results="$DIR/speed_gpu_x4_demo.json"
export JAX_DEFAULT_MATMUL_PRECISION=highest
for v in fused bf16 unfused; do
  case $v in fused) extra="";; bf16) extra="--compute_dtype=bfloat16";; unfused) extra="--nofuse_linear";; esac
  timeout 90 python3 -m benchmarks.quality --dataset=offline --root="$DIR/offline" --num_images=4 --seeds=3 \
    --flagfile=flags/demo.flags $extra --output_dir="$DIR/q_$v" --results="$DIR/quality_gpu_$v.json" | tail -25
done
date
