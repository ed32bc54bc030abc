"""Core library of the VirNucPro FastESM2 acceptance suite.

The modules read as the pipeline: ``sequences`` (chunks and frames) →
``embeddings`` (per-model vectors) → ``features`` (merged files) → ``split`` →
``classifier`` / ``training`` → ``metrics`` → ``comparison`` → ``report``.
"""

__version__ = "0.1.0"
