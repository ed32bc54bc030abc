"""Every on-disk layout the suite reads or writes, in one place.

* :mod:`virnucpro_core.layouts.features` — feature files: ours (per-model and
  merged), the original VirNucPro's (DNABERT-S, ESM and merged files) and the
  FastESM2 fork's (the same layouts, 1280-d protein vectors).
* :mod:`virnucpro_core.layouts.checkpoints` — MLP checkpoints: ours, the
  original's whole-module pickles and the fork's dicts, read without running
  pickled code.
* :mod:`virnucpro_core.layouts.pickles` — how: ``torch.save`` files read with
  ``torch.load(weights_only=True)`` after a scan that names every global the
  pickle holds, with inert placeholders for the classes a layout needs.

Each module detects a file's layout, loads and validates it, and names the
file, the layout found and the layout expected when something does not fit.
"""
