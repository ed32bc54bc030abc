"""FastESM2_650 against ESM2 3B on the same test set.

* ``rules`` — the gates' pass rules (accuracy drop strictly below, time ratio at most);
* ``pairing`` — what may be compared: the models claimed, classifiers of one split, its test set, the same samples;
* ``comparison`` — the accuracy drop with its paired CI and McNemar test (decided by ``gate.gates``);
* ``report`` — the comparison's markdown and JSON;
* ``figures`` — its PNG figures.
"""
