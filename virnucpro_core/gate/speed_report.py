"""The acceptance reports' speed section as data: protocol, timings, ratios, peak GPU memory, what the switch saves.

Like :mod:`virnucpro_core.gate.acceptance_report`, whose speed section this is,
every table is ``(header, rows)`` of display strings and every JSON entry holds
numbers, read from the finished timings (:class:`~virnucpro_core.gate.benchmark.TimingResult`);
nothing here times anything. :func:`switch_savings` turns the measured
embedding rates into the time the switch saves on an input size: this run's
input, and VirNucPro's training set as a stated reference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from virnucpro_core.compare.report import Table
from virnucpro_core.compare.rules import WITHIN_LIMIT
from virnucpro_core.gate.gates import SPEED, SPEED_PAIRING, UNSTABLE_SPREAD, spread
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.gate.settings import EMBEDDERS
from virnucpro_core.gate.verdict import PASS, Verdict
from virnucpro_core.models.precision import extraction_dtype
from virnucpro_core.models.specs import get_spec

#: VirNucPro's training set, about 2.1 million samples (README "Scale"), one protein each: a reference input size
#: for what the switch saves, stated as such in the reports; never this run's input.
VIRNUCPRO_TRAINING_SAMPLES = 2_100_000
VIRNUCPRO_TRAINING_SET = "VirNucPro's training set (reference: about 2.1 million samples, README \"Scale\")"


def json_number(value: Any) -> float | None:
    """A float for JSON, or None (absent, or NaN, which JSON cannot carry)."""
    return None if value is None or value != value else float(value)


def speed_protocol(ctx: AcceptanceSession) -> str:
    first = next(iter(ctx.timings.values()))
    on_gpu = first.device.startswith("cuda")
    clock = ("the clock waits for the GPU (CUDA synchronise) before each reading" if on_gpu
             else "timed on the CPU with its wall clock (no GPU in this run)")

    return (f"{len(first.runs_s)} timed runs after {first.warmup_runs} warmup run(s), the two models' rounds "
            f"interleaved (A B A B ...) so that a busy moment hits both; {clock}; a model whose rounds spread by more "
            f"than {UNSTABLE_SPREAD}x (max/min) is flagged UNSTABLE; each run embeds "
            f"{first.sequences} test proteins from tokenisation to pooled vectors on the host. As-deployed (gated): "
            "ESM2 3B as VirNucPro ran it (fp32, 2,048-token batches) against FastESM2 in the settings it ships with "
            f"here ({extraction_dtype('fastesm2_650', 'cuda')} on a GPU, "
            f"{extraction_dtype('fastesm2_650', 'cpu')} on the CPU: the precision policy; the accuracy features "
            "were extracted the same way). Like-for-like (shown, not gated): both with FastESM2's settings.")


def speed_timing_table(ctx: AcceptanceSession) -> Table:
    on_gpu = any(t.peak_memory_bytes for t in ctx.timings.values())
    header = ["pairing", "model", "dtype", "tokens per batch", "timed runs (s)", "mean (s)", "spread (max/min)",
              "proteins per s"]
    if on_gpu:
        header.append("peak GPU memory (GiB, weights + runs)")
    rows = []
    for (pairing, _embedder), t in sorted(ctx.timings.items()):
        row = [pairing, t.model, t.settings.get("dtype", ""), str(t.settings.get("toks_per_batch", "")),
               ", ".join(f"{r:.3f}" for r in t.runs_s), f"{t.mean_s:.3f}", _spread_cell(t.runs_s),
               f"{t.sequences_per_s:,.1f}"]
        if on_gpu:
            row.append(f"{t.peak_memory_bytes / 2**30:.2f}" if t.peak_memory_bytes else "—")
        rows.append(row)
    return header, rows


def _spread_cell(runs_s: list[float]) -> str:
    ratio = spread(runs_s)
    return f"{ratio:.2f}" + (" UNSTABLE: rerun on an idle machine" if ratio > UNSTABLE_SPREAD else "")


def speed_ratio_table(ctx: AcceptanceSession, verdict: Verdict | None = None) -> Table:
    """Each pairing's time ratio (:func:`speed_ratios_list`, the JSON's numbers); the gated one with the speed
    gate's limit and result (PASS only on a PASS run)."""
    rows = []
    for r in speed_ratios_list(ctx):
        if r["gated"]:
            gate = ctx.measure(SPEED)
            result = gate.result if not gate.passed or (verdict is not None and verdict.status == PASS) else WITHIN_LIMIT
            rows.append([r["pairing"], f"{r['time_ratio']:.3f}", f"{r['speed_up']:.2f}×",
                         f"{r['relation']} {r['limit']:g}", result])
        else:
            rows.append([r["pairing"], f"{r['time_ratio']:.3f}", f"{r['speed_up']:.2f}×", "not gated", "context only"])
    return ["pairing", "time ratio (FastESM2 / ESM2 3B)", "speed-up", "limit", "result"], rows


