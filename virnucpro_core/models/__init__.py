"""The language models VirNucPro embeds with: which they are, and how each is loaded offline.

* ``registry`` — the model registry (ESM2 3B, FastESM2_650, DNABERT-S and their
  tiny stand-ins), model identity, loading from a local directory or the HF cache;
* ``esm``, ``esm_config`` — ESM-2 / FastESM2 checkpoints, vocabulary and config.json;
* ``dnabert`` — DNABERT-S: config, architecture, checkpoint and stand-in tokenizer;
* ``precision`` — the extraction-dtype policy;
* ``parity`` — our FastESM2 vectors against the snapshot's own modelling code.
"""
