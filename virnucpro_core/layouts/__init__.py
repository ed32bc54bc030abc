"""Every on-disk layout the suite reads or writes, in one place.

* :mod:`virnucpro_core.layouts.features` — our feature files (per-model and
  merged), views (a split's sides, imports: which file and row each sample
  is), and how any feature file is told apart.
* :mod:`virnucpro_core.layouts.virnucpro` — the original VirNucPro's feature
  files (DNABERT-S, ESM and merged) and the FastESM2 fork's (the same layouts,
  1280-d protein vectors): data_merge trees, import; :mod:`virnucpro_core.layouts.declarations` —
  the provenance a user declares for them (model, dtype, weights).
* :mod:`virnucpro_core.layouts.checkpoints` — MLP checkpoints: ours, the
  original's whole-module pickles and the fork's dicts, read without running
  pickled code; :mod:`virnucpro_core.layouts.foreign_checkpoints` — how the
  original's and the fork's payloads become our checkpoint meta and state dict.
* :mod:`virnucpro_core.layouts.rows` — the one row container (ids, vectors,
  protein lengths, meta) every feature layout is read into.
* :mod:`virnucpro_core.layouts.store` — feature rows read from disk on demand
  (``os.preadv`` into one buffer), so memory stays bounded at any scale.

Elsewhere, where their dependencies put them: how ``torch.save`` files are read
without running code (:mod:`virnucpro_core.pickles`), a model directory's weights
(:mod:`virnucpro_core.models.hub_weights`) and the prediction tables
(:mod:`virnucpro_core.predict.tables`).

Each module detects a file's layout, loads and validates it, and names the
file, the layout found and the layout expected when something does not fit.
"""
