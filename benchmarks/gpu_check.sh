#!/usr/bin/env bash
# The one script to run on a lent GPU machine (see benchmarks/gpu_check.py): GPU-marked tests,
# then one table of timings. On a machine without CUDA it says so and skips the GPU rows.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q -m gpu tests/test_gpu.py || echo "gpu_check: GPU-marked tests failed (see above)"
python benchmarks/gpu_check.py
python benchmarks/score_metrics_device.py   # ldr score's metrics on CUDA vs CPU, same features (skips without CUDA)
