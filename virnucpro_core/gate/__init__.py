"""The acceptance run behind ``pytest acceptance/``: options, stages, gates, verdict and reports.

* ``options``, ``settings`` — the suite's options as one table, resolved and checked once;
* ``plugin`` — the pytest plugin (``-p`` in ``pytest.ini``) that adds those options before pytest reads its
  command line, so an option's value is never taken for a test path (whose ``conftest.py`` pytest would run);
* ``validation``, ``results``, ``stages`` — the cached chain of stages; what it built, typed;
  the stage cache and the run's input files, each opened and hashed once;
* ``splits`` — the split pair, made on FastESM2's features and applied to ESM2 3B's, built once and read back;
* ``given`` — features a run is given rather than extracts (``--baseline-features``: ESM2 3B's, and their
  DNABERT-S columns);
* ``benchmark`` — the benchmark sample and the GPU-synchronised clock of the speed gate;
* ``gates`` — the two gates' decisions (for ``virnucpro compare`` too) and typed results (measured, limit, CI,
  status, reason);
* ``generalisation`` — the evidence beside the gate (other splits, per-group accuracy, calibration);
* ``lock`` — one run at a time per ``--artifacts`` folder (a second one waits, with a message);
* ``session`` — one acceptance session: what fixtures and tests hand over, what the reports read;
* ``start`` — the run's start: its session made once from pytest's config (settings, lock, reports' staging, run id);
* ``verdict`` — PASS / FAIL / INCOMPLETE / ERROR and the exit status;
* ``acceptance_report`` — the reports' tables, texts and notices, the run id, the reports' staging;
* ``report_model`` — the report built once as typed sections (verdict, paragraphs, tables, figures);
* ``report_files``, ``html_report`` — its markdown and the JSON file; its HTML through pytest-html's hooks;
* ``speed_report`` — their speed section: timings, ratios, peak GPU memory, what the switch saves and a whole run
  projected.
"""
