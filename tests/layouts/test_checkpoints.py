"""Checkpoint layouts through the library loader: ours, the original VirNucPro's whole-module pickle, the fork's dict.

Original-layout files come from the original's own class run as ``__main__``
(``checkpoint_files.ORIGINAL_SCRIPT``, built once per session); the same script
scores features the original way, so our loader is checked against the
original's forward pass. Hostile files hide a payload that would ``touch`` a
marker; each must be refused with one clear message and leave no marker.
The CLI side is ``tests/commands/test_evaluate_and_predict_checkpoint_layouts.py``.
"""

from __future__ import annotations

import pytest
import torch

from tests.checkpoint_files import (
    PAYLOADS,
    TINY,
    WHERE,
    appears,
    features_for,
    fork_checkpoint,
    hostile_file,
    run_original,
)
from virnucpro_core.errors import DimensionError, InputError
from virnucpro_core.layouts.checkpoints import detect_layout, load_checkpoint
from virnucpro_core.layouts.foreign_checkpoints import FORK, LAYOUTS, ORIGINAL, PICKLED_MODULES
from virnucpro_core.pickles import load_weights_only

DIFFERENTIAL = {"esm2_3b": 3328, "fastesm": 2048, "tiny": TINY, "eps": TINY, "cuda": TINY}


@pytest.fixture(scope="module")
def original(original_checkpoints):
    """The session's directory of original-layout files (conftest.original_checkpoints)."""
    return original_checkpoints


@pytest.fixture(scope="module")
def original_scores(original):
    """Softmax of the original's own code (its class, torch.load(weights_only=False)) on fixed features."""
    jobs = []
    for name, width in DIFFERENTIAL.items():
        features_for(original / f"{name}.x.pt", width)
        jobs.append({"kind": "predict", "path": str(original / f"{name}.pth"),
                     "features": str(original / f"{name}.x.pt"), "out": str(original / f"{name}.p.pt")})
    run_original(original, jobs)
    return {name: (torch.load(original / f"{name}.x.pt", weights_only=True),
                   torch.load(original / f"{name}.p.pt", weights_only=True)) for name in DIFFERENTIAL}


# --------------------------------------------------------------------------- the original's whole-module pickle


@pytest.mark.parametrize(
    ("name", "width", "protein_model"),
    [("esm2_3b", 3328, "esm2_3b"), ("fresh", 3328, "esm2_3b"), ("fastesm", 2048, "fastesm2_650")],
    ids=["3328-trained", "3328-untrained", "2048"],
)
def test_original_files_load_with_their_weights_and_a_meta_that_guesses_nothing(original, name, width,
                                                                                 protein_model):
    loaded = load_checkpoint(original / f"{name}.pth")
    assert loaded.meta.input_dim == width and loaded.meta.hidden_dim == 512 and loaded.meta.num_classes == 2
    assert loaded.meta.protein_model == protein_model and loaded.meta.dna_model == "dnabert_s"
    assert loaded.meta.features["origin"] == "original VirNucPro whole-module checkpoint"
    assert loaded.meta.features["protein_model_from"] == f"its {width}-d input width"
    unknown = (loaded.meta.which, loaded.meta.epoch, loaded.meta.created, loaded.meta.features["chunk_size"],
               loaded.meta.features["protein_dtype"])  # fmt: skip
    assert unknown == (None,) * 5 and loaded.meta.versions == {}, "fields the file cannot state are not guessed"
    state = torch.load(original / f"{name}.state.pt", weights_only=True)
    assert set(state) == set(loaded.model.state_dict())
    for key, value in state.items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    if name != "fresh":
        assert int(state["bn1.num_batches_tracked"]) > 0 and not torch.allclose(state["bn1.running_var"],
                                                                                torch.ones(512))
    assert not loaded.model.training and detect_layout(original / f"{name}.pth") == ORIGINAL


@pytest.mark.parametrize("name", list(DIFFERENTIAL))
def test_original_scores_match_the_original_code_to_1e_6(original, original_scores, name):
    """Differential: the original's own class and torch.load(weights_only=False) vs our placeholder-read model."""
    x, theirs = original_scores[name]
    loaded = load_checkpoint(original / f"{name}.pth", protein_widths={TINY: "fastesm2_650"})
    with torch.no_grad():
        ours = torch.softmax(loaded.model(x), dim=1)
    assert ours.shape == theirs.shape == (32, 2)
    assert float((ours - theirs).abs().max()) <= 1e-6
    assert float(theirs[:, 1].std()) > 0.05, "scores vary, so the comparison means something"
    if name == "eps":
        assert loaded.model.bn1.eps == 1e-3, "the pickled BatchNorm eps is used, not the default"


