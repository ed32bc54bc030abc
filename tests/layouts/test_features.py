"""Feature-file layouts: VirNucPro's merged and per-model files, data_merge trees, declared provenance, import.

The foreign files are built by ``tests/virnucpro_layouts.py`` from the
original code's documented layouts, with tiny random tensors.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests import virnucpro_layouts as V
from virnucpro_core import cli
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.extract.merged import merge_features
from virnucpro_core.layouts import features as L
from virnucpro_core.layouts import virnucpro as VL
from virnucpro_core.layouts.declarations import Declaration
from virnucpro_core.pickles import torch_load
from virnucpro_core.layouts.virnucpro import load_features

TINY = V.widths("tiny")


def foreign(path: Path, label: int | None, n: int = 6, width: int = TINY["fastesm2_650"], seed: int = 0) -> Path:
    ids = V.sample_ids("viral" if label else "host", seed, n)
    return V.write_merged(path, ids, V.separable_rows(ids, label or 0, width, seed), label)


@pytest.mark.parametrize(("obj", "layout"), [
    ({"ids": [], "data": torch.zeros(0, 2), "labels": [1]}, L.ORIGINAL_MERGED),
    ({"ids": [], "data": torch.zeros(0, 2)}, L.ORIGINAL_MERGED),
    ({"ids": [], "data": 0, "labels": 0, "lengths": 0, "meta": {}}, L.OURS_MERGED),
    ({"ids": [], "data": 0, "lengths": 0, "meta": {}}, L.OURS_FEATURES),
    ({"nucleotide": [], "data": []}, L.ORIGINAL_DNABERT),
    ({"proteins": [], "data": []}, L.ORIGINAL_ESM),
    ({"ids": [], "data": 0, "meta": {}}, L.UNKNOWN),
    ([1, 2], L.UNKNOWN),
], ids=["original-merged", "original-unlabelled", "ours-merged", "ours-features", "original-dnabert", "original-esm",
        "half-ours", "list"])  # fmt: skip
def test_detect_layout(obj, layout):
    assert L.detect_layout(obj) == layout


@pytest.mark.parametrize("labels", [[1], torch.tensor([1]), [1] * 6, torch.ones(6, dtype=torch.long)],
                         ids=["list", "tensor", "per-row-list", "per-row-tensor"])
def test_original_merged_file_label_forms(tmp_path, labels):
    path = foreign(tmp_path / "f.pt", None)
    obj = torch.load(path, weights_only=True)
    torch.save({**obj, "labels": labels}, path)
    read = VL.read_foreign_merged(path)
    assert read.label == 1 and len(read) == 6 and read.width == TINY["fastesm2_650"]


def test_original_merged_without_labels_reads_as_unlabelled(tmp_path):
    assert VL.read_foreign_merged(foreign(tmp_path / "f.pt", None)).label is None


@pytest.mark.parametrize(("change", "words"), [
    ({"labels": [0, 1]}, "'labels' has 2 entries"),
    ({"labels": [0, 1, 0, 1, 0, 1]}, "mixes 0 and 1"),
    ({"labels": [2]}, "holds 2"),
    ({"data": torch.zeros(5, 3)}, "5 rows for 6 ids"),
    ({"ids": ["a"] * 6}, "duplicate id"),
], ids=["label-count", "mixed", "unknown-label", "rows", "duplicates"])  # fmt: skip
def test_bad_original_merged_files_are_named(tmp_path, change, words):
    path = foreign(tmp_path / "f.pt", 1)
    torch.save({**torch.load(path, weights_only=True), **change}, path)
    with pytest.raises(InputError, match="not a usable VirNucPro merged file") as error:
        VL.read_foreign_merged(path)
    assert words in str(error.value) and str(path) in str(error.value)


def test_data_merge_tree_labels_by_folder_and_groups(tmp_path):
    root = V.write_data_merge(tmp_path / "data_merge", "fastesm2_650", rows=6)
    files = VL.scan_data_merge(root)
    assert VL.is_data_merge_tree(root) and not VL.is_data_merge_tree(root / "viral.1.1_merged")
    assert [(f.path.parent.name, f.label, f.group) for f in files] == [
        ("bacteria.1.1_merged", "host", "bacteria.1.1"),
        ("fungi.1.1_merged", "host", "fungi.1.1"),
        ("viral.1.1_merged", "viral", "viral.1.1"),
        ("viral.1.1_merged", "viral", "viral.1.1"),
    ]


def test_import_records_the_declaration_and_keeps_every_row(tmp_path):
    root = V.write_data_merge(tmp_path / "dm", "esm2_3b", rows=6)
    tree = VL.scan_data_merge(root)
    viral = [f.path for f in tree if f.label == "viral"]
    declared = Declaration.parse("esm2_3b:float32")
    merged = VL.import_merged(viral, "viral", [declared], size="tiny", groups={f.path: f.group for f in tree})
    originals = [VL.read_foreign_merged(p) for p in viral]
    assert merged.ids == [i for f in originals for i in f.ids]
    assert torch.equal(merged.data, torch.cat([f.data for f in originals]))
    assert merged.labels.tolist() == [1] * 12 and merged.lengths.tolist() == [0] * 12
    meta = merged.meta
    assert meta["provenance"] == "declared" and meta["lengths_known"] is False
    assert meta["protein"]["model"] == "esm2_3b" and meta["protein"]["dtype"] == "float32"
    assert meta["protein"]["declared_by"] == "esm2_3b:float32:pretrained" and meta["dna"]["model"] == "dnabert_s"
    assert meta["imported"]["groups"] == {"viral.1.1": 12}
    # The result is one of ours: the whole pipeline reads it.
    merged.save(tmp_path / "viral.pt")
    assert L.load_merged(tmp_path / "viral.pt").meta["protein"]["provenance"] == "declared"


def test_import_needs_a_declaration_naming_the_model_the_width_gives(tmp_path):
    path = foreign(tmp_path / "f.pt", 1, width=TINY["esm2_3b"])
    with pytest.raises(InputError, match="ESM2 3B features in VirNucPro's layout") as error:
        VL.import_merged([path], "viral", [Declaration.parse("fastesm2_650:float16")], size="tiny")
    assert "--declare esm2_3b:float32" in str(error.value)


def test_import_refuses_contradicting_labels_widths_and_nan(tmp_path):
    declared = [Declaration.parse("fastesm2_650:float16")]
    host_file = foreign(tmp_path / "host.pt", 0)
    with pytest.raises(InputError, match="labelled 0 \\(host\\) but was given as viral"):
        VL.import_merged([host_file], "viral", declared, size="tiny")
    odd = foreign(tmp_path / "odd.pt", 1, width=50)
    with pytest.raises(DimensionError, match="50 wide"):
        VL.import_merged([odd], "viral", declared, size="tiny")
    mixed = [foreign(tmp_path / "a.pt", 1), foreign(tmp_path / "b.pt", 1, width=TINY["esm2_3b"], seed=1)]
    with pytest.raises(DimensionError, match="different widths"):
        VL.import_merged(mixed, "viral", declared, size="tiny")
    nan = foreign(tmp_path / "nan.pt", 1)
    obj = torch.load(nan, weights_only=True)
    obj["data"][2, 3] = float("nan")
    torch.save(obj, nan)
    with pytest.raises(InputError, match="nan.pt: 1 row"):
        VL.import_merged([nan], "viral", declared, size="tiny")


@pytest.mark.parametrize(("text", "words"), [
    ("esm2_3b", "not two or three"),
    ("esm3:float32", "model 'esm3'"),
    ("esm2_3b:fp16", "dtype 'fp16'"),
    ("esm2_3b:float32:trained", "weights 'trained'"),
], ids=["parts", "model", "dtype", "weights"])  # fmt: skip
def test_bad_declarations_are_explained(text, words):
    with pytest.raises(InputError, match="cannot be read") as error:
        Declaration.parse(text)
    assert words in str(error.value)


def test_our_merged_loader_names_an_original_file_and_the_command_that_converts_it(tmp_path):
    with pytest.raises(InputError, match="VirNucPro merged features") as error:
        L.load_merged(foreign(tmp_path / "f.pt", 1))
    assert "virnucpro import" in str(error.value)


def test_original_per_model_files_merge_like_ours(tmp_path):
    ids = [f"r{i}_chunk_1F{i % 3 + 1}" for i in range(5)]
    dna = torch.randn(5, get_width("dnabert_s"))
    protein = torch.randn(5, get_width("esm2_3b"))
    dna_file = V.write_original_dnabert(tmp_path / "x_DNABERT_S.pt", ids, dna)
    protein_file = V.write_original_esm(tmp_path / "x_ESM.pt", list(reversed(ids)), protein)
    loaded = load_features(dna_file)
    assert loaded.meta["model"] == "dnabert_s" and loaded.meta["layout"] == L.ORIGINAL_DNABERT
    merged = merge_features(dna_file, protein_file, "viral")
    assert merged.ids == list(reversed(ids)) and merged.dim == get_width("dnabert_s") + get_width("esm2_3b")
    assert torch.allclose(merged.data[0, : get_width("dnabert_s")], dna[4])
    assert merged.meta["protein"]["model"] == "esm2_3b"


def get_width(model: str) -> int:
    from virnucpro_core.models.specs import get_spec

    return get_spec(model).dim


def test_import_command_converts_a_tree_per_model_and_class(tmp_path, capsys):
    base = V.write_data_merge(tmp_path / "base", "esm2_3b", rows=6)
    fast = V.write_data_merge(tmp_path / "fast", "fastesm2_650", rows=6)
    out = tmp_path / "imported"
    code = cli.main(["import", str(base), str(fast), "--declare", "esm2_3b:float32", "--declare",
                     "fastesm2_650:float16", "--size", "tiny", "--out", str(out)])
    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "host_esm2_3b.pt", "host_fastesm2_650.pt", "import.json", "viral_esm2_3b.pt", "viral_fastesm2_650.pt"]
    host = L.load_merged(out / "host_fastesm2_650.pt")
    assert len(host) == 12 and host.meta["protein"]["dtype"] == "float16"
    assert host.meta["imported"]["groups"] == {"bacteria.1.1": 6, "fungi.1.1": 6}


class _RunsCode:
    """Unpickling this object would run a shell command (what a malicious file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_feature_file_that_asks_to_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    torch.save({"ids": ["a"], "data": torch.zeros(1, 4), "labels": [1], "x": _RunsCode(marker)}, path)
    with pytest.raises(InputError, match="asks to run code") as error:
        torch_load(path, "merged feature")
    assert "system" in str(error.value)
    assert not marker.exists()
