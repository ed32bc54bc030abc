"""Prediction: an MLP checkpoint applied to features or to a FASTA file.

* ``scoring`` — features scored by a checkpoint, frame calls and chunk calls;
* ``tables`` — prediction tables on disk: ours and the original's two result files;
* ``run`` — ``virnucpro predict`` in one pass over its input.
"""