def test_a_cuda_saved_file_loads_on_the_cpu(original):
    if not torch.cuda.is_available():  # the file really says CUDA: without map_location torch refuses it here
        with pytest.raises(RuntimeError, match="CUDA"):
            with torch.serialization.safe_globals([(c, n) for n, c in PICKLED_MODULES.items()]):
                torch.load(original / "cuda.pth", weights_only=True)
    loaded = load_checkpoint(original / "cuda.pth", expected_protein_model="fastesm2_650")
    assert next(loaded.model.parameters()).device.type == "cpu"


def test_an_original_width_no_model_has_needs_the_callers_word(original):
    with pytest.raises(DimensionError) as info:
        load_checkpoint(original / "tiny.pth")
    message = str(info.value)
    assert "does not name its protein model" in message and f"its {TINY}-d input fits none" in message, message
    assert "3328 features (DNABERT-S 768 + ESM2 3B 2560)" in message, message
    named = load_checkpoint(original / "tiny.pth", expected_protein_model="fastesm2_650")
    assert named.meta.protein_model == "fastesm2_650"
    assert named.meta.features["protein_model_from"] == "named by the caller"
    stand_in = load_checkpoint(original / "tiny.pth", protein_widths={TINY: "fastesm2_650"})
    assert stand_in.meta.protein_model == "fastesm2_650"


def test_a_3328_original_offered_to_a_2048_pipeline_names_both(original):
    path = original / "esm2_3b.pth"
    with pytest.raises(DimensionError) as info:
        load_checkpoint(path, expected_input_dim=2048, expected_protein_model="fastesm2_650")
    assert f"checkpoint {path} was trained on 3328-d ESM2 3B features; this pipeline feeds 2048-d FastESM2_650 " \
        "features" in str(info.value)
    with pytest.raises(DimensionError, match="trained on ESM2 3B features; this pipeline feeds FastESM2_650"):
        load_checkpoint(path, expected_protein_model="fastesm2_650")


@pytest.mark.parametrize(
    ("name", "words"),
    [("extra", ["unexpected submodule extra (torch.nn.modules.linear.Linear)"]),
     ("no_bn", ["bn1 is missing, not torch.nn.modules.batchnorm.BatchNorm1d"])],
    ids=["extra-layer", "no-batchnorm"],
)
def test_a_pickled_mlp_of_another_shape_is_not_the_original(original, name, words):
    with pytest.raises(InputError, match="is a pickled __main__.MLPClassifier but not the original") as info:
        load_checkpoint(original / f"{name}.pth", expected_protein_model="fastesm2_650")
    assert all(word in str(info.value) for word in words), str(info.value)


def test_a_legacy_format_original_is_refused_with_the_way_out(original):
    with pytest.raises(InputError, match="legacy format") as info:
        load_checkpoint(original / "legacy.pth")
    assert "re-save it with torch >= 1.6" in str(info.value)


# --------------------------------------------------------------------------- the FastESM2 fork's dict


@pytest.mark.parametrize(("width", "dims"), [(TINY, (48, 64)), (2048, (768, 1280))], ids=["stand-in", "real"])
def test_fork_checkpoints_load_with_their_metadata(tmp_path, width, dims):
    model = fork_checkpoint(tmp_path / "model_fastesm650.pth", width, dims=dims)
    raw = torch.load(tmp_path / "model_fastesm650.pth", weights_only=True)
    assert raw["optimizer_state_dict"]["state"][0]["momentum_buffer"].shape == (512, width), "a real SGD state"
    loaded = load_checkpoint(tmp_path / "model_fastesm650.pth", expected_input_dim=width,
                             expected_protein_model="fastesm2_650")  # fmt: skip
    meta = loaded.meta
    assert (meta.protein_model, meta.input_dim, meta.hidden_dim, meta.which, meta.epoch) == (
        "fastesm2_650", width, 512, None, None)
    assert meta.created == "2025-02-03T04:05:06.789" and meta.versions == {"torch": "2.5.1+cu124"}
    assert meta.features["origin"] == LAYOUTS[FORK] and meta.features["checkpoint_version"] == "2.0.0"
    assert meta.features["fork_epoch"] == 11 and meta.features["fork_best_loss"] == 0.3125
    assert meta.features["chunk_size"] is None
    x = torch.randn(5, width)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert detect_layout(tmp_path / "model_fastesm650.pth") == FORK


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"metadata": {"input_dim": 2048, "merged_dim": 2048, "protein_dim": 1280, "dna_dim": 768}}, DimensionError,
         ["hidden_layer.weight is (512, 112), metadata says (512, 2048)"]),
        ({"metadata": {"protein_dim": 2560, "merged_dim": 2608, "input_dim": 2608}}, DimensionError,
         ["protein_dim 2560 is not FastESM2_650's 1280", "hidden_layer.weight is (512, 112)"]),
        ({"metadata": {"merged_dim": 100}}, DimensionError, ["dna_dim 48 + protein_dim 64 != merged_dim 100",
                                                            "input_dim 112 != merged_dim 100"]),
        ({"metadata": {"hidden_dim": 256, "num_class": 3}}, DimensionError,
         ["metadata says (256, 112)", "output_layer.weight has 2 rows, metadata says num_class 3"]),
        ({"metadata": {"model_type": "esm2_3b"}}, InputError, ["model_type 'esm2_3b'"]),
        ({"metadata": {"checkpoint_version": "1.0.0"}}, InputError, ["checkpoint_version '1.0.0'"]),
        ({"metadata": None}, InputError, ["no 'metadata' dict"]),
    ],
    ids=["input-width", "protein-dim", "merged-sum", "hidden-and-classes", "model-type", "version", "no-metadata"],
)
def test_fork_metadata_that_contradicts_itself_or_the_tensors_is_refused(tmp_path, changes, error, words):
    fork_checkpoint(tmp_path / "m.pth")
    raw = torch.load(tmp_path / "m.pth", weights_only=True)
    if changes["metadata"] is None:
        del raw["metadata"]
    else:
        raw["metadata"].update(changes["metadata"])
    torch.save(raw, tmp_path / "m.pth")
    with pytest.raises(error) as info:
        load_checkpoint(tmp_path / "m.pth")
    assert all(word in str(info.value) for word in words), str(info.value)
    assert type(info.value) is error


