"""The precision policy: which dtype each language model extracts in, per device type, and why.

:func:`extraction_dtype` is the one place that decides it. Its callers:
``virnucpro extract`` (the ``--dtype`` default), the acceptance suite's
accuracy features (``ValidationRun.extraction_dtype``) and its as-deployed
timings (:func:`virnucpro_core.gate.benchmark.deployed_fast_settings`), so the
speed gate times the features the accuracy gate validated. The dtype is
recorded in every feature file (``meta["dtype"]``); a classifier must be fed
features of the dtype it was trained on, so prediction runs the protein model
in the dtype its checkpoint records.

=================  ===========  =======
model              CUDA         CPU
=================  ===========  =======
fastesm2_650       float16      float32
esm2_3b            float32      float32
dnabert_s          float32      float32
=================  ===========  =======

Evidence (``benchmarks/precision.py``; numbers in ``benchmarks/NOTES.md``,
"Extraction dtype"):

* **FastESM2 on a GPU: float16.** Its model card recommends fp16 (it was
  trained a further 50,000 steps in fp16 mixed precision) and the FastESM2
  fork of VirNucPro extracted in fp16. fp16 keeps 10 mantissa bits to bf16's
  7: on FastESM2_650's widths its pooled vectors are ~7x closer to float64
  (largest error 7e-4 of the largest component against 5e-3; smallest cosine
  1 − 2e-7 against 1 − 1.4e-5). Tensor cores run both at the same rate. fp16's
  risk is its range (±65,504): a non-finite vector is refused when features
  are merged, and ``--dtype float32`` is the way out.
* **Any model on the CPU: float32.** The CPU has no fast fp16 matmul (fp16
  measured 2.7x slower than fp32); bf16 is faster where the CPU has
  AVX512-BF16 (2.3x here) but 15,000x less exact than fp32 and 7x less than
  the fp16 of GPU features. CPU extraction serves tests, smoke runs and small
  inputs, where vectors closest to the GPU's fp16 ones matter more than speed.
* **ESM2 3B and DNABERT-S: float32**, as VirNucPro ran them: the baseline is
  validated and timed as it was deployed.
"""

from __future__ import annotations

DEFAULT_DTYPE = "float32"
# (model, device type) -> dtype, where it is not DEFAULT_DTYPE.
POLICY: dict[tuple[str, str], str] = {("fastesm2_650", "cuda"): "float16"}


def extraction_dtype(model_name: str, device_type: str) -> str:
    """The dtype ``model_name`` extracts in on a ``device_type`` device (``cuda``, ``cpu``...).

    Raises:
        InputError: an unknown model name (the error lists the allowed ones).
    """
    # The registry loads torch; the CLI's parser imports this module.
    from virnucpro_core.models.specs import get_spec

    get_spec(model_name)
    return POLICY.get((model_name, device_type), DEFAULT_DTYPE)

