"""The classifier's training (the MLP itself is :mod:`virnucpro_core.models.classifier`).

* ``results`` — the training's configuration, its history epoch by epoch, its result and checkpoint writing;
* ``training`` — seeded, streamed training at the original hyperparameters, early stopping.
"""
