"""A pytest plugin for the tests only (``-p parity_standin_plugin``): the suite's FastESM2 parity check may run the
own code of a stand-in-sized snapshot, as tests/extract/test_parity.py's tiny reference snapshots are.

Outside the tests the check runs a directory's code only once our loader has found it to be the real
FastESM2_650 (:data:`virnucpro_core.extract.parity.CODE_RUNS_FOR_SIZES`); a test that starts the suite on a tiny
reference snapshot asks for more, explicitly, with this plugin.
"""

from virnucpro_core.extract import parity

parity.CODE_RUNS_FOR_SIZES = ("full", "tiny")
