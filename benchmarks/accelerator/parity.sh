#!/bin/bash
# On a GPU host: parity on the astronaut input (benchmarks/parity.py), both
# codes on one GPU, and the x4 lever rows, all at once, each under a timeout.
#
#   bash benchmarks/accelerator/parity.sh RESULTS_DIR
#
# Needs in the repository folder (none of it is committed):
#   .ref/src          the authors' PyTorch src/ (bingbingwei/IKE-InvertibleKernelEstimator);
#                     benchmarks/torch_ref/record.py seeds their train.py, stubs
#                     tensorboardX and the unused ZSSR stage's tensorflow import, and
#                     turns TF32 off
#   .ref/in, .ref/hr  astr.png: the parity LR (256x256) and HR (benchmarks/parity.py)
#   gpu_run/offline_x4  the x4 offline set (--hr_size=384), as levers_x4.json used
# Writes RESULTS_DIR/log_parity.txt and RESULTS_DIR/r/ (JSON reports, PyTorch SR images).
set -u
DIR=${1:?usage: bash benchmarks/accelerator/parity.sh RESULTS_DIR}
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_DEFAULT_MATMUL_PRECISION=highest
R=$DIR/r; mkdir -p "$R"
exec > >(tee "$DIR/log_parity.txt") 2>&1
nvidia-smi -L; python3 -c "import torch, jax; print(torch.__version__, jax.__version__, jax.devices())"
# Overridable, e.g. a dry run on a CPU:
#   T=900 SEEDS=1 ITERS=2 TORCH_PY=/tmp/ptvenv/bin/python LEV_EXTRA="--iterations=2 --num_images=1 --seeds=1 --zssr_steps=2" bash benchmarks/accelerator/parity.sh /tmp/p
# TORCH_ONLY=1 runs the PyTorch part alone (sharing the GPU and 16 cores with the
# JAX jobs slowed it to 0.75 s/step).
T=${T:-450}; SEEDS=${SEEDS:-4}; ITERS=${ITERS:-1000}; TORCH_PY=${TORCH_PY:-python3}; TORCH_ONLY=${TORCH_ONLY:-0}
FIRST_SEED=${FIRST_SEED:-0}  # PyTorch runs use seeds FIRST_SEED ... FIRST_SEED+SEEDS-1
LEV_EXTRA=${LEV_EXTRA:-}; PIDS=""
README_FLAGS="--z_up ZSSR --INN --test --tri_channel --use_res --linear --other_loss interpolation_loss cycle_consistency --scale_factor 0.5 --INN_down space2depth"
for s in $(seq $FIRST_SEED $((FIRST_SEED + SEEDS - 1))); do
  ( cp -r .ref/src /tmp/ref$s
    OMP_NUM_THREADS=${TORCH_THREADS:-1} timeout $T $TORCH_PY benchmarks/torch_ref/record.py /tmp/ref$s $s -i $PWD/.ref/in -e $PWD/.ref/hr \
      -o /tmp/ref$s/out $README_FLAGS --tb_name s$s --max_iters $ITERS > "$R/torch_$s.log" 2>&1
    cp "/tmp/ref$s/out/astr/SR_additive_['space2depth'].png" "$R/torch_sr_$s.png" ) &
  PIDS="$PIDS $!"
done
if [ "$TORCH_ONLY" != 1 ]; then
timeout $T python3 -m benchmarks.parity --flagfile=flags/paper_x2.flags --iterations=$ITERS --seeds=$SEEDS \
  --metrics_every=250 --output_dir=/tmp/parity --results="$R/parity_jax.json" > "$R/parity_jax.log" 2>&1 &
PIDS="$PIDS $!"
LEV="--flagfile=flags/demo_x4.flags --dataset=offline --root=gpu_run/offline_x4 --hr_size=384 --num_images=4 --seeds=3 --noceilings --zssr_steps=1000 $LEV_EXTRA"
timeout $T python3 -m benchmarks.levers $LEV --noexact --results="$R/levers_x4_rows.json" > "$R/levers_rows.log" 2>&1 &
PIDS="$PIDS $!"
timeout $T python3 -m benchmarks.levers $LEV --nopreset_rows --exact --results="$R/levers_x4_exact.json" > "$R/levers_exact.log" 2>&1 &
PIDS="$PIDS $!"
fi
wait $PIDS  # not a bare `wait`: that would also wait for the `tee` above
[ "${SCORE:-1}" = 1 ] && JAX_PLATFORMS=cpu python3 -m benchmarks.parity --score_label=pytorch_gpu --output_dir=/tmp/parity \
  $(for f in "$R"/torch_sr_*.png; do echo --score_sr=$f; done) --results="$R/parity_torch.json"
for f in "$R"/*.log; do tail -c 300 "$f"; echo; done
