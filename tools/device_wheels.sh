#!/usr/bin/env bash
# Wheels the lent GPU machine lacks, for carrying there (it cannot download).
# Its image has torch, transformers, pytest, pytest-benchmark, scipy, scikit-learn,
# pandas, matplotlib, tqdm and hypothesis, but not Biopython or pytest-html; nor, as far as that list
# says, einops, which FastESM2's own code imports (the parity check runs it: virnucpro_core.parity).
#
#   tools/device_wheels.sh            # here, once: writes .whl/ (ignored by git)
#   carry [".whl"], and start each device command with:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:. || exit
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl
# The device runs CPython 3.12 on x86-64 Linux.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl biopython==1.88 pytest-html==4.2.0 pytest-metadata==3.1.1 einops==0.8.2
ls -l .whl
