"""Embedding extraction: per-model vectors, merged DNA ‖ protein features.

* ``embeddings`` — token-budget batching, tokenisation and pooling;
* ``forward`` — how an ESM model's batches run: eager, compiled over length buckets, or packed (FlexAttention);
* ``features`` — cached, resumable extraction and merging of the two embedders;
* ``reuse`` — features a run need not extract: the DNABERT-S block of merged files the user has;
* ``distributed`` — extraction under torchrun: shards per rank, device, agreement and failure.
"""
