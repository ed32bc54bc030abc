"""Choices and defaults the subcommand parsers show, kept free of heavy imports.

The library modules that own these values import torch, transformers, scipy or
matplotlib at load time (seconds), and ``virnucpro --help`` must not pay for
that. So the parsers read plain copies from here and each command's ``run``
imports the library. ``tests/test_cli_startup.py`` checks every copy against
the library's own value, so the two cannot drift apart silently.
"""

from __future__ import annotations

# One default seed for every command: split, training, bootstrap and stand-in weights.
SEED = 42

# virnucpro_core.models: SPECS (name, display name, embedding width), WEIGHTS, SIZES, DTYPES.
MODELS: tuple[tuple[str, str, int], ...] = (
    ("esm2_3b", "ESM2 3B", 2560),
    ("fastesm2_650", "FastESM2_650", 1280),
    ("dnabert_s", "DNABERT-S", 768),
)
WEIGHTS = ("pretrained", "random")
SIZES = ("tiny", "full")
DTYPES = ("float32", "float16", "bfloat16")
# virnucpro_core.precision: POLICY ((model, device type) -> dtype) and DEFAULT_DTYPE for every other pair.
DTYPE_POLICY = {("fastesm2_650", "cuda"): "float16"}
DEFAULT_DTYPE = "float32"

# virnucpro_core.embeddings.DEFAULT_TOKS_PER_BATCH, by model family.
TOKS_PER_BATCH = {"esm": 8192, "dnabert": 16384}
# virnucpro_core.features: LABELS (names in label order viral, host) and DEFAULT_SHARD_SIZE.
LABELS = ("viral", "host")
SHARD_SIZE = 2000
# virnucpro_core.distributed.DEFAULT_TIMEOUT_S: seconds torchrun's processes wait for one that shows no progress.
RANK_TIMEOUT = 1800.0
# virnucpro_core.prediction.DEFAULT_CHUNK_SIZE
CHUNK_SIZE = 300
# virnucpro_core.sequences.DEFAULT_BLOCK_BASES: bases per unit of preprocess work
BLOCK_BASES = 500_000
# virnucpro_core.split.GROUP_BY_CHOICES
GROUP_BY_CHOICES = ("sample", "source")
# virnucpro_core.training: SAVE_CHOICES and the TrainingConfig defaults `virnucpro train` exposes.
SAVE_CHOICES = ("final", "best")
TRAINING = {"patience": 5, "save": "final", "max_epochs": 200, "val_fraction": 0.1, "device": "auto"}
# virnucpro_core.comparison.DEFAULT_NAMES: display names of the fast and the baseline model.
COMPARE_NAMES = ("FastESM2_650", "ESM2 3B")
