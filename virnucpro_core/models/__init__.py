"""The models: the language models VirNucPro embeds with (which they are, how each is loaded offline) and its MLP.

* ``specs`` — the registry: ESM2 3B, FastESM2_650, DNABERT-S and their tiny
  stand-ins, each with its identity (model type, layers, width, heads, vocabulary);
* ``hub_cache`` — where a model's weights are: a local directory or the HF cache;
* ``hub_weights`` — a model directory's weights (``model.safetensors``, ``pytorch_model.bin``,
  or either sharded with an index): which files, the tensors' shapes, the state dict;
* ``registry`` — loading: devices and dtypes, identity checks, vocabulary
  fingerprints, writing stand-ins;
* ``esm``, ``esm_config`` — ESM-2 / FastESM2 checkpoints, vocabulary and config.json;
* ``dnabert``, ``dnabert_config``, ``dnabert_tokenizer`` — DNABERT-S: architecture and
  checkpoint; its config.json; its tokenizer files and the stand-in tokenizer;
* ``precision`` — the extraction-dtype policy;
* ``classifier`` — VirNucPro's MLP and what a checkpoint says about it.
"""
