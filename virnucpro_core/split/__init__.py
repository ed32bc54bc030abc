"""The test set: stratified, seeded, recorded in a manifest and read back from it.

* ``ids`` — the sample-id format and the seeded stratified choice of test and
  validation samples;
* ``records`` — the typed records: manifest, summary, paths, inputs, result;
* ``summary`` — a split's summary statistics;
* ``make`` — the inputs checked and read, the split made, applied to other
  embedders, written, and loaded back from its manifest;
* ``clusters`` — MMseqs2 protein clusters and the train-test identity search;
* ``lineage`` — which split a classifier was trained on, checked before it is judged on a test set.
"""