def speed_ratios_list(ctx: AcceptanceSession) -> list[dict[str, Any]]:
    """Each timed pairing's ratio (FastESM2 / ESM2 3B) as numbers; the gated one with its limit and status."""
    rows = []
    for pairing in (SPEED_PAIRING, "like-for-like"):
        ratio = ctx.time_ratio(pairing)
        if ratio is None:
            continue
        gate = ctx.measure(SPEED) if pairing == SPEED_PAIRING else None
        gated = gate is not None and gate.was_measured
        rows.append({"pairing": pairing, "time_ratio": float(ratio), "speed_up": 1 / float(ratio), "gated": gated,
                     "limit": json_number(gate.limit) if gated else None,
                     "relation": gate.relation if gated else None, "status": gate.status if gated else "context only"})
    return rows


# ---------------------------------------------------------------------------- peak GPU memory


def _device_of(ctx: AcceptanceSession) -> str | None:
    return next(iter(ctx.timings.values())).device if ctx.timings else None


def peak_memory_text(ctx: AcceptanceSession) -> str | None:
    """The sentence beside the timing table: where peak GPU memory is (its column), or why it was not measured."""
    device = _device_of(ctx)
    if device is None:
        return None
    if any(t.peak_memory_bytes for t in ctx.timings.values()):
        return ("Peak GPU memory per model: torch.cuda.max_memory_allocated over the model's runs (reset before each "
                "run), its weights included, the other model's resident weights not.")
    kind = "CPU" if device == "cpu" else device
    return f"Peak GPU memory per model: not measured ({kind} run)."


def peak_memory_dict(ctx: AcceptanceSession) -> dict[str, Any] | None:
    """Each timed model's peak GPU memory as numbers (bytes; null where not measured: a CPU run)."""
    device = _device_of(ctx)
    if device is None:
        return None
    models = [{"pairing": pairing, "model": t.model, "bytes": t.peak_memory_bytes,
               "gib": json_number(t.peak_memory_bytes / 2**30) if t.peak_memory_bytes else None}
              for (pairing, _embedder), t in sorted(ctx.timings.items())]
    measured = any(m["bytes"] for m in models)
    return {"measured": measured, "device": device,
            "note": "" if measured else f"not measured ({'CPU' if device == 'cpu' else device} run)",
            "models": models}


# ---------------------------------------------------------------------------- what the switch saves


@dataclass
class InputSize:
    """An input whose embedding time the savings estimate: how many proteins, and where that count comes from."""

    label: str
    sequences: int
    source: str


@dataclass
class SwitchSavings:
    """The embedding time of each input at the measured rates, with everything the estimate rests on.

    Attributes:
        unit: ``GPU-hours`` (timed on CUDA) or ``CPU-hours`` (timed on the CPU: not a GPU estimate).
        device: where the rates were measured.
        pairing: the timed pair the rates come from (the gated, as-deployed one).
        timed_sequences: proteins per timed run; timed_runs: runs averaged.
        seconds_per_sequence: model display name → its mean seconds per protein.
        inputs: the input sizes the rates are applied to.
    """

    unit: str
    device: str
    pairing: str
    timed_sequences: int
    timed_runs: int
    seconds_per_sequence: dict[str, float]
    inputs: list[InputSize]

    @property
    def models(self) -> tuple[str, str]:
        """(ESM2 3B's name, FastESM2's name), in the report's order."""
        baseline, fast = self.seconds_per_sequence
        return baseline, fast

    def hours(self, model: str, size: InputSize) -> float:
        return size.sequences * self.seconds_per_sequence[model] / 3600

    def saved_hours(self, size: InputSize) -> float:
        """ESM2 3B's hours minus FastESM2's (negative: the switch costs time)."""
        baseline, fast = self.models
        return self.hours(baseline, size) - self.hours(fast, size)

    def to_dict(self) -> dict[str, Any]:
        baseline, fast = self.models
        data = asdict(self)
        data["estimate"] = True
        data["inputs"] = [{**asdict(size), "baseline_hours": self.hours(baseline, size),
                           "fast_hours": self.hours(fast, size), "saved_hours": self.saved_hours(size)}
                          for size in self.inputs]
        return data


