#!/bin/bash
# On a GPU host: images per hour against the number of images, for the paper
# preset (one training step, B images in one vmapped step, split over every
# device) and the best presets (the whole CLI path), in about 8 minutes on an
# NVIDIA H200.
#
#   bash benchmarks/accelerator/throughput.sh RESULTS_DIR
#
# Every command has its own timeout, and both scripts rewrite their JSON after
# every row, so a cut row loses only itself. The compile cache under
# RESULTS_DIR/cache makes a rerun start warm. Tested on a CPU with
# XLA_FLAGS=--xla_force_host_platform_device_count=4 at tiny sizes
# (tests/test_speed_scripts.py); the timeouts below are for an H200.
set -u
DIR=${1:?usage: bash benchmarks/accelerator/throughput.sh RESULTS_DIR}
export PYTHONUNBUFFERED=1
mkdir -p "$DIR"
export JAX_COMPILATION_CACHE_DIR=$DIR/cache
exec > >(tee "$DIR/log_throughput.txt") 2>&1
nvidia-smi -L 2>/dev/null; python3 -c "import jax; print(jax.__version__, jax.devices())"
date
# paper_x2: one compile per B (27-55 s each on an H200), 10 timed steps.
timeout 240 python3 -m benchmarks.throughput --flagfile=flags/paper_x2.flags \
  --batch_sizes=1,8,32,100 --steps=10 --warmup=2 --repeats=1 --budget_s=10 \
  --results="$DIR/throughput_paper_x2.json"
# best_x2 / best_x4: the CLI path (estimate, bicubic, back-projection, outputs), cold and warm.
timeout 120 python3 -m benchmarks.throughput --flagfile=flags/best_x2.flags --pipeline \
  --lr_side=128 --batch_sizes=1,8,32,100 --results="$DIR/throughput_best_x2.json"
timeout 120 python3 -m benchmarks.throughput --flagfile=flags/best_x4.flags --pipeline \
  --lr_side=96 --batch_sizes=1,8,32 --results="$DIR/throughput_best_x4.json"
date
