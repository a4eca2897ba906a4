#!/usr/bin/env bash
# The GPU checks of issue 11, as one call of the `device` tool on a lent GPU machine:
#
#   python benchmarks/device_prepare.py          # here, first: .device/ (the encoder, SST-2, SQuAD)
#   run(command="bash benchmarks/device_check.sh", carry=[".device"], timeout_s=600)
#
# 1. the tests' CUDA cases (training in fp32/bf16/fp16, resume mid-epoch with the GPU's RNG,
#    statistics on the device, runners on the GPU): the same tests a CPU runs, on the GPU;
# 2. SST-2 and SQuAD, textmaker against the HF Trainer at its best, on the GPU, sized to fit one
#    call (SIZES below; a session with more device time raises them).
# Everything lands in $OUT (the tool's folder that comes back), or ./device-out elsewhere.
set -uo pipefail
OUT=${OUT:-device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$PWD/.device/site" TEXTMAKER_BENCHMARK_DATA="$PWD/.device/data"
PY=${PYTHON:-python3}
SST2=${SST2:---limit 16000 --epochs 1}
SQUAD=${SQUAD:---train-limit 2000 --eval-limit 400 --epochs 1}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported(), 'transformers', transformers.__version__)"
  nproc; } 2>&1 | tee "$OUT/machine.txt"
[ -d .device/encoder ] || { echo "no .device/: run python benchmarks/device_prepare.py here and carry .device"; exit 2; }
$PY benchmarks/device_prepare.py --unpack || exit 2

timeout 150 $PY -m pytest -q -p no:cacheprovider -k cuda -rs \
    tests/test_training.py tests/test_precision.py tests/models/test_runner.py 2>&1 | tee "$OUT/cuda_tests.log"
tests=${PIPESTATUS[0]}

# shellcheck disable=SC2086  # the sizes are flags
timeout 240 $PY benchmarks/sst2_classifier.py $SST2 --systems textmaker,hf --out "$OUT/sst2.json" 2>&1 \
    | tee "$OUT/sst2.log"
sst2=${PIPESTATUS[0]}
# shellcheck disable=SC2086
timeout 170 $PY benchmarks/squad_qa.py $SQUAD --systems textmaker,hf --out "$OUT/squad.json" 2>&1 \
    | tee "$OUT/squad.log"
squad=${PIPESTATUS[0]}
# 124: that step ran out of its time (what it measured before is in its .json)
echo "exit: cuda tests $tests, sst2 $sst2, squad $squad" | tee "$OUT/exit.txt"
[ "$tests" -eq 0 ] && [ "$sst2" -eq 0 ] && [ "$squad" -eq 0 ]
