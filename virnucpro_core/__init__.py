"""Core library of the VirNucPro FastESM2 acceptance suite.

The packages read as the pipeline, each depending only on those before it:

* :mod:`~virnucpro_core.layouts` — every file format on disk (features, views,
  checkpoints, predictions, hub weights) and the rows read from them;
* :mod:`~virnucpro_core.preprocess` — DNA → chunks → six frames → stop-free frames;
* :mod:`~virnucpro_core.models` — the three language models: registry, offline
  loading, checkpoints, precision policy, parity with FastESM2's own code;
* :mod:`~virnucpro_core.extract` — batched embedding, merging DNA ‖ protein,
  resumable and distributed extraction;
* :mod:`~virnucpro_core.split` — the stratified test set, its manifest, MMseqs2 clusters;
* :mod:`~virnucpro_core.train` — VirNucPro's MLP and its seeded training;
* :mod:`~virnucpro_core.evaluate` — metrics with bootstrap CIs, the chunk and
  record rules, calibration;
* :mod:`~virnucpro_core.predict` — scoring features, ``virnucpro predict``;
* :mod:`~virnucpro_core.compare` — FastESM2 against ESM2 3B: the accuracy
  comparison, its figures and reports;
* :mod:`~virnucpro_core.gate` — the acceptance run: options, cached stages,
  the two gates, evidence, verdict and reports;
* :mod:`~virnucpro_core.commands` and ``cli`` — the thin ``virnucpro`` command.

Shared by all: ``defaults`` (every default and choice, no heavy imports),
``errors``, ``files`` (atomic writes, digests), ``custody`` (content records:
a file is reused or read through a view only while it holds what was
recorded), ``code_identity`` (which code computed a stage, a feature file or
a checkpoint), ``outputs`` (a command replaces only its own unchanged files,
one writer per output), ``paths``, ``tables`` (a report's tables laid out as
markdown or terminal text) and ``threads`` (intra-op threads per stage, the
machine's load).
"""

__version__ = "0.1.0"
