#!/usr/bin/env bash
# Everything a lent GPU should measure, in one run (tools/gpu_check.py says what and why):
# versions and nvidia-smi, extraction throughput of FastESM2 (naive loop, eager as deployed until now,
# the deployed packed path with its compile cost, a profiler trace per path) and of ESM2 3B (fp32 as
# VirNucPro ran it, fp16), and the acceptance suite's speed gate on the real architectures with the
# projection of a whole run (--samples N: your run's size).
# Each step has a time limit (8 minutes in all on one H100/H200); files go to $OUT (default
# gpu_check_out/), with summary.json rewritten after every step. Missing Python packages are
# installed from .whl/ (make it with tools/device_wheels.sh on a machine with network).
#
#   tools/gpu_check.sh            # on the GPU machine
#   tools/gpu_check.sh --samples 2000000   # ... projecting a run of 2 million samples
#   tools/gpu_check.sh --cpu      # the same steps on the CPU with tiny stand-ins (~4 min; CI runs it)
#
# Exit status 0 when every step ran and measured; the summary holds the verdicts.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" tools/gpu_check.py --python "$PYTHON" "$@"
