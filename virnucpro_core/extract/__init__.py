"""Embedding extraction: per-model vectors, merged DNA ‖ protein features.

* ``embeddings`` — token-budget batching, tokenisation and pooling;
* ``features`` — cached, resumable extraction into feature files;
* ``merged`` — the two embedders' feature files joined by id, DNA first, checked;
* ``distributed`` — extraction under torchrun: shards per rank, device, agreement and failure.
"""
