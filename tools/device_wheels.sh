#!/usr/bin/env bash
# Wheels the lent GPU machine lacks, for carrying there (it cannot download). Its image (seen
# 2026-12-04: Python 3.12, torch 2.11.0+cu130, transformers 5.17.0) has torch, transformers, pytest,
# scipy, scikit-learn, pandas, matplotlib, tqdm, einops and hypothesis, but not Biopython or
# pytest-html, and its pytest-benchmark 5.2.3 is older than ours (5.2 takes --benchmark-json as an
# open file: the suite crashed at its end). einops is carried too: FastESM2's own code imports it.
#
#   tools/device_wheels.sh            # here, once: writes .whl/ (ignored by git)
#   tools/gpu_check.sh installs from .whl/ whatever pyproject.toml asks for and the machine lacks;
#   for another command, carry [".whl"] and start it with:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:. || exit
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl
# The device runs CPython 3.12 on x86-64 Linux.
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl biopython==1.88 pytest-html==4.2.0 pytest-metadata==3.1.1 pytest-benchmark==5.3.1 einops==0.8.2
ls -l .whl
