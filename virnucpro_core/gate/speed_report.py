"""The acceptance reports' speed section as data: protocol, timings, ratios, peak GPU memory, what the switch saves.

Like :mod:`virnucpro_core.gate.acceptance_report`, whose speed section this is,
every table is ``(header, rows)`` of display strings and every JSON entry holds
numbers, read from the finished timings (:class:`~virnucpro_core.gate.benchmark.TimingResult`);
nothing here times anything. :func:`switch_savings` turns the measured
embedding rates into the time the switch saves on an input size: this run's
input, the user's ``--project-samples``, and VirNucPro's training set as a
stated reference; and projects a whole run on each (:class:`StageRate`): the
extractions it needs (FastESM2 on its deployed path; ESM2 3B and DNABERT-S
unless their features were given), the two MLPs' training and the
evaluation, on this GPU and on k GPUs under torchrun, at the rates measured
in this run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from virnucpro_core.tables import Table, json_number
from virnucpro_core.defaults import TEST_FRACTION, VAL_FRACTION
from virnucpro_core.compare.rules import WITHIN_LIMIT
from virnucpro_core.gate.gates import SPEED, SPEED_PAIRING, UNSTABLE_SPREAD, spread
from virnucpro_core.gate.session import AcceptanceSession
from virnucpro_core.defaults import DNA_MODEL, EMBEDDERS
from virnucpro_core.gate.verdict import PASS, Verdict
from virnucpro_core.models.precision import extraction_dtype
from virnucpro_core.models.specs import get_spec

#: The GPU counts a projection shows: this GPU, and k GPUs whose processes share extraction's shards (torchrun).
PROJECTED_GPUS = (1, 4, 8)
#: A run's share of its N samples per stage: every sample is extracted, 10 % are the test set (evaluation), and the
#: MLPs train on the rest less the 10 % validation carve-out (whose loss each epoch's time includes).
TEST_SHARE = TEST_FRACTION
TRAIN_SHARE = (1 - TEST_SHARE) * (1 - VAL_FRACTION)

#: VirNucPro's training set, about 2.1 million samples (README "Scale"), one protein each: a reference input size
#: for what the switch saves, stated as such in the reports; never this run's input.
VIRNUCPRO_TRAINING_SAMPLES = 2_100_000
VIRNUCPRO_TRAINING_SET = "VirNucPro's training set (reference: about 2.1 million samples, README \"Scale\")"


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
            f"{extraction_dtype('fastesm2_650', 'cpu')} on the CPU: the precision policy; on its execution path, "
            "--extraction-path, by default packed on a GPU and eager on the CPU; the accuracy features were "
            "extracted the same way). A compiled path compiles every shape the rounds use before them: its seconds "
            "are shown beside the rounds, never inside them. Like-for-like (shown, not gated): both with FastESM2's "
            "settings, path included.")


def speed_timing_table(ctx: AcceptanceSession) -> Table:
    on_gpu = any(t.peak_memory_bytes for t in ctx.timings.values())
    header = ["pairing", "model", "dtype", "tokens per batch", "path (compiled before the rounds)", "timed runs (s)",
              "mean (s)", "spread (max/min)", "proteins per s"]
    if on_gpu:
        header.append("peak GPU memory (GiB, weights + runs)")
    rows = []
    for (pairing, _embedder), t in sorted(ctx.timings.items()):
        row = [pairing, t.model, t.settings.get("dtype", ""), str(t.settings.get("toks_per_batch", "")),
               _path_cell(t), ", ".join(f"{r:.3f}" for r in t.runs_s), f"{t.mean_s:.3f}", _spread_cell(t.runs_s),
               f"{t.sequences_per_s:,.1f}"]
        if on_gpu:
            row.append(f"{t.peak_memory_bytes / 2**30:.2f}" if t.peak_memory_bytes else "—")
        rows.append(row)
    return header, rows


def _path_cell(timing) -> str:
    """The execution path that ran and what compiling it cost, kept out of the rounds (``TimingResult.compile``)."""
    compiled = timing.compile or {"path": timing.settings.get("path", "eager")}
    if not compiled.get("graphs"):
        return compiled["path"]
    late = compiled.get("graphs_in_rounds") or 0
    return (f"{compiled['path']} ({compiled['seconds']:.1f} s, {compiled['graphs']} graph(s) of at most "
            f"{compiled['bound']}" + (f"; {late} more inside the rounds" if late else "") + ")")


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
class StageRate:
    """One stage of a full run at the rate this run measured, and whether a full run needs it.

    Attributes:
        stage: ``extraction``, ``training`` or ``evaluation``.
        model: what runs (a language model, or the MLP on one model's features).
        seconds: per protein (extraction), per training sample and epoch (training) or per test sample
            (evaluation); None: not measured in this run.
        share: the fraction of a run's N samples the stage processes (1, :data:`TRAIN_SHARE`, :data:`TEST_SHARE`).
        epochs: training's epochs (as this run's training stopped), else 1.
        shared_by_gpus: extraction: k processes under torchrun each embed their own shards.
        needed: False where this run's inputs already hold the result (``source`` says which).
        source: where the rate comes from.
    """

    stage: str
    model: str
    seconds: float | None
    share: float = 1.0
    epochs: int = 1
    shared_by_gpus: bool = False
    needed: bool = True
    source: str = ""

    def hours(self, samples: int, gpus: int = 1) -> float | None:
        """Wall-clock hours for ``samples`` on ``gpus`` (0 when not needed; None when not measured)."""
        if not self.needed:
            return 0.0
        if self.seconds is None:
            return None
        divide = gpus if self.shared_by_gpus else 1
        return samples * self.share * self.epochs * self.seconds / 3600 / divide


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
        stages: every stage of a full run at this run's rates (:func:`run_stages`), for the projection.
        gpus: the GPU counts the projection shows (one, on a CPU run).
    """

    unit: str
    device: str
    pairing: str
    timed_sequences: int
    timed_runs: int
    seconds_per_sequence: dict[str, float]
    inputs: list[InputSize]
    stages: list[StageRate] = field(default_factory=list)
    gpus: tuple[int, ...] = (1,)

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

    def projected(self, size: InputSize, gpus: int) -> float:
        """A whole run's wall-clock hours on ``gpus``: the stages it needs whose rate this run measured
        (:meth:`unmeasured` names the others)."""
        return sum(h for stage in self.stages if (h := stage.hours(size.sequences, gpus)) is not None)

    def unmeasured(self) -> list[str]:
        """The stages a whole run needs whose rate this run did not measure: left out of :meth:`projected`."""
        return [f"{stage.stage} ({stage.model})" for stage in self.stages if stage.needed and stage.seconds is None]

    def to_dict(self) -> dict[str, Any]:
        baseline, fast = self.models
        data = asdict(self)
        data["estimate"] = True
        data["gpus"] = list(self.gpus)
        data["inputs"] = [{**asdict(size), "baseline_hours": self.hours(baseline, size),
                           "fast_hours": self.hours(fast, size), "saved_hours": self.saved_hours(size),
                           "projection": {
                               "stages": [{"stage": st.stage, "model": st.model, "needed": st.needed,
                                           "hours": {str(k): st.hours(size.sequences, k) for k in self.gpus}}
                                          for st in self.stages],
                               "total_hours": {str(k): self.projected(size, k) for k in self.gpus},
                               "unmeasured": self.unmeasured()}}
                          for size in self.inputs]
        return data