def test_a_fork_checkpoint_with_nan_weights_is_refused(tmp_path):
    fork_checkpoint(tmp_path / "m.pth")
    raw = torch.load(tmp_path / "m.pth", weights_only=True)
    raw["model_state_dict"]["bn1.running_var"][:3] = float("nan")
    torch.save(raw, tmp_path / "m.pth")
    with pytest.raises(InputError, match=r"3 NaN or infinite weight value\(s\)"):
        load_checkpoint(tmp_path / "m.pth")


# --------------------------------------------------------------------------- hostile pickles


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_the_payloads_are_live(tmp_path, payload):
    """Loaded the unsafe way, the hostile files do run: the refusals below are tested against real payloads."""
    path, marker = hostile_file(tmp_path, "bare", payload, tmp_path)
    torch.load(path, weights_only=False)
    assert appears(marker, 5), "torch.load(weights_only=False) runs the payload"
    features_for(tmp_path / "x.pt", TINY)
    module_marker = tmp_path / "MARKER-module"
    run_original(tmp_path, [
        {"kind": "save", "path": str(tmp_path / "m.pth"), "input_dim": TINY, "hidden": 16, "seed": 0,
         "payload": payload, "marker": str(module_marker)},
        {"kind": "predict", "path": str(tmp_path / "m.pth"), "features": str(tmp_path / "x.pt"),
         "out": str(tmp_path / "p.pt")},
    ])  # fmt: skip
    assert appears(module_marker, 5), "the original's prediction.py runs a payload inside the pickled module"


@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("where", WHERE)
def test_hostile_pickles_are_refused_and_never_run(tmp_path, original, where, payload):
    path, marker = hostile_file(tmp_path, where, payload, original)
    for load in (lambda: load_checkpoint(path, expected_protein_model="fastesm2_650"), lambda: detect_layout(path)):
        with pytest.raises(InputError) as info:
            load()
        message = str(info.value)
        name = PAYLOADS[payload][1]
        assert message.startswith(f"{path} cannot be loaded safely as a checkpoint: its pickle calls or builds "
                                  f"{name}, which no checkpoint layout needs; nothing of it was run"), message
        assert f"found: pickled globals {name}" in message and "to fix: do not load it with" in message, message
    assert not appears(marker, 0.3), "the payload ran"


def test_torch_refuses_what_the_scan_would_miss(tmp_path, monkeypatch):
    """The scan only names globals: with it blinded, torch.load(weights_only=True) still refuses the payload."""
    from virnucpro_core.layouts import checkpoints

    path, marker = hostile_file(tmp_path, "bare", "system", tmp_path)
    monkeypatch.setattr(checkpoints, "pickled_globals", lambda _: ([], True))
    with pytest.raises(InputError, match="cannot be loaded safely as a checkpoint") as info:
        load_checkpoint(path)
    assert "found: UnpicklingError: Trying to load unsupported GLOBAL posix.system" in str(info.value), str(info.value)
    assert not appears(marker, 0.3)


def test_a_truncated_checkpoint_is_one_clear_error(tmp_path, original):
    data = (original / "tiny.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot be loaded safely as a checkpoint") as info:
        load_checkpoint(tmp_path / "cut.pth")
    assert "found: " in str(info.value) and "Traceback" not in str(info.value)


def test_placeholders_run_no_code_of_the_real_classes(original):
    tree = load_weights_only(original / "tiny.pth", PICKLED_MODULES.values())
    assert type(tree).__name__ == "PickledMLP" and not isinstance(tree, torch.nn.Module)
    assert type(tree.attributes["_modules"]["bn1"]).__name__ == "PickledBatchNorm1d"
