"""Every on-disk layout the suite reads or writes, in one place.

* :mod:`virnucpro_core.layouts.features` — our feature files (per-model and
  merged), views (a split's sides, imports: which file and row each sample
  is), and how any feature file is told apart.
* :mod:`virnucpro_core.layouts.virnucpro` — the original VirNucPro's feature
  files (DNABERT-S, ESM and merged) and the FastESM2 fork's (the same layouts,
  1280-d protein vectors): data_merge trees, declared provenance, import.
* :mod:`virnucpro_core.layouts.checkpoints` — MLP checkpoints: ours, the
  original's whole-module pickles and the fork's dicts, read without running
  pickled code.
* :mod:`virnucpro_core.layouts.pickles` — how: ``torch.save`` files read with
  ``torch.load(weights_only=True)`` after a scan that names every global the
  pickle holds, with inert placeholders for the classes a layout needs.
* :mod:`virnucpro_core.layouts.predictions` — prediction tables: ours and the
  original's ``prediction_results.txt`` / ``prediction_results_highestscore.csv``.
* :mod:`virnucpro_core.layouts.hub_weights` — a Hugging Face model directory's
  weights (``model.safetensors``, ``pytorch_model.bin``, or either sharded with
  an index): which files, the tensors' shapes, the state dict; read for ESM-2,
  FastESM2 and DNABERT-S alike.
* :mod:`virnucpro_core.layouts.rows` — the one row container (ids, vectors,
  protein lengths, meta) every feature layout is read into.
* :mod:`virnucpro_core.layouts.store` — feature rows read from disk on demand
  (``os.preadv`` into one buffer), so memory stays bounded at any scale.

Each module detects a file's layout, loads and validates it, and names the
file, the layout found and the layout expected when something does not fit.
"""
