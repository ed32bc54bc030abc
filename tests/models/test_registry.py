"""Model registry, offline loaders and stand-ins (CPU, tiny stand-ins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from virnucpro_core.models import registry as models
from virnucpro_core.models import hub_cache
from virnucpro_core.models import specs
from virnucpro_core.errors import DimensionError, InputError, WeightsNotFoundError
from virnucpro_core.models import esm
from virnucpro_core.models import esm_config
from virnucpro_core.models.esm import ESM2_VOCAB
from virnucpro_core.models.registry import check_identity, load_model, matmul_flops_per_token, write_standin
from virnucpro_core.models.specs import ModelIdentity, get_spec

ESM_NAMES = ["esm2_3b", "fastesm2_650"]
REVISION = "0123456789abcdef0123456789abcdef01234567"
IDS = torch.tensor([[0, 20, 15, 11, 5, 19, 4, 7, 2]])  # <cls> M K T A Y L V <eos>
ALL_NAMES = ESM_NAMES + ["dnabert_s"]


def hidden(loaded, ids=IDS):
    with torch.inference_mode():
        if loaded.spec.family == "esm":
            return loaded.model(input_ids=ids).last_hidden_state
        return loaded.model(ids)


def dna_ids(loaded):
    return torch.tensor([loaded.tokenizer("ACGTACGGTTCAAGT")["input_ids"]])


# --------------------------------------------------------------------------- registry


def test_registry_names_dims_and_families():
    assert {name: (spec.dim, spec.family) for name, spec in specs.SPECS.items()} == {
        "esm2_3b": (2560, "esm"),
        "fastesm2_650": (1280, "esm"),
        "dnabert_s": (768, "dnabert"),
    }
    assert get_spec("fastesm2_650").hub_id == "Synthyra/FastESM2_650"
    assert get_spec("esm2_3b").hub_id == "facebook/esm2_t36_3B_UR50D"
    assert "1..min(L, 1024)" in get_spec("esm2_3b").pooling
    assert "[CLS] and [SEP] included" in get_spec("dnabert_s").pooling


def test_unknown_model_lists_allowed_names():
    with pytest.raises(InputError) as info:
        get_spec("esm1b")
    assert "esm2_3b, fastesm2_650, dnabert_s" in str(info.value), str(info.value)


@pytest.mark.parametrize(("option", "value"), [("weights", "finetuned"), ("size", "huge"), ("dtype", "float64")])
def test_unknown_options_list_allowed_values(option, value):
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", **{"weights": "random", option: value}, device="cpu")
    assert value in str(info.value) and "one of" in str(info.value)


def test_dim_for_sizes():
    spec = get_spec("esm2_3b")
    assert spec.dim_for("full") == spec.dim_for(None) == 2560
    assert spec.dim_for("tiny") == 128
    assert get_spec("fastesm2_650").dim_for("tiny") == 64


def test_tiny_esm2_3b_costs_clearly_more_than_tiny_fastesm2():
    big, small = (specs.standin_config(n, "tiny") for n in ESM_NAMES)
    assert big.num_hidden_layers > small.num_hidden_layers and big.hidden_size > small.hidden_size
    tiny_ratio = matmul_flops_per_token("esm2_3b", "tiny") / matmul_flops_per_token("fastesm2_650", "tiny")
    full_ratio = matmul_flops_per_token("esm2_3b", "full") / matmul_flops_per_token("fastesm2_650", "full")
    assert tiny_ratio >= 3, f"tiny cost ratio {tiny_ratio:.2f} < 3"
    assert 4.0 < full_ratio < 4.8, f"real-architecture ratio {full_ratio:.2f}, expected ~4.4"


def test_full_configs_are_the_published_architectures():
    c3b, c650 = (specs.standin_config(n, "full") for n in ESM_NAMES)
    assert (c3b.num_hidden_layers, c3b.hidden_size, c3b.num_attention_heads, c3b.intermediate_size) == (
        36,
        2560,
        40,
        10240,
    )
    assert (c650.num_hidden_layers, c650.hidden_size, c650.num_attention_heads, c650.intermediate_size) == (
        33,
        1280,
        20,
        5120,
    )
    assert c3b.position_embedding_type == "rotary" and c3b.vocab_size == 33
    assert c3b._attn_implementation == "sdpa"


# --------------------------------------------------------------------------- stand-ins


def test_seeded_standins_are_reproducible():
    a = load_model("fastesm2_650", weights="random", device="cpu", seed=3)
    b = load_model("fastesm2_650", weights="random", device="cpu", seed=3)
    c = load_model("fastesm2_650", weights="random", device="cpu", seed=4)
    assert torch.equal(hidden(a), hidden(b))
    assert not torch.allclose(hidden(a), hidden(c))
    assert a.provenance == {
        "weights": "random",
        "size": "tiny",
        "source": "seeded random init",
        "revision": None,
        "seed": 3,
        "dtype": "float32",
        "vocab": esm.BUILTIN_VOCAB_SOURCE,
        "vocab_sha256": models.vocab_sha256(esm.esm_tokenizer()),
        "architecture": esm_config.standin_config_file("fastesm2_650", "tiny").architecture(),
    }
    assert not a.model.training


@pytest.mark.parametrize("name", ALL_NAMES)
def test_standin_round_trip_through_the_real_loader(name, tmp_path):
    in_memory = load_model(name, weights="random", size="tiny", device="cpu", seed=7)
    write_standin(name, "tiny", tmp_path, seed=7)
    from_disk = load_model(name, model_path=tmp_path, device="cpu")
    ids = IDS if in_memory.spec.family == "esm" else dna_ids(in_memory)
    assert torch.equal(hidden(in_memory, ids), hidden(from_disk, ids)), "disk round trip changed the outputs"
    assert from_disk.provenance["weights"] == "random" and from_disk.provenance["seed"] == 7
    assert from_disk.provenance["size"] == "tiny" and from_disk.provenance["source"] == str(tmp_path)
    assert from_disk.dim == get_spec(name).dim_for("tiny")


@pytest.mark.parametrize("name", ["fastesm2_650", "dnabert_s"])
def test_standin_marker_is_written_before_the_weights(name, tmp_path, monkeypatch):
    """An interrupted stand-in write must not leave random weights that load as pretrained."""
    from virnucpro_core.models import dnabert

    def interrupted(*args, **kwargs):
        assert (tmp_path / models.STANDIN_MARKER).is_file(), "the marker must exist before any weight is written"
        (tmp_path / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(esm, "save_safetensors", interrupted)
    monkeypatch.setattr(dnabert, "save_dnabert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_standin(name, "tiny", tmp_path, seed=3)
    marker = json.loads((tmp_path / models.STANDIN_MARKER).read_text())
    assert marker["name"] == name and marker["seed"] == 3 and marker["size"] == "tiny"
    assert not list(tmp_path.glob(".*.part")), "the marker is written atomically"


@pytest.mark.parametrize(("name", "model_type"), [("esm2_3b", "esm"), ("fastesm2_650", "fast_esm")])
def test_esm_standin_uses_the_published_layout(name, model_type, tmp_path):
    write_standin(name, "tiny", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == model_type
    assert (tmp_path / "vocab.txt").read_text().split() == list(ESM2_VOCAB)
    keys = set(load_file(tmp_path / "model.safetensors"))
    layers = config["num_hidden_layers"]
    assert all(k.startswith(("esm.", "lm_head.")) for k in keys)
    assert {f"esm.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq" for i in range(layers)} <= keys
    assert "esm.rotary_embeddings.inv_freq" not in keys
    if model_type == "fast_esm":
        assert config["architectures"] == ["FastEsmForMaskedLM"] and "auto_map" in config


def test_transformers_own_loader_agrees_on_the_esm2_standin(tmp_path):
    """Our stand-in layout is one transformers itself reads as ESM-2 (model_type esm)."""
    from transformers import EsmModel
    from transformers.utils import logging as hf_logging

    write_standin("esm2_3b", "tiny", tmp_path, seed=1)
    ours = load_model("esm2_3b", model_path=tmp_path, device="cpu")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the lm_head keys are reported as unused, as for the real checkpoint
    try:
        theirs = EsmModel.from_pretrained(tmp_path, add_pooling_layer=False, attn_implementation="sdpa").eval()
    finally:
        hf_logging.set_verbosity(verbosity)
    with torch.inference_mode():
        assert torch.equal(hidden(ours), theirs(input_ids=IDS).last_hidden_state)


def _perturb_inv_freq(directory: Path, factor: float) -> torch.Tensor:
    path = directory / "model.safetensors"
    state = load_file(path)
    perturbed = None
    for key in state:
        if key.endswith("rotary_embeddings.inv_freq"):
            perturbed = state[key] * factor
            state[key] = perturbed.clone()
    save_file(state, str(path), metadata={"format": "pt"})
    return perturbed


def test_fastesm_checkpoint_uses_its_stored_rotary_frequencies(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path, seed=2)
    default = load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    stored = _perturb_inv_freq(tmp_path, 1.37)
    loaded = load_model("fastesm2_650", model_path=tmp_path, device="cpu")

    assert torch.equal(loaded.model.rotary_embeddings.inv_freq, stored), "stored inv_freq was not loaded"
    assert not torch.allclose(stored, default.model.rotary_embeddings.inv_freq)
    assert not torch.allclose(hidden(loaded), hidden(default)), "the stored frequencies do not reach the output"
    with torch.no_grad():
        default.model.rotary_embeddings.inv_freq.copy_(stored)
    assert torch.equal(hidden(loaded), hidden(default)), "only inv_freq should differ"


def test_rotary_table_stays_float32_in_bfloat16(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    stored = _perturb_inv_freq(tmp_path, 0.91)
    loaded = load_model("fastesm2_650", model_path=tmp_path, device="cpu", dtype="bfloat16")
    assert loaded.model.embeddings.word_embeddings.weight.dtype == torch.bfloat16
    assert loaded.model.rotary_embeddings.inv_freq.dtype == torch.float32
    assert torch.equal(loaded.model.rotary_embeddings.inv_freq, stored)
    assert loaded.provenance["dtype"] == "bfloat16"


def test_checkpoint_problems_are_collected_into_one_error(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    path = tmp_path / "model.safetensors"
    state = load_file(path)
    del state["esm.encoder.layer.1.output.dense.weight"]
    state["esm.encoder.layer.0.attention.self.extra.weight"] = torch.zeros(2)
    state["esm.encoder.emb_layer_norm_after.weight"] = torch.zeros(3)
    state["esm.encoder.layer.1.attention.self.rotary_embeddings.inv_freq"] *= 2
    save_file(state, str(path))
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    message = str(info.value)
    for expected in (
        "1 missing: encoder.layer.1.output.dense.weight",
        "1 unexpected: encoder.layer.0.attention.self.extra.weight",
        "encoder.emb_layer_norm_after.weight: checkpoint (3,), model (64,)",
        "rotary inv_freq differs between layers",
    ):
        assert expected in message, message


def test_checkpoint_of_another_width_is_a_dimension_error(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    with pytest.raises(DimensionError) as info:
        load_model("esm2_3b", model_path=tmp_path, device="cpu", allow_other_model=True)
    message = str(info.value)
    assert f"{tmp_path} is not ESM2 3B (facebook/esm2_t36_3B_UR50D): its config.json describes another model of " \
           "hidden size 64" in message, message
    assert ('differs from ESM2 3B in model_type "fast_esm" (expected "esm"); num_hidden_layers 2 (expected 36); '
            "hidden_size 64 (expected 2560); num_attention_heads 4 (expected 40)") in message, message
    assert "not even with --allow-other-model" in message, message


def test_non_esm_config_is_rejected(tmp_path):
    write_standin("fastesm2_650", "tiny", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(InputError, match="model_type 'bert'"):
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")


# --------------------------------------------------------------------------- model identity


def test_registry_states_what_each_model_is():
    assert {name: spec.identity for name, spec in specs.SPECS.items()} == {
        "esm2_3b": ModelIdentity("esm", 36, 2560, 40, 33),
        "fastesm2_650": ModelIdentity("fast_esm", 33, 1280, 20, 33),
        "dnabert_s": ModelIdentity("bert", 12, 768, 12, 4096),
    }
    assert {name: spec.identity_for("tiny") for name, spec in specs.SPECS.items()} == {
        "esm2_3b": ModelIdentity("esm", 6, 128, 8, 33),
        "fastesm2_650": ModelIdentity("fast_esm", 2, 64, 4, 33),
        "dnabert_s": ModelIdentity("bert", 2, 48, 6, 4096),
    }
    assert get_spec("fastesm2_650").identity.describe() == "model_type fast_esm, 33 layers × 1280, 20 heads, vocabulary 33"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_the_identities_are_what_the_configs_we_write_state(name, tmp_path):
    """The stand-ins' config.json (tiny) and the published config (full) state the registry's identities."""
    from virnucpro_core.models import dnabert_config

    spec = get_spec(name)
    fields = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
    write_standin(name, "tiny", tmp_path)
    tiny = json.loads((tmp_path / "config.json").read_text())
    full = esm_config.esm_config_dict(name, "full") if spec.family == "esm" else dnabert_config.FULL_CONFIG.to_dict()
    assert ModelIdentity(*(tiny[f] for f in fields)) == spec.identity_for("tiny")
    assert ModelIdentity(*(full[f] for f in fields)) == spec.identity


@pytest.mark.parametrize(
    ("name", "found", "expected"),
    [
        ("fastesm2_650", ModelIdentity("esm", 33, 1280, 20, 33),
         'found: model_type esm, 33 layers × 1280, 20 heads, vocabulary 33; differs from FastESM2_650 in model_type '
         '"esm" (expected "fast_esm")'),
        ("esm2_3b", ModelIdentity("esm", 32, 2560, 32, 33),
         "differs from ESM2 3B in num_hidden_layers 32 (expected 36); num_attention_heads 32 (expected 40)"),
        ("esm2_3b", ModelIdentity("esm", 36, 2560, 40, 35), "differs from ESM2 3B in vocab_size 35 (expected 33)"),
        ("dnabert_s", ModelIdentity("bert", 12, 768, 16, 4096),
         "differs from DNABERT-S in num_attention_heads 16 (expected 12)"),
    ],
    ids=["esm2-650m-as-fastesm2", "another-2560d-model", "another-vocabulary", "dnabert-heads"],
)  # fmt: skip
def test_another_model_of_the_same_width_is_refused_with_every_difference(name, found, expected):
    with pytest.raises(InputError) as info:
        check_identity(get_spec(name), found, Path("/models/other"), path_option="--fast-model")
    message = str(info.value)
    assert expected in message, message
    assert "point --fast-model at a copy of" in message and "add --allow-other-model" in message, message
    assert not isinstance(info.value, DimensionError)


def test_esm2_650m_offered_as_fastesm2_is_named():
    with pytest.raises(InputError) as info:
        check_identity(get_spec("fastesm2_650"), ModelIdentity("esm", 33, 1280, 20, 33), Path("/m/esm2"))
    message = str(info.value)
    assert message.splitlines()[0] == ("/m/esm2 is not FastESM2_650 (Synthyra/FastESM2_650): its config.json "
                                       "describes ESM-2 650M (facebook/esm2_t33_650M_UR50D)"), message
    assert ("expected: FastESM2_650: model_type fast_esm, 33 layers × 1280, 20 heads, vocabulary 33; or its tiny "
            "stand-in: model_type fast_esm, 2 layers × 64, 4 heads, vocabulary 33") in message, message


def test_the_identities_themselves_are_accepted_as_full_and_tiny():
    for name, spec in specs.SPECS.items():
        assert check_identity(spec, spec.identity, Path("x")) == ("full", None)
        assert check_identity(spec, spec.identity_for("tiny"), Path("x")) == ("tiny", None)


def _esm_directory(directory: Path, model_type: str, layers: int, hidden: int, heads: int) -> Path:
    """A consistent ESM directory (config.json, weights and vocabulary agree) of a shape of our choosing."""
    from transformers import EsmModel

    config = {**esm_config.esm_config_dict("esm2_3b", "tiny"), "model_type": model_type, "num_hidden_layers": layers,
              "hidden_size": hidden, "num_attention_heads": heads, "intermediate_size": 4 * hidden}
    torch.manual_seed(0)
    model = EsmModel(esm_config.esm_config(config), add_pooling_layer=False)
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    esm.save_safetensors(esm.esm_checkpoint_state(model), directory / "model.safetensors")
    esm.esm_tokenizer().save_pretrained(str(directory))
    return directory


def test_a_directory_of_another_depth_and_heads_is_refused_before_its_weights_are_read(tmp_path, monkeypatch):
    from virnucpro_core.models.hub_weights import HubWeights

    directory = _esm_directory(tmp_path / "other", "esm", 4, 128, 4)

    def read(*args, **kwargs):
        raise AssertionError("the weights were read before the identity was checked")

    monkeypatch.setattr(HubWeights, "state_dict", read)
    with pytest.raises(InputError) as info:
        load_model("esm2_3b", model_path=directory, device="cpu", path_option="--baseline-model")
    message = str(info.value)
    assert ("found: model_type esm, 4 layers × 128, 4 heads, vocabulary 33; differs from its tiny stand-in in "
            "num_hidden_layers 4 (expected 6); num_attention_heads 4 (expected 8)") in message, message
    assert "point --baseline-model at a copy of facebook/esm2_t36_3B_UR50D" in message, message


def _as_esm2(directory: Path) -> Path:
    """A FastESM2 stand-in whose config.json says ``model_type: esm``: at full size, ESM-2 650M's identity."""
    write_standin("fastesm2_650", "tiny", directory, seed=3)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "esm"}))
    return directory


