"""The test set: stratified, seeded, recorded in a manifest and read back from it.

* ``make`` — the id format, stratified selection, the manifest and summary,
  making, applying and loading a split;
* ``clusters`` — MMseqs2 protein clusters and the train-test identity search.
"""