def input_sizes(ctx: AcceptanceSession) -> list[InputSize]:
    """This run's input (the proteins it read, or its split's samples), then VirNucPro's training set as a reference."""
    results = ctx.results
    sizes = []
    proteins = getattr(results, "proteins", None)
    split = getattr(results, "split", None)
    if proteins:
        sizes.append(InputSize("this run's input", len(proteins),
                               "the proteins (stop-free frames) this run read from its viral and host inputs"))
    elif split is not None:
        sizes.append(InputSize("this run's input", sum(c.full for c in split.summary.classes),
                               "the samples of this run's split (one protein each)"))
    sizes.append(InputSize(VIRNUCPRO_TRAINING_SET, VIRNUCPRO_TRAINING_SAMPLES,
                           "a reference size, not this run's input"))
    return sizes


def switch_savings(ctx: AcceptanceSession) -> SwitchSavings | None:
    """The switch's savings at the rates of the gated (as-deployed) pair; None unless both models were timed."""
    fast, baseline = ctx.timings.get((SPEED_PAIRING, "fast")), ctx.timings.get((SPEED_PAIRING, "baseline"))
    if fast is None or baseline is None:
        return None
    # Named by their role, as everywhere in the reports (the timing's own model is in the timing table).
    rates = {get_spec(EMBEDDERS[role]).display_name: t.mean_s / t.sequences
             for role, t in (("baseline", baseline), ("fast", fast))}
    return SwitchSavings(unit="GPU-hours" if fast.device.startswith("cuda") else "CPU-hours", device=fast.device,
                         pairing=SPEED_PAIRING, timed_sequences=fast.sequences, timed_runs=len(fast.runs_s),
                         seconds_per_sequence=rates, inputs=input_sizes(ctx))


def _hours(value: float) -> str:
    """Hours for people: three significant digits, thousands separated, the true minus sign."""
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return text.replace("-", "−")


def _saves(savings: SwitchSavings, size: InputSize) -> str:
    saved = savings.saved_hours(size)
    return f"saves {_hours(saved)} {savings.unit}" if saved >= 0 else f"costs {_hours(-saved)} {savings.unit} more"


def savings_text(savings: SwitchSavings) -> str:
    """The line a decision-maker reads: this run's input at the measured rates, and what the estimate rests on."""
    baseline, fast = savings.models
    size = savings.inputs[0]
    rates = ", ".join(f"{name} {seconds * 1000:#.3g} ms" for name, seconds in savings.seconds_per_sequence.items())
    text = (f"At the measured rates, embedding {size.sequences:,} proteins ({size.label}) takes "
            f"{_hours(savings.hours(baseline, size))} {savings.unit} with {baseline} and "
            f"{_hours(savings.hours(fast, size))} with {fast} ({_saves(savings, size)}). An estimate: "
            f"rates measured on {savings.device} ({rates} per protein; {savings.pairing} pair, mean of "
            f"{savings.timed_runs} timed runs of {savings.timed_sequences} test proteins that follow the test set's "
            f"length distribution); input size from {size.source}.")
    if savings.unit == "CPU-hours":
        text += " The rates are the CPU's: these are CPU-hours, not an estimate of GPU time."
    return text


def savings_table(savings: SwitchSavings) -> Table:
    baseline, fast = savings.models
    unit = savings.unit
    return (["input", "proteins", f"{baseline} ({unit})", f"{fast} ({unit})", f"saved ({unit})"],
            [[size.label, f"{size.sequences:,}", _hours(savings.hours(baseline, size)),
              _hours(savings.hours(fast, size)), _hours(savings.saved_hours(size))] for size in savings.inputs])