def test_an_esm_model_type_is_not_fastesm2(tmp_path):
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=_as_esm2(tmp_path), device="cpu")
    assert 'differs from its tiny stand-in in model_type "esm" (expected "fast_esm")' in str(info.value)


def test_allow_other_model_loads_it_and_records_what_it_is(tmp_path, caplog):
    from virnucpro_core.extract.embeddings import extract_embeddings

    with caplog.at_level("WARNING", logger="virnucpro_core.models.registry"):
        other = load_model("fastesm2_650", model_path=_as_esm2(tmp_path), device="cpu", allow_other_model=True)
    record = {
        "expected": {"model": "fastesm2_650", "display_name": "FastESM2_650", "hub_id": "Synthyra/FastESM2_650",
                     "size": "tiny", "model_type": "fast_esm", "num_hidden_layers": 2, "hidden_size": 64,
                     "num_attention_heads": 4, "vocab_size": 33},
        "found": {"model_type": "esm", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                  "vocab_size": 33},
        "known_as": None,
        "differences": ['model_type "esm" (expected "fast_esm")'],
        "allowed_by": "--allow-other-model",
    }  # fmt: skip
    assert other.provenance["identity"] == record
    assert other.provenance["size"] == "tiny" and other.provenance["seed"] == 3, "the stand-in marker still counts"
    assert "another model than FastESM2_650" in caplog.text and "loaded anyway (--allow-other-model)" in caplog.text
    assert models.describe_identity(record) == ('model_type esm, 2 layers × 64, 4 heads, vocabulary 33; differs in '
                                                'model_type "esm" (expected "fast_esm")')
    features = extract_embeddings(other, [("a", "MKTAYLV")], progress=False)
    assert features.meta["identity"] == record
    same = load_model("fastesm2_650", weights="random", device="cpu", seed=3)
    assert "identity" not in same.provenance
    assert "identity" not in extract_embeddings(same, [("a", "MKTAYLV")], progress=False).meta
    assert models.identity_records({"dna": {}, "protein": features.meta}) == [record]


