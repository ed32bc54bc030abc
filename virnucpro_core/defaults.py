"""The library's defaults and choices: the one definition of each, free of heavy imports.

The modules that use these values (``models``, ``training``, ``features``...)
import them from here, and so do the ``virnucpro`` subcommands' parsers and the
acceptance suite's option table (:mod:`virnucpro_core.gate.options`). Those modules
import torch, transformers or scipy at load time (seconds), and
``virnucpro --help`` must not pay for that (``tests/test_cli.py``), so
this module imports nothing of the project or beyond the standard library.
"""

from __future__ import annotations

from typing import NamedTuple

# One default seed for every command and the suite: split, training, bootstrap and stand-in weights.
SEED = 42
# torch.manual_seed takes a signed 64-bit integer.
MAX_SEED = 2**63 - 1


class Model(NamedTuple):
    """A language model of the registry; :data:`virnucpro_core.models.specs.SPECS` is built from these."""

    name: str
    display_name: str
    hub_id: str
    family: str  # esm (protein) or dnabert (DNA): decides tokenizer and pooling
    # What its config.json states (virnucpro_core.models.specs.ModelIdentity): model_type, layers, width, heads, vocabulary.
    identity: tuple[str, int, int, int, int]

    @property
    def dim(self) -> int:
        """Embedding width of the real model."""
        return self.identity[2]


MODELS: tuple[Model, ...] = (
    Model("esm2_3b", "ESM2 3B", "facebook/esm2_t36_3B_UR50D", "esm", ("esm", 36, 2560, 40, 33)),
    Model("fastesm2_650", "FastESM2_650", "Synthyra/FastESM2_650", "esm", ("fast_esm", 33, 1280, 20, 33)),
    # model_type "bert": DNABERT-S's config.json (its remote code's BertConfig), 4096 BPE tokens.
    Model("dnabert_s", "DNABERT-S", "zhihan1996/DNABERT-S", "dnabert", ("bert", 12, 768, 12, 4096)),
)
HUB_IDS = {model.name: model.hub_id for model in MODELS}
# Human names of the models ('esm2_3b' → 'ESM2 3B'), as reports, figures and messages print them.
DISPLAY_NAMES = {model.name: model.display_name for model in MODELS}
WEIGHTS = ("pretrained", "random")
SIZES = ("tiny", "full")
DTYPES = ("float32", "float16", "bfloat16")
DEVICE = "auto"  # CUDA when available, else the CPU
# How an ESM model's batches run (virnucpro_core/extract/forward.py): auto picks per model and device (packed for
# FastESM2 on a GPU, eager elsewhere); eager is transformers' model as it is; compiled and packed use torch.compile.
EXTRACTION_PATHS = ("auto", "eager", "compiled", "packed")
EXTRACTION_PATH = "auto"

# Class names and their labels in merged feature files.
LABELS = {"viral": 1, "host": 0}

# Default token budget per batch (padded tokens, specials included), by model family.
# ESM: VirNucPro's extract_esm used 2048 for ESM2 3B; 8192 keeps a 3B forward
# pass under ~2 GB of activations while filling an 80 GB GPU far better. Higher
# budgets mean fewer, larger batches: faster on a GPU until memory runs out.
# DNABERT-S (110M parameters, ~100 tokens per 500 bp window) affords twice that;
# the original embedded one sequence at a time.
TOKS_PER_BATCH = {"esm": 8192, "dnabert": 16384}
# Records per resumable shard of an extraction.
SHARD_SIZE = 2000
# Seconds a rank of a torchrun job waits for a silent peer (no finished shard, no answer) before naming it stalled.
RANK_TIMEOUT_S = 1800.0
# Chunk length in bases, VirNucPro's smaller model's.
CHUNK_SIZE = 300
# Bases per unit of parallel preprocess work (about 3 MB of input and output text per block, 1,700 chunks of 300).
BLOCK_BASES = 500_000

# Share of each class held out as the test set (VirNucPro's 10 %): `virnucpro split`'s default and the suite's.
TEST_FRACTION = 0.1
# Units of the split's test draw that `virnucpro split --group-by` offers.
GROUP_BY_CHOICES = ("sample", "source")

# Training (virnucpro_core.train.training.TrainingConfig): the defaults `virnucpro train` and the suite expose, VirNucPro's.
MAX_EPOCHS = 200
PATIENCE = 5
VAL_FRACTION = 0.1
SAVE_CHOICES = ("final", "best")  # final: weights after the last epoch; best: lowest validation loss
SAVE = "final"

# The gates: ESM2 3B accuracy − FastESM2 accuracy strictly below MAX_ACCURACY_DROP; FastESM2 embedding time /
# ESM2 3B embedding time at most MAX_TIME_RATIO.
MAX_ACCURACY_DROP = 0.05
MAX_TIME_RATIO = 0.5
# The two protein embedders the suite compares, by role, and the DNA embedder they share.
EMBEDDERS = {"fast": "fastesm2_650", "baseline": "esm2_3b"}
DNA_MODEL = "dnabert_s"
# Their display names in the reports: one model order everywhere, the baseline first.
EMBEDDER_NAMES = {role: DISPLAY_NAMES[EMBEDDERS[role]] for role in ("baseline", "fast")}
# Display names of the fast and the baseline model in a comparison.
COMPARE_NAMES = (EMBEDDER_NAMES["fast"], EMBEDDER_NAMES["baseline"])
# Their family names, as the speed gate's sentences name them.
EMBEDDER_FAMILIES = {"fast": "FastESM2", "baseline": "ESM2 3B"}

# Evidence beside the gate: MMseqs2 clustering of the clustered split (identity as Jaeger; coverage MMseqs2's own),
# the prevalence precision and FDR are reweighted to, and the per-record rule.
CLUSTER_IDENTITY = 0.6
CLUSTER_COVERAGE = 0.8
VIRAL_PREVALENCE = "1:19"
RECORD_RULE = "mean"
