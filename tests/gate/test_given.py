"""Features a run is given rather than extracts (virnucpro_core/extract/reuse.py, virnucpro_core/gate/given.py).

The DNABERT-S block of merged features is their first columns, as VirNucPro's
``units.merge_data`` concatenates them (``torch.cat((nucleotide_data,
protein_data))``); a run given ESM2 3B merged features of its FASTA inputs
(``--baseline-features``) extracts only FastESM2 and takes DNABERT-S from them.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from virnucpro_core.errors import InputError
from virnucpro_core.extract.reuse import dna_columns, missing_ids
from virnucpro_core.gate.settings import SMOKE_DATA, Settings
from virnucpro_core.gate.validation import ValidationRun
from virnucpro_core.layouts.features import load_merged, open_rows, rows_in_memory, save_merged
from virnucpro_core.layouts.declarations import Declaration
from virnucpro_core.layouts.virnucpro import import_rows, load_features


def test_the_dna_block_is_the_first_columns_in_the_order_asked_for():
    data = torch.arange(4 * 7, dtype=torch.float32).view(4, 7)
    rows = rows_in_memory({"ids": ["a", "b", "c", "d"], "data": data, "labels": torch.ones(4, dtype=torch.long),
                           "lengths": torch.zeros(4, dtype=torch.long),
                           "meta": {"dna_dim": 3, "size": "tiny", "dna": {"model": "dnabert_s", "dtype": "float32",
                                                                          "weights": "pretrained", "pooling": "mean"},
                                    "protein": {"model": "esm2_3b"}}})
    out = dna_columns(rows, ["c", "a"], [301, 299], source="two files")
    assert out.ids == ["c", "a"] and torch.equal(out.data, data[[2, 0], :3])
    assert out.lengths.tolist() == [301, 299]
    assert (out.meta["model"], out.meta["dim"], out.meta["dtype"], out.meta["reused_from"]["columns"]) == (
        "dnabert_s", 3, "float32", [0, 3])
    assert "DNABERT-S's columns first" in out.meta["reused_from"]["column_order"]
    assert missing_ids(rows, ["a", "x", "y"]) == ["x", "y"]
    with pytest.raises(InputError, match="lack 2 of the 3 samples") as error:
        dna_columns(rows, ["a", "x", "y"], [1, 1, 1], source="two files")
    assert "x, y" in str(error.value)


def test_virnucpro_merged_files_give_their_dnabert_block(tmp_path):
    """A file in the original's layout ({'ids', 'data', 'labels'}, tiny widths: 48 DNABERT-S + 128 ESM2 3B)."""
    dna, protein = torch.randn(5, 48), torch.randn(5, 128)
    ids = [f"v{i}_1F" for i in range(5)]
    torch.save({"ids": ids, "data": torch.cat((dna, protein), dim=-1), "labels": [1]}, tmp_path / "v_merged.pt")
    rows = import_rows([tmp_path / "v_merged.pt"], "viral", [Declaration.parse("esm2_3b:float32")], size="tiny")
    out = dna_columns(rows, ids[::-1], [301] * 5, source="v_merged.pt")
    assert torch.equal(out.data, dna.flip(0))
    assert out.meta["provenance"] == "declared" and out.meta["reused_from"]["protein_model"] == "esm2_3b"


def test_baseline_features_complete_fasta_inputs_only(tmp_path):
    tree = tmp_path / "data_merge"
    for folder, label in (("viral.1.1_merged", 1), ("bacteria_merged", 0)):
        (tree / folder).mkdir(parents=True)
        torch.save({"ids": ["x"], "data": torch.zeros(1, 176), "labels": [label]}, tree / folder / "f_merged.pt")
    fasta = {"viral": [SMOKE_DATA["viral"]], "host": [SMOKE_DATA["host"]]}
    common = dict(weights="random", size="tiny", declarations=["esm2_3b:float32"], baseline_features=[tree])
    settings = Settings.resolve(**fasta, **common)
    assert [p.parent.name for p in settings.baseline_viral] == ["viral.1.1_merged"]
    assert [p.parent.name for p in settings.baseline_host] == ["bacteria_merged"]
    with pytest.raises(InputError, match="both describe the baseline"):
        Settings.resolve(**fasta, **common, baseline_metrics=str(tmp_path / "m.json"))
    with pytest.raises(InputError, match="completes FASTA inputs"):
        Settings.resolve(viral=[tree / "viral.1.1_merged"], host=[tree / "bacteria_merged"], **common)
    with pytest.raises(InputError, match="esm2_3b"):  # VirNucPro's layout records no provenance: declare it
        Settings.resolve(**fasta, **{**common, "declarations": []})


@pytest.mark.slow
def test_a_run_given_esm2_3b_features_extracts_only_fastesm2(tmp_path, smoke_copy):
    """The smoke data's own ESM2 3B merged files given back: FastESM2's DNABERT-S block is theirs, bit for bit."""
    artifacts = smoke_copy(tmp_path / "artifacts")
    smoke = ValidationRun(Settings.resolve(artifacts=artifacts))
    given = tmp_path / "given"
    given.mkdir()
    for label in ("viral", "host"):
        shutil.copy(smoke.merged("baseline", label), given / f"{label}_esm2_3b.pt")
    run = ValidationRun(Settings.resolve(viral=[SMOKE_DATA["viral"]], host=[SMOKE_DATA["host"]], weights="random",
                                         size="tiny", artifacts=artifacts, baseline_features=[given]))
    fast, baseline = (open_rows(run.merged(embedder, "viral")) for embedder in ("fast", "baseline"))
    built = [record.stage for record in run.stages if not record.reused]
    assert not any(stage.startswith(("extract[dnabert_s", "extract[esm2_3b")) for stage in built), built
    assert "reuse[dnabert_s,viral]" in built and "import[baseline,viral]" in built, built
    order = baseline.positions(fast.ids)
    assert torch.equal(fast.gather(list(range(len(fast))))[:, :48], baseline.gather(order)[:, :48])
    dna = load_features(run.features("dnabert_s", "viral"))
    assert dna.meta["reused_from"]["columns"] == [0, 48]
    assert set(run.not_extracted()) == {"esm2_3b", "dnabert_s"}

    partial = tmp_path / "partial"
    partial.mkdir()
    whole = load_merged(given / "viral_esm2_3b.pt")
    keep = list(range(1, len(whole.ids)))
    save_merged({"ids": [whole.ids[i] for i in keep], "data": whole.data[keep], "labels": whole.labels[keep],
                 "lengths": whole.lengths[keep], "meta": whole.meta}, partial / "viral_esm2_3b.pt")
    shutil.copy(given / "host_esm2_3b.pt", partial / "host_esm2_3b.pt")
    lacking = ValidationRun(Settings.resolve(viral=[SMOKE_DATA["viral"]], host=[SMOKE_DATA["host"]],
                                             weights="random", size="tiny", artifacts=tmp_path / "a2",
                                             baseline_features=[partial]))
    with pytest.raises(InputError, match="lack 1 of the") as error:
        lacking.merged("baseline", "viral")
    assert whole.ids[0] in str(error.value)
