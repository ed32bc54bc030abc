"""The classifier's training (the MLP itself is :mod:`virnucpro_core.models.classifier`).

* ``training`` — seeded, streamed training at the original hyperparameters, early stopping.
"""
