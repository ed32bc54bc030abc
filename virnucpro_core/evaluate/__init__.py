"""How well a classifier does on the test set.

* ``metrics`` — frame-level metrics with bootstrap CIs, per-length accuracy;
* ``aggregation`` — VirNucPro's chunk rule (the one entry point) and the per-record rule;
* ``calibration`` — Brier score, expected calibration error, prevalence-reweighted precision.
"""
