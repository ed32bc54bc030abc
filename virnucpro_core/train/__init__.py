"""VirNucPro's classifier and its training.

* ``classifier`` — the original MLP and what a checkpoint says about it;
* ``training`` — seeded, streamed training at the original hyperparameters, early stopping.
"""
