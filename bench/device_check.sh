#!/usr/bin/env bash
# The GPU checks of the tracer attributor, as one command for the device machine (see bench/attribution.md):
#   here:   ./bench/device_wheels.sh          (fills .whl/ with what the GPU image lacks)
#   device: run(command="bash bench/device_check.sh", carry=[".whl"], timeout_s=540)
# 1. the tracer and GRPO tests on CUDA (bf16, SDPA, prefix reuse == no reuse == plain generate);
# 2. bench/attribution.py at the Qwen3-8B shape on the Who&When Hand-Crafted lengths.
# Logs go to $OUT (the device tool brings that folder back), else to out/device/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out/device}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD:$PWD/collector:$PWD/integrations" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
  | tee -a "$OUT/gpu.txt"
AGENTTRACE_TEST_DEVICE=cuda timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" \
  tests/test_tracer_attributor.py tests/test_train.py 2>&1 | tee "$OUT/tests.log"
tests=${PIPESTATUS[0]}
timeout 330 python3 bench/attribution.py "$@" 2>&1 | tee "$OUT/bench.log"
bench=${PIPESTATUS[0]}
echo "tests exit $tests, bench exit $bench" | tee -a "$OUT/gpu.txt"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
