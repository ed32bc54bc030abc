"""The language models VirNucPro embeds with: which they are, and how each is loaded offline.

* ``specs`` — the registry: ESM2 3B, FastESM2_650, DNABERT-S and their tiny
  stand-ins, each with its identity (model type, layers, width, heads, vocabulary);
* ``hub_cache`` — where a model's weights are: a local directory or the HF cache;
* ``registry`` — loading: devices and dtypes, identity checks, vocabulary
  fingerprints, writing stand-ins;
* ``esm``, ``esm_config`` — ESM-2 / FastESM2 checkpoints, vocabulary and config.json;
* ``dnabert``, ``dnabert_tokenizer`` — DNABERT-S: config, architecture and
  checkpoint; its tokenizer files and the stand-in tokenizer;
* ``precision`` — the extraction-dtype policy;
* ``parity`` — our FastESM2 vectors against the snapshot's own modelling code.
"""