def input_sizes(ctx: AcceptanceSession) -> list[InputSize]:
    """This run's input (the proteins it read, or its split's samples), the user's ``--project-samples``, then
    VirNucPro's training set as a reference."""
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
    wanted = getattr(ctx.settings, "project_samples", None)
    if wanted:
        sizes.append(InputSize("your full run (--project-samples)", wanted, "the size given with --project-samples"))
    sizes.append(InputSize(VIRNUCPRO_TRAINING_SET, VIRNUCPRO_TRAINING_SAMPLES,
                           "a reference size, not this run's input"))
    return sizes


#: The timing of DNABERT-S the speed tests take for the projection (not gated): ``(pairing, embedder)``.
DNA_TIMING = ("projection", "dna")


def run_stages(ctx: AcceptanceSession) -> list[StageRate]:
    """Every stage of a full run at this run's rates: extraction per model, the MLPs' training, the evaluation.

    Extraction rates are the speed tests' (FastESM2 on its deployed path, ESM2 3B
    as VirNucPro ran it, DNABERT-S timed beside them); training's are the gate
    MLPs' own epochs (wall time over samples); evaluation's the test-set
    predictions. A stage whose result this run's inputs already hold is not needed.
    """
    timings, results, run = ctx.timings, ctx.results, ctx.run
    not_needed = dict(getattr(run, "not_extracted", lambda: {})()) if run is not None else {}
    stages = []
    extracted = ((("as-deployed", "fast"), EMBEDDERS["fast"]), (("as-deployed", "baseline"), EMBEDDERS["baseline"]),
                 (DNA_TIMING, DNA_MODEL))
    for key, model in extracted:
        timing = timings.get(key)
        how = (f"{(timing.compile or {}).get('path', 'eager')} path, {timing.settings.get('dtype')}, "
               f"{timing.settings.get('toks_per_batch')} tokens per batch: {key[0]} timing" if timing else
               "not timed in this run")
        stages.append(StageRate("extraction", get_spec(model).display_name,
                                timing.mean_s / timing.sequences if timing else None, shared_by_gpus=True,
                                needed=model not in not_needed, source=not_needed.get(model, how)))
    trained = getattr(results, "trained", {}) or {}
    baseline_from_metrics = bool(getattr(ctx.settings, "baseline_from_metrics", False))
    for role, model in EMBEDDERS.items():
        name = f"MLP on {get_spec(model).display_name} features"
        history = trained[role].history if role in trained else None
        if role == "baseline" and baseline_from_metrics:
            stages.append(StageRate("training", name, None, needed=False,
                                    source="not needed: the baseline's metrics were given (--baseline-metrics)"))
        elif history is not None and history.epochs and history.train_samples:
            seconds = sum(e.seconds for e in history.epochs)
            stages.append(StageRate("training", name, seconds / len(history.epochs) / history.train_samples,
                                    share=TRAIN_SHARE, epochs=len(history.epochs),
                                    source=f"the training this run evaluated: {len(history.epochs)} epochs of "
                                    f"{history.train_samples:,} samples in {seconds:.1f} s when it was built "
                                    f"({history.stop_reason})"))
        else:
            stages.append(StageRate("training", name, None, share=TRAIN_SHARE, source="not trained in this run"))
    evaluated = getattr(results, "seconds", {}) or {}
    for role, model in EMBEDDERS.items():
        seconds, samples = evaluated.get(f"predictions[{role}]", (None, 0))
        skip = role == "baseline" and baseline_from_metrics
        stages.append(StageRate("evaluation", f"MLP on {get_spec(model).display_name} features",
                                seconds / samples if seconds is not None and samples else None, share=TEST_SHARE,
                                needed=not skip, source="not needed: --baseline-metrics" if skip else
                                f"this run's test-set predictions ({samples:,} samples in {seconds:.2f} s)"
                                if seconds is not None else "not evaluated in this run"))
    return stages


