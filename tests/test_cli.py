"""`virnucpro --help` answers without loading torch or transformers.

The parsers read their choices and defaults from ``virnucpro_core.defaults``
(which the library modules read too) instead of the library modules, which
import torch at load time; the library is imported only when a command runs. Each check runs in a fresh interpreter,
since this one has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from virnucpro_core.cli import COMMANDS

# Top-level packages that cost seconds (or hundreds of ms) to import; none is needed to print help.
HEAVY = ("torch", "transformers", "scipy", "sklearn", "pandas", "matplotlib", "Bio")


def _heavy_modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy top-level packages it left in ``sys.modules``."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"the probe failed:\n{probe}\n{proc.stderr}"
    return json.loads(proc.stdout.splitlines()[-1])


_HINT = (
    "move the import into the command's run(); "
    'python -X importtime -c "import virnucpro_core.cli; virnucpro_core.cli.create_parser()" shows who pulls it in'
)


def test_building_the_parser_imports_no_heavy_library():
    loaded = _heavy_modules_after("import virnucpro_core.cli as cli\ncli.create_parser()")
    assert loaded == [], f"importing the CLI and building its parser loaded {loaded}; {_HINT}"


@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in COMMANDS)],
                         ids=["virnucpro", *COMMANDS])  # fmt: skip
def test_help_imports_no_heavy_library(argv):
    code = (
        "import contextlib, io\n"
        "from virnucpro_core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})"
    )
    loaded = _heavy_modules_after(code)
    assert loaded == [], f"`virnucpro {' '.join(argv)}` loaded {loaded}; {_HINT}"
