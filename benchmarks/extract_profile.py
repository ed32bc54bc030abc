"""Where one batch's time goes: a torch.profiler trace per execution path, split into matmul, attention,
elementwise and idle.

For each ``--paths`` entry (``eager``, ``compiled``, ``packed``: :mod:`virnucpro_core.extract.forward`)
this embeds one full batch of synthetic proteins of ``--length`` residues with
the model's stand-in (``--size``), compiles and warms the path first, then
profiles ``--steps`` batches and writes

* ``<out>/trace-<model>-<path>-<length>.json`` — the Chrome trace (open it in
  ``chrome://tracing`` or Perfetto), and
* ``<out>/profile-<model>-<length>.json`` — the breakdown of every path, also
  printed as a table.

On CUDA the categories come from the GPU kernels: ``matmul`` (cuBLAS/CUTLASS
GEMMs), ``attention`` (SDPA's flash / memory-efficient kernels, FlexAttention's
Triton template), ``elementwise`` (every other kernel: LayerNorm, GELU, rotary,
residual adds, fused Triton kernels) and ``idle`` (the profiled span in which
no kernel ran: launch gaps, host work, synchronisation). On the CPU they come
from the operators' self time (``idle``: the span no operator accounts for,
mostly Python); a compiled path's fused C++ kernels run inside one compiled
region there, so the CPU breakdown checks the instrument, not the lever.

Example (CPU, seconds)::

    python benchmarks/extract_profile.py --size tiny --device cpu --paths eager,compiled --length 100 --out /tmp/prof
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

from virnucpro_core.extract.embeddings import DEFAULT_TOKS_PER_BATCH, extract_embeddings
from virnucpro_core.extract.forward import prepare_path
from virnucpro_core.files import atomic_write_text
from virnucpro_core.gate.benchmark import compile_before_timing, deployed_settings, synchronized_timer
from virnucpro_core.models import registry as models

log = logging.getLogger("extract_profile")
CATEGORIES = ("matmul", "attention", "elementwise", "idle")
_MATMUL = re.compile(r"gemm|cutlass|cublas|nvjet|xmma|matmul|addmm|\bmm\b|aten::mm|aten::bmm|linear|mkldnn|onednn",
                     re.IGNORECASE)
_ATTENTION = re.compile(r"flash|fmha|attention|sdpa|flex|triton_tem(?!.*mm)", re.IGNORECASE)


def category(name: str) -> str:
    """matmul, attention or elementwise, from a kernel's (or an operator's) name."""
    if _ATTENTION.search(name):
        return "attention"
    if _MATMUL.search(name):
        return "matmul"
    return "elementwise"


def _union_us(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def breakdown(prof, span_us: float, on_cuda: bool) -> dict[str, Any]:
    """Milliseconds per category over the profiled span, and the ten longest kernels (or operators)."""
    per: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    by_name: dict[str, float] = {}
    if on_cuda:
        kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
        for event in kernels:
            duration = event.time_range.end - event.time_range.start
            per[category(event.name)] += duration
            by_name[event.name] = by_name.get(event.name, 0.0) + duration
        busy = _union_us([(e.time_range.start, e.time_range.end) for e in kernels])
    else:
        for stat in prof.key_averages():
            if stat.key.startswith(("profiled ", "ProfilerStep")):
                continue
            per[category(stat.key)] += stat.self_cpu_time_total
            by_name[stat.key] = by_name.get(stat.key, 0.0) + stat.self_cpu_time_total
        busy = sum(per.values())
    per["idle"] = max(0.0, span_us - busy)
    top = sorted(by_name.items(), key=lambda item: -item[1])[:10]
    return {"span_ms": span_us / 1000, **{f"{c}_ms": per[c] / 1000 for c in CATEGORIES},
            "percent": {c: 100 * per[c] / span_us if span_us else None for c in CATEGORIES},
            "top": [{"name": name[:120], "ms": us / 1000, "category": category(name)} for name, us in top]}


def profile_path(loaded, path: str, records, budget: int, steps: int, trace: Path) -> dict[str, Any]:
    """Compile and warm ``path``, then profile ``steps`` embeddings of ``records`` (one batch each)."""
    ready, compiled = compile_before_timing(prepare_path(loaded, path, budget=budget), records, budget)
    out = profile_ready(ready, records, budget, steps, trace)
    out.update(asked=path, compile_s=compiled.seconds, graphs=compiled.graphs)
    return out


def profile_ready(ready, records, budget: int, steps: int, trace: Path) -> dict[str, Any]:
    """Profile ``steps`` embeddings of ``records`` with a model already on its path (compiled, when it compiles);
    write the Chrome trace to ``trace``; the breakdown (:func:`breakdown`)."""
    extract_embeddings(ready, records, toks_per_batch=budget, progress=False)  # warm caches and allocator
    on_cuda = ready.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    with profile(activities=activities) as prof:
        start = synchronized_timer()
        for _ in range(steps):
            with record_function("profiled batch"):
                extract_embeddings(ready, records, toks_per_batch=budget, progress=False)
        span_s = synchronized_timer() - start
    prof.export_chrome_trace(str(trace))
    out = breakdown(prof, span_s * 1e6, on_cuda)
    out.update(path=ready.provenance.get("path", "eager"), steps=steps, proteins=len(records), trace=trace.name,
               compile_s=0.0, graphs=0)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Profile every ``--paths`` entry on one batch; write the traces and the breakdown; return the breakdown."""
    # The throughput script's synthetic proteins, so both measure the same inputs; imported here because that
    # script imports this one (for --profile).
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from extract_throughput import synthetic_proteins

    device = models.resolve_device(args.device)
    dtype = args.dtype or deployed_settings(args.model, device.type)["dtype"]
    budget = args.toks_per_batch or DEFAULT_TOKS_PER_BATCH["esm"]
    # One padded batch's worth: as many proteins as fit the budget at this length.
    records = synthetic_proteins(args.length, max(1, budget // (round(args.length * 1.1) + 2)), args.seed)
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    loaded = models.load_model(args.model, weights="random", size=args.size, device=device, dtype=dtype,
                               seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"tool": "benchmarks/extract_profile.py", "model": args.model, "size": args.size, "device": str(device),
              "dtype": dtype, "length": args.length, "toks_per_batch": budget, "paths": {}}
    for path in args.paths:
        started = time.perf_counter()
        trace = args.out / f"trace-{args.model}-{path}-{args.length}.json"
        report["paths"][path] = profile_path(loaded, path, records, budget, args.steps, trace)
        log.info("%s: profiled in %.1f s, trace %s", path, time.perf_counter() - started, trace)
        atomic_write_text(args.out / f"profile-{args.model}-{args.length}.json", json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    return report


def format_table(report: dict[str, Any]) -> str:
    """One line per path: span per batch and each category's share."""
    lines = [f"{report['model']} ({report['size']}, {report['dtype']}, {report['device']}), ~{report['length']} "
             f"residues, {report['toks_per_batch']:,}-token batches: ms per batch (share of the span)"]
    lines.append(f"{'path':<10} {'batch ms':>9} " + " ".join(f"{c:>17}" for c in CATEGORIES) + "  compile")
    for name, entry in report["paths"].items():
        steps = entry["steps"]
        cells = [f"{entry[c + '_ms'] / steps:8.2f} ({entry['percent'][c] or 0:4.1f} %)" for c in CATEGORIES]
        lines.append(f"{entry['path']:<10} {entry['span_ms'] / steps:9.2f} " + " ".join(f"{c:>17}" for c in cells)
                     + (f"  {entry['compile_s']:.1f} s, {entry['graphs']} graph(s)" if entry["graphs"] else "  —"))
    return "\n".join(lines)


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="extract_profile", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--model", choices=("fastesm2_650", "esm2_3b"), default="fastesm2_650", help="default: fastesm2_650.")
    add("--size", choices=models.SIZES, default="full", help="stand-in size (default: full; tiny for a CPU check).")
    add("--device", default="auto", help="auto, cpu or cuda (default: auto).")
    add("--dtype", choices=("float32", "float16", "bfloat16"), default=None,
        help="default: the precision policy's for the model on the device (fp16 for FastESM2 on CUDA).")
    add("--paths", type=lambda t: [p for p in t.split(",") if p], default=["eager", "packed"],
        help="comma-separated execution paths (default: eager,packed; also compiled).")
    add("--length", type=int, default=100, help="protein length, ±10 %% (default: 100).")
    add("--toks-per-batch", type=int, default=None, help="token budget (default: the model family's).")
    add("--steps", type=int, default=3, help="batches profiled per path (default: 3).")
    add("--cpu-threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    add("--seed", type=int, default=0, help="seed of the proteins and stand-in weights (default: 0).")
    add("--out", type=Path, default=Path("profile_out"),
        help="folder for traces and breakdowns (default: profile_out).")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = create_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
