#!/usr/bin/env bash
# The course's GPU check, a few minutes on a CUDA machine:  scripts/gpu_check.sh OUT_DIR
# 1. the GPU tests (pytest -m gpu), 2. the benchmark with and without AMP and torch.compile,
# 3. notebook 02 executed in full (not QUICK) on CUDA, with AMP: on $CIFAR10_ROOT when set, else
# on the generated stand-in (2,000 images: it shows the notebook runs on CUDA; seconds per epoch
# then come from the benchmark, which times CIFAR-10-sized epochs), 4. scripts/train_ddp.py under
# torchrun, one process per GPU (DistributedDataParallel, NCCL), on the same data.
# Outputs and times: OUT_DIR.
set -uo pipefail
out="${1:?usage: scripts/gpu_check.sh OUT_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
python="${PYTHON:-python}"
log() { echo "$(date +%T) $*" | tee -a "$out/times.txt"; }
timed() {  # timed NAME COMMAND...: run it, keep its output, note its seconds and exit code
  local name=$1; shift
  local start=$SECONDS
  "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  log "$name: exit $rc, $((SECONDS - start)) s"
}
"$python" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" > "$out/device.txt" 2>&1
nvidia-smi >> "$out/device.txt" 2>&1
timed gpu_tests "$python" -m pytest -m gpu tests/test_gpu.py -p no:xdist -o addopts="" -q
for flags in "" "--amp" "--compile" "--compile reduce-overhead" "--amp --compile"; do
  name="benchmark${flags// /_}"
  timed "${name//--/_}" "$python" -m lesson_utils.course.benchmark --device cuda --repeats 3 $flags
done
data="generated"
[ -n "${CIFAR10_ROOT:-}" ] && data="local"
timed notebook_02 "$python" -m papermill notebooks/02_training_on_gpu.ipynb "$out/02_training_on_gpu.ipynb" \
  -p DEVICE cuda -p DATA "$data" -p SEEDS 1 -p AMP True --cwd notebooks
# torchrun is `python -m torch.distributed.run`: this Python's; one process per GPU of the machine
timed ddp "$python" -m torch.distributed.run --standalone --nproc_per_node=$(nvidia-smi -L | wc -l) \
  scripts/train_ddp.py --data "$data" --epochs 3 --out "$out/convnet_ddp.pt"
log "done: $out"