@pytest.mark.parametrize(
    ("change", "difference"),
    [({"num_attention_heads": 4}, "num_attention_heads 4 (expected 6)"),
     ({"model_type": None}, 'model_type null (expected "bert")')],
    ids=["heads", "no-model-type"],
)  # fmt: skip
def test_a_dnabert_config_of_another_model_is_refused(tmp_path, change, difference):
    """Heads leave DNABERT-S's tensor shapes alone: only the identity check sees them."""
    write_standin("dnabert_s", "tiny", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    with pytest.raises(InputError) as info:
        load_model("dnabert_s", model_path=tmp_path, device="cpu")
    assert f"differs from its tiny stand-in in {difference}" in str(info.value), str(info.value)


def test_a_standin_marker_of_another_model_is_still_refused(tmp_path):
    write_standin("esm2_3b", "tiny", tmp_path)
    marker = json.loads((tmp_path / models.STANDIN_MARKER).read_text())
    (tmp_path / models.STANDIN_MARKER).write_text(json.dumps({**marker, "name": "fastesm2_650"}))
    with pytest.raises(InputError, match="holds a stand-in for 'fastesm2_650' \\(tiny\\), not esm2_3b \\(tiny\\)"):
        load_model("esm2_3b", model_path=tmp_path, device="cpu")


def test_extract_refuses_another_model_and_allow_other_model_records_it(tmp_path, run_cli):
    model = _as_esm2(tmp_path / "model")
    (tmp_path / "p.faa").write_text(">p1\nMKTAYIAK\n>p2\nDIDI\n")
    argv = ["extract", str(tmp_path / "p.faa"), "--out", str(tmp_path / "f.pt"), "--model", "fastesm2_650",
            "--model-path", str(model), "--device", "cpu", "--no-progress"]
    code, out, err = run_cli(argv)
    assert code == 2 and "is not FastESM2_650" in err and "add --allow-other-model" in err, err
    assert "Traceback" not in err and not (tmp_path / "f.pt").exists()
    code, out, err = run_cli([*argv, "--allow-other-model"])
    assert code == 0, err
    from virnucpro_core.layouts.virnucpro import load_features

    assert load_features(tmp_path / "f.pt").meta["identity"]["differences"] == ['model_type "esm" (expected "fast_esm")']


# --------------------------------------------------------------------------- Hugging Face cache


def _fake_cache(hub: Path, hub_id: str, name: str, *, refs: bool = True) -> Path:
    repo = hub / ("models--" + hub_id.replace("/", "--"))
    write_standin(name, "tiny", repo / "snapshots" / REVISION, seed=5)
    if refs:
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(REVISION)
    return repo


@pytest.fixture
def clean_hf_env(monkeypatch):
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return monkeypatch


def test_pretrained_weights_come_from_hf_hub_cache(tmp_path, clean_hf_env):
    clean_hf_env.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _fake_cache(tmp_path / "hub", "Synthyra/FastESM2_650", "fastesm2_650")
    loaded = load_model("fastesm2_650", device="cpu")
    assert loaded.provenance["revision"] == REVISION
    assert loaded.provenance["source"] == "Synthyra/FastESM2_650"
    assert loaded.provenance["path"].endswith(f"snapshots/{REVISION}")
    assert torch.equal(hidden(loaded), hidden(load_model("fastesm2_650", weights="random", device="cpu", seed=5)))


def test_hf_home_is_respected_and_refs_are_optional(tmp_path, clean_hf_env):
    clean_hf_env.setenv("HF_HOME", str(tmp_path / "hfhome"))
    _fake_cache(tmp_path / "hfhome" / "hub", "facebook/esm2_t36_3B_UR50D", "esm2_3b", refs=False)
    assert hub_cache.hf_hub_cache_dir() == tmp_path / "hfhome" / "hub"
    loaded = load_model("esm2_3b", device="cpu")
    assert loaded.provenance["revision"] == REVISION


def test_model_path_may_name_another_hub_id_in_the_cache(tmp_path, clean_hf_env):
    clean_hf_env.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _fake_cache(tmp_path / "hub", "Synthyra/ESM2-650M", "fastesm2_650")
    loaded = load_model("fastesm2_650", model_path="Synthyra/ESM2-650M", device="cpu")
    assert loaded.provenance["source"] == "Synthyra/ESM2-650M" and loaded.provenance["revision"] == REVISION
    with pytest.raises(WeightsNotFoundError, match="hf download Synthyra/NotThere"):
        load_model("fastesm2_650", model_path="Synthyra/NotThere", device="cpu")


def test_model_path_inside_a_cache_snapshot_records_the_revision(tmp_path):
    repo = _fake_cache(tmp_path, "Synthyra/FastESM2_650", "fastesm2_650")
    loaded = load_model("fastesm2_650", model_path=repo / "snapshots" / REVISION, device="cpu")
    assert loaded.provenance["revision"] == REVISION


def test_missing_weights_error_says_where_and_how(tmp_path, clean_hf_env):
    clean_hf_env.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("fastesm2_650", device="cpu")
    message = str(info.value)
    for expected in (
        "FastESM2_650 (Synthyra/FastESM2_650)",
        str(tmp_path / "empty-hub"),
        "hf download Synthyra/FastESM2_650",
        "--model-path",
        "--weights random",
    ):
        assert expected in message, message


def test_missing_weights_hint_names_the_callers_option(tmp_path, clean_hf_env):
    clean_hf_env.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("esm2_3b", device="cpu", path_option="--protein-model-path")
    assert "pass --protein-model-path DIR" in str(info.value), str(info.value)
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("esm2_3b", device="cpu")
    for option in ("--model-path", "--dna-model-path", "--protein-model-path", "--baseline-model", "--fast-model"):
        assert option in str(info.value), f"the generic hint lists every entry point's option: {info.value}"


def test_missing_model_path_is_weights_not_found(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist") as info:
        load_model("esm2_3b", model_path=tmp_path / "nowhere", device="cpu", path_option="--protein-model-path")
    assert "--protein-model-path" in str(info.value)
    assert f"hf download facebook/esm2_t36_3B_UR50D --local-dir {tmp_path / 'nowhere'}" in str(info.value)


def test_missing_relative_directory_is_not_taken_for_a_hub_id(tmp_path, clean_hf_env):
    """``models/esm`` with a ``models`` folder here is a missing directory, not a hub repository to download."""
    clean_hf_env.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    clean_hf_env.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(WeightsNotFoundError, match="does not exist") as info:
        load_model("esm2_3b", model_path="models/esm", device="cpu")
    assert "hf download models/esm" not in str(info.value), str(info.value)
    with pytest.raises(WeightsNotFoundError) as info:  # no such folder: a hub id, or a mistyped directory
        load_model("esm2_3b", model_path="nowhere/esm", device="cpu")
    assert "if nowhere/esm is a directory, fix the path" in str(info.value), str(info.value)


def test_directory_without_weights_names_the_files(tmp_path):
    write_standin("esm2_3b", "tiny", tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="model.safetensors or pytorch_model.bin"):
        load_model("esm2_3b", model_path=tmp_path, device="cpu")


# --------------------------------------------------------------------------- devices


def test_device_auto_and_override():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert models.resolve_device("auto").type == expected
    assert models.resolve_device(None).type == expected
    assert models.resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_explained():
    with pytest.raises(InputError, match="CUDA is not available"):
        models.resolve_device("cuda")


def test_unknown_device_lists_allowed_values():
    with pytest.raises(InputError, match="auto, cpu, cuda or cuda:N"):
        models.resolve_device("gpu")
