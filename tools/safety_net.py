"""The refactoring safety net: record what the smoke profile and the CLI chain produce, and compare two records.

Behaviour-preserving changes (issue 21) must leave every output the same:
split manifests, features, trained weights, metrics, predictions, the
acceptance verdict and its numbers. This runs, on the bundled smoke data with
tiny stand-ins and seed 42,

* the acceptance suite (``pytest acceptance/`` with fresh ``--artifacts``), and
* the ``virnucpro`` chain (``tools/cli_chain.sh``: preprocess, extract, merge,
  split, train, evaluate, compare) followed by ``virnucpro predict`` on the
  viral genomes with the FastESM2 model it trained,

then writes ``fingerprint.json``: for every output file a canonical form with
what legitimately changes from run to run removed (run ids, clocks, timings,
the machine, the working directory): JSON and ``.pt`` files as normalised trees
(tensors as sha256 of their bytes, dtype and shape), text files with the work
directory replaced. The reports' pages (``acceptance.md``, ``comparison.md``,
``report.md``, ``acceptance.html``) are compared as blocks of text: the
markdown's lines, the HTML's visible paragraphs, headings, list items and
table rows (``html.parser``; scripts and styles left out), each normalised
(the machine's rows of the environment table and the numbers of the timed
sections left out). A block lost is a difference, unless a block added holds
all its words (a sentence extended, bolded or relabelled); a block added is
a note: the layout may change, the content may not. A file digest recorded inside another file is compared
only as being one (views and checkpoints record absolute paths, so their
digests move with the work directory; the files themselves are compared by
content). MMseqs2's hits are compared as sets of lines and its clusters as a
partition (it may pick another representative of the same cluster from run to
run). Cache-key suffixes of stage folders are kept apart (``stage_keys``): the
keys of stages whose inputs record paths differ between work directories, so a
changed key is a note, not a difference.

Two records of the same code compare identical (checked on 2026-12-04: 160
files).

    python tools/safety_net.py record OUT        # about 4 minutes on 2 cores
    python tools/safety_net.py compare OLD/fingerprint.json NEW/fingerprint.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Keys whose values are clocks, run identities, timings or the machine: never compared.
VOLATILE_KEYS = {
    "started", "finished", "created", "created_at", "written", "run", "run_id", "run id", "started (UTC)",
    "elapsed_s", "elapsed", "seconds", "wall_s", "duration_s", "runs_s", "mean_s", "median_s", "sequences_per_s",
    "residues_per_s", "tokens_per_s", "timings", "speed_ratios", "environment", "machine", "stages", "platform",
    "python", "torch", "transformers", "commit", "peak_memory_bytes", "load_average", "hostname",
    "peak_gpu_memory", "switch_savings",  # acceptance.json: the machine's memory, hours from the measured rates
    "code",  # the code identity (virnucpro_core.code_identity): a refactoring changes it by construction
}  # fmt: skip
# Outputs that hold clocks alone, pictures, or pytest-html's assets.
SKIPPED = re.compile(r"(\.png|\.log|\.css|benchmark\.json|stages\.json|/clusters[^/]*/clu_\w+\.fasta)$")
# The reports' pages: markdown as normalised text, HTML as its visible text (a block of text lost is a difference,
# one added a note: the layout may change, the content may not).
MARKDOWN = re.compile(r"\.md$")
HTML = re.compile(r"\.html?$")
# Rows of the reports' environment tables that describe the machine or the run (acceptance.json's "environment"):
# their key is compared, their value is not.
MACHINE_ROWS = {
    "python", "platform", "processor", "torch", "transformers", "cuda_available", "device", "gpu", "gpu_memory_gib",
    "cuda", "cudnn", "driver", "CPU cores", "intra-op threads", "load average (1/5/15 min) at start",
    "load average (1/5/15 min) at end", "commit", "code", "run id", "started (UTC)",
}  # fmt: skip
# The reports' sections of measured times (acceptance.json's "timings", "speed_ratios", "stages", ...): their words
# are compared, their numbers are not.
TIMED_SECTIONS = {"Speed", "Stages"}
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
FULL_DIGEST = re.compile(r"\b[0-9a-f]{64}\b")
# pytest-html's page: when it was generated and how long the tests took.
PYTEST_HTML_CLOCK = re.compile(r"\d\d-\w{3}-\d{4} at \d\d:\d\d:\d\d|took \d+(:\d\d)+|took \d+ ms|v\d+\.\d+\.\d+$")
STAGE_KEY = re.compile(r"-[0-9a-f]{16}(?=/|$)")
# The speed gate's sentence carries measured times; its state is compared instead. Run ids and clocks in text.
TIMED_TEXT = re.compile(r"\d+\.\d+ s\b|time ratio \d+\.\d+|\d+(\.\d+)?×"
                        r"|\d{8}T\d{6}Z-[0-9a-f]{6}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"
                        r"|\bpid \d+")  # the --artifacts lock's holder
# Whether the speed rounds were stable: a reading of the machine's load, not of the code (left out of the text).
STABILITY = re.compile(r"; timing UNSTABLE: rounds spread [^—]*— rerun on an idle machine| UNSTABLE: rerun on an idle machine")
# The next step a run with unstable speed rounds adds (a list item, a markdown line, a page's block): left out.
UNSTABLE_ADVICE = "The speed gate's timing was unstable"
# A file's digest changes with the absolute paths some files record (views, checkpoints' provenance): the files
# themselves are compared by content, so a digest is compared only as being one.
DIGEST = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
SHORT_DIGEST = re.compile(r"sha256 [0-9a-f]{12}\b")
# MMseqs2 writes hits in thread order (compared as sets of lines) and may pick another representative for the same
# clusters (compared as a partition; its FASTA files name the representatives and are left out).
UNORDERED = re.compile(r"\.m8$")
# A content record (virnucpro_core.custody): size, times, inode and device differ from one work directory to the next.
CONTENT_RECORD = {"sha256", "size", "mtime_ns", "ctime_ns", "inode", "device", "recorded"}
CLUSTERS = re.compile(r"/clusters[^/]*/clu_cluster\.tsv$")


def record(out: Path) -> Path:
    work = out / "work"
    if work.exists():
        raise SystemExit(f"{work} exists: record into a new folder")
    work.mkdir(parents=True)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    python = sys.executable
    virnucpro = str(Path(python).with_name("virnucpro"))
    suite = [python, "-m", "pytest", str(ROOT / "acceptance"), "-p", "no:cacheprovider", "--allow-incomplete",
             "--artifacts", str(work / "suite" / "artifacts"), "--html", str(work / "suite" / "reports" / "acceptance.html")]
    _run(suite, work / "suite.log", env)
    _run(["bash", str(ROOT / "tools" / "cli_chain.sh"), str(work / "cli"), "42"], work / "cli.log",
         {**env, "VIRNUCPRO": virnucpro})  # fmt: skip
    _run([virnucpro, "predict", str(ROOT / "fixtures" / "smoke" / "viral.fasta"), "--model",
          str(work / "cli" / "models" / "fastesm2_650.pt"), "--weights", "random", "--size", "tiny", "--seed", "42",
          "--no-progress", "--out", str(work / "predict")], work / "predict.log", env)  # fmt: skip
    return write_fingerprint(out)


# Where a copied record was made (``fingerprint --recorded-in DIR --recorded-from REPOSITORY``): its absolute paths
# are the work folder's and the repository's.
_RECORDED_IN: list[str] = []
_RECORDED_FROM: list[str] = []


def write_fingerprint(out: Path, recorded_in: Path | None = None, recorded_from: Path | None = None) -> Path:
    """Fingerprint ``out/work``; when ``out`` is a copy, ``recorded_in``: the folder it was recorded in, and
    ``recorded_from``: the repository that recorded it."""
    _RECORDED_IN[:] = [str(Path(recorded_in) / "work")] if recorded_in is not None else []
    _RECORDED_FROM[:] = [str(recorded_from)] if recorded_from is not None else []
    fingerprint = fingerprint_tree(out / "work")
    path = out / "fingerprint.json"
    path.write_text(json.dumps(fingerprint, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}: {len(fingerprint['files'])} files")
    return path


def _run(command: list[str], log: Path, env: dict[str, str]) -> None:
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... exited {done.returncode}; see {log}")


def fingerprint_tree(work: Path) -> dict[str, Any]:
    files: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        relative = path.relative_to(work).as_posix()
        if SKIPPED.search(relative) or relative.endswith(".log") and "/" not in relative:
            continue
        name = STAGE_KEY.sub("", relative)
        for folder in STAGE_KEY.finditer(relative):
            keys[STAGE_KEY.sub("", relative[: folder.end()])] = relative[folder.start() + 1 : folder.end()]
        files[name] = canonical(path, work)
    return {"files": files, "stage_keys": keys}


def canonical(path: Path, work: Path) -> Any:
    if path.suffix == ".json":
        return normalise(json.loads(path.read_text(encoding="utf-8")), work)
    if path.suffix in (".pt", ".pth"):
        import torch

        return normalise(torch.load(path, map_location="cpu", weights_only=True), work)
    if CLUSTERS.search(path.as_posix()):
        members: dict[str, list[str]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            representative, member = line.split("\t")
            members.setdefault(representative, []).append(member)
        return sorted(sorted(group) for group in members.values())
    if MARKDOWN.search(path.name):
        return {"text blocks": _markdown(path.read_text(encoding="utf-8"), work)}
    if HTML.search(path.name):
        return {"text blocks": _visible_text(path.read_text(encoding="utf-8"), work)}
    data = path.read_bytes()
    try:
        text = _text(data.decode("utf-8"), work)
    except UnicodeDecodeError:
        return "sha256:" + hashlib.sha256(data).hexdigest()
    return "\n".join(sorted(text.splitlines())) if UNORDERED.search(path.as_posix()) else text


def normalise(value: Any, work: Path) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().contiguous()
        digest = hashlib.sha256(array.reshape(-1).view(torch.uint8).numpy().tobytes() if array.numel() else b"").hexdigest()
        return {"tensor": str(array.dtype), "shape": list(array.shape), "sha256": digest}
    if isinstance(value, dict):
        if CONTENT_RECORD <= set(map(str, value)):  # stat fields and clock of a file we recorded: its digest stays
            return {"content": normalise(value["sha256"], work)}
        timed = value.get("metric") == "time ratio"  # acceptance.json's speed gate: its value is a clock reading
        return {_text(str(k), work): normalise(v, work) for k, v in value.items()  # keys may be paths
                if str(k) not in VOLATILE_KEYS and not (timed and k == "value")}
    if isinstance(value, list | tuple):
        return [normalise(v, work) for v in value if not (isinstance(v, str) and v.startswith(UNSTABLE_ADVICE))]
    if isinstance(value, str):
        return "<sha256>" if DIGEST.match(value) else _text(value, work)
    if isinstance(value, float):
        return repr(value)
    return value


def _text(text: str, work: Path) -> str:
    for folder in (*_RECORDED_IN, str(work)):
        text = text.replace(folder, "<WORK>")
    for root in (*_RECORDED_FROM, str(ROOT)):
        text = text.replace(root, "<ROOT>")
    text = SHORT_DIGEST.sub("sha256 <digest>", text)
    return TIMED_TEXT.sub("<TIMED>", STAGE_KEY.sub("", STABILITY.sub("", text)))


def _report_text(text: str, work: Path, section: str) -> str:
    """One line or block of a report: a machine row's value, a timed section's numbers and digests left out."""
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", text.strip().strip("|"))]
    if len(cells) > 1 and cells[0] in MACHINE_ROWS | VOLATILE_KEYS:
        text = f"| {cells[0]} | <machine> |"
    text = FULL_DIGEST.sub("<sha256>", _text(text, work))
    if section in TIMED_SECTIONS:
        text = NUMBER.sub("<N>", text)
    return text


def _markdown(text: str, work: Path) -> list[str]:
    """A markdown report's lines, normalised (:func:`_report_text`, in their ``## `` section); blank lines and
    table rules left out."""
    section, lines = "", []
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if line.strip() and not re.fullmatch(r"\|(---\|)+", line.strip()) and UNSTABLE_ADVICE not in line:
            lines.append(_report_text(line, work, section))
    return lines


def _visible_text(page: str, work: Path) -> list[str]:
    """The text a reader sees on an HTML page, one entry per block (a paragraph, a heading, a list item, a table
    row with its cells joined by `` | ``), normalised as the markdown is (:func:`_report_text`)."""
    from html.parser import HTMLParser

    blocks: list[str] = []

    class Reader(HTMLParser):
        BLOCKS = {"p", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "caption", "title", "dt", "dd",
                  "pre", "div", "section", "ul", "ol", "table", "figure", "header", "footer", "body", "summary"}
        HIDDEN = {"script", "style", "template", "head"}

        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.open: list[tuple[str, list[str]]] = []
            self.hidden = 0
            self.section = ""

        def handle_starttag(self, tag, attrs):
            if tag in self.HIDDEN and tag != "head":
                self.hidden += 1
            elif tag in ("td", "th") and self.open:
                self.open[-1][1].append(" | ")
            elif tag in self.BLOCKS:
                self.open.append((tag, []))

        def handle_endtag(self, tag):
            if tag in self.HIDDEN and tag != "head":
                self.hidden = max(0, self.hidden - 1)
            elif tag in self.BLOCKS and any(t == tag for t, _ in self.open):
                while self.open:
                    name, parts = self.open.pop()
                    self._flush(name, parts)
                    if name == tag:
                        break

        def handle_data(self, data):
            if not self.hidden and self.open:
                self.open[-1][1].append(data)

        def _flush(self, name: str, parts: list[str]) -> None:
            text = " ".join("".join(parts).split()).strip(" |")
            if not text:
                return
            if name == "h2":
                self.section = text
            text = PYTEST_HTML_CLOCK.sub("<clock>", text)
            blocks.append(_report_text(f"| {text} |" if name == "tr" else text, work, self.section))

        def close(self):
            super().close()
            while self.open:
                self._flush(*self.open.pop())

    reader = Reader()
    reader.feed(page)
    reader.close()
    return [block for block in blocks if UNSTABLE_ADVICE not in block]


def _words(text: str) -> Counter:
    return Counter(re.findall(r"[^\s|*>#`_\[\]()]+", text))


def _lost_and_added(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """A report's text blocks (lines, paragraphs, table rows) in ``a`` and not in ``b`` (lost: unless every word
    of one is in a block ``b`` added, which then extends it) and in ``b`` and not in ``a`` (added)."""
    old, new = Counter(a), Counter(b)
    gone, added = sorted((old - new).elements()), sorted((new - old).elements())
    lost = [text for text in gone if not any(not _words(text) - _words(other) for other in added)]
    return lost, added


def compare(old: Path, new: Path) -> int:
    a = json.loads(old.read_text(encoding="utf-8"))
    b = json.loads(new.read_text(encoding="utf-8"))
    problems, notes = [], []
    for name in sorted(set(a["files"]) | set(b["files"])):
        if name not in b["files"]:
            problems.append(f"missing in new: {name}")
        elif name not in a["files"]:
            problems.append(f"new file: {name}")
        elif isinstance(a["files"][name], dict) and "text blocks" in a["files"][name]:
            lost, added = _lost_and_added(a["files"][name]["text blocks"], b["files"][name].get("text blocks", []))
            problems += [f"text lost: {name}: {text[:200]!r}" for text in lost]
            notes += [f"note: text added: {name}: {text[:200]!r}" for text in added]
        elif a["files"][name] != b["files"][name]:
            problems.append(f"differs: {name}: {_first_difference(a['files'][name], b['files'][name])}")
    changed_keys = {k for k in set(a["stage_keys"]) | set(b["stage_keys"])
                    if a["stage_keys"].get(k) != b["stage_keys"].get(k)}  # fmt: skip
    for line in [*problems, *notes]:
        print(line)
    if changed_keys:
        print(f"note: {len(changed_keys)} cache keys changed (content compared above): "
              + ", ".join(sorted(changed_keys)[:8]))  # fmt: skip
    print(f"{len(a['files'])} files compared: " + ("identical" if not problems else f"{len(problems)} differ"))
    return 1 if problems else 0


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                return _first_difference(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{where}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    if isinstance(a, str) and isinstance(b, str):
        lines = [(i, x, y) for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False)) if x != y]
        if lines:
            i, x, y = lines[0]
            return f"{where or '<root>'} line {i + 1}: {x[:200]!r} -> {y[:200]!r}"
    return f"{where or '<root>'}: {str(a)[:200]!r} -> {str(b)[:200]!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("record").add_argument("out", type=Path)
    again = sub.add_parser("fingerprint", help="fingerprint OUT/work again (after changing the normalisation)")
    again.add_argument("out", type=Path)
    again.add_argument("--recorded-in", type=Path, help="the folder OUT was recorded in, when OUT is a copy of it")
    again.add_argument("--recorded-from", type=Path, help="the repository that recorded it, when not this one")
    cmp = sub.add_parser("compare")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.out)
        return 0
    if args.command == "fingerprint":
        write_fingerprint(args.out, args.recorded_in, args.recorded_from)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