def switch_savings(ctx: AcceptanceSession) -> SwitchSavings | None:
    """The switch's savings at the rates of the gated (as-deployed) pair, and the projection of a whole run;
    None unless both models were timed."""
    fast, baseline = ctx.timings.get((SPEED_PAIRING, "fast")), ctx.timings.get((SPEED_PAIRING, "baseline"))
    if fast is None or baseline is None:
        return None
    # Named by their role, as everywhere in the reports (the timing's own model is in the timing table).
    rates = {get_spec(EMBEDDERS[role]).display_name: t.mean_s / t.sequences
             for role, t in (("baseline", baseline), ("fast", fast))}
    on_gpu = fast.device.startswith("cuda")
    return SwitchSavings(unit="GPU-hours" if on_gpu else "CPU-hours", device=fast.device,
                         pairing=SPEED_PAIRING, timed_sequences=fast.sequences, timed_runs=len(fast.runs_s),
                         seconds_per_sequence=rates, inputs=input_sizes(ctx), stages=run_stages(ctx),
                         gpus=PROJECTED_GPUS if on_gpu else (1,))


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


# ---------------------------------------------------------------------------- the whole run, projected


def _maybe_hours(value: float | None) -> str:
    if value is None:
        return "not measured"
    return "< 0.001" if 0 < value < 0.001 else _hours(value)


def projection_text(savings: SwitchSavings) -> str:
    """What the projection rests on, in one paragraph."""
    where = (f"on this GPU ({savings.device}) and on k GPUs under torchrun" if len(savings.gpus) > 1 else
             f"on this machine's CPU ({savings.device}): CPU rates, not a GPU estimate")
    trained = [s for s in savings.stages if s.stage == "training" and s.needed and s.seconds]
    epochs = (f"{' and '.join(str(s.epochs) for s in trained)} epochs, as this run's trainings stopped (at most 200, "
              "patience 5)" if trained else "as many epochs as this run trained (none: not in this run's total)")
    return (f"A projection of a whole run, in wall-clock hours {where}, at the rates this run measured: extraction of "
            "every sample with each model it needs (FastESM2 on the path it is deployed on, ESM2 3B as VirNucPro ran "
            "it, DNABERT-S), the two MLPs' training on 81 % of the samples (10 % test, 10 % of the rest for "
            f"validation) for {epochs}, and the evaluation of the 10 % test set. Extraction is assumed to scale "
            "linearly with GPUs (each torchrun process embeds its own shards; not measured here); training and "
            "evaluation run in one process, as the suite runs them. Model loading, compilation and reading the "
            "data are left out. Stages whose features this run was given are marked not needed; a stage this run "
            "did not measure (a speed-only run trains no MLP) is left out of the total, which says so.")


def projection_table(savings: SwitchSavings) -> Table:
    """One row per stage and input size: the rate and the hours on each GPU count; a total per input."""
    gpus = savings.gpus
    header = ["input", "stage", "model", "rate"] + [
        (f"{k} GPU{'s' if k > 1 else ''} (h)" if len(gpus) > 1 else "this CPU (h)") for k in gpus]
    per = {"extraction": "ms per protein", "training": "ms per sample and epoch", "evaluation": "ms per sample"}
    rows = []
    for size in savings.inputs:
        label = f"{size.label} ({size.sequences:,})"
        for stage in savings.stages:
            rate = (f"{stage.seconds * 1000:#.3g} {per[stage.stage]}" if stage.seconds is not None else "—")
            cells = ([_maybe_hours(stage.hours(size.sequences, k)) for k in gpus] if stage.needed
                     else ["not needed"] * len(gpus))
            rows.append([label, stage.stage, stage.model, rate if stage.needed else stage.source, *cells])
        missing = savings.unmeasured()
        rows.append([label, "total", "", f"without {', '.join(missing)}" if missing else "",
                     *[_maybe_hours(savings.projected(size, k)) for k in gpus]])
    return header, rows
