"""Embedding extraction: per-model vectors, merged DNA ‖ protein features.

* ``embeddings`` — token-budget batching, tokenisation and pooling;
* ``forward`` — how an ESM model's batches run: eager, compiled over length buckets, or packed (FlexAttention);
* ``features`` — cached, resumable extraction into feature files;
* ``merged`` — the two embedders' feature files joined by id, DNA first, checked;
* ``reuse`` — features a run need not extract: the DNABERT-S block of merged files the user has;
* ``parity`` — our FastESM2 vectors against the snapshot's own modelling code;
* ``distributed`` — extraction under torchrun: shards per rank, device, agreement and failure.
"""
