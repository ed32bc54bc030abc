"""How well a classifier does on the test set.

* ``predictions`` — one model's calls on a test set (frame calls, saved as JSON or ``.npz``);
* ``bootstrap`` — the one seeded paired bootstrap behind every confidence interval;
* ``metrics`` — frame-level metrics with bootstrap CIs, per-length accuracy;
* ``resampled`` — every metric of a batch of bootstrap resamples at once (the metrics' CIs);
* ``aggregation`` — VirNucPro's chunk rule (the one entry point) and the per-record rule;
* ``calibration`` — Brier score, expected calibration error, prevalence-reweighted precision.
"""
