#!/bin/bash
# Accelerator call: images per hour against the number of images, for the paper
# preset (one training step, B images in one vmapped step) and the best presets
# (the whole CLI path), in one device call of about 8 minutes.
#
#   bash benchmarks/device/throughput.sh      # on the device machine; $OUT collects results
#
# Every command has its own timeout, and both scripts rewrite their JSON after
# every row, so a cut row loses only itself. The compile cache under $OUT/cache
# makes a rerun within the same call start warm. Tested on a CPU with
# XLA_FLAGS=--xla_force_host_platform_device_count=4 at tiny sizes
# (tests/test_speed_scripts.py); budget per line below is for an H200.
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; R=$OUT/r; mkdir -p "$R"
export JAX_COMPILATION_CACHE_DIR=$OUT/cache
exec > >(tee "$OUT/log_throughput.txt") 2>&1
nvidia-smi -L 2>/dev/null; python3 -c "import jax; print(jax.__version__, jax.devices())"
date
# paper_x2: one compile per B (27-55 s each on an H200 before), 10 timed steps.
timeout 240 python3 -m benchmarks.throughput --flagfile=flags/paper_x2.flags \
  --batch_sizes=1,8,32,100 --steps=10 --warmup=2 --repeats=1 --budget_s=10 \
  --results="$R/throughput_paper_x2.json"
# best_x2 / best_x4: the CLI path (estimate, bicubic, back-projection, outputs), cold and warm.
timeout 120 python3 -m benchmarks.throughput --flagfile=flags/best_x2.flags --pipeline \
  --lr_side=128 --batch_sizes=1,8,32,100 --results="$R/throughput_best_x2.json"
timeout 120 python3 -m benchmarks.throughput --flagfile=flags/best_x4.flags --pipeline \
  --lr_side=96 --batch_sizes=1,8,32 --results="$R/throughput_best_x4.json"
date
