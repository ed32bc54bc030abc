"""A hub model directory's weights in every layout the hub ships: single files and sharded checkpoints.

Stand-ins written by ``write_standin`` are split into shards here, in the
hub's format (``model-0000i-of-0000N.safetensors`` / ``pytorch_model-0000i-of-0000N.bin``
plus ``{"metadata": ..., "weight_map": ...}``), and loaded through
``load_model``: the vectors must be those of the unsharded directory, bit for
bit. Then each way a download can break, each with its own message.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from virnucpro_core.extract.embeddings import extract_embeddings
from virnucpro_core.errors import DimensionError, InputError, WeightsNotFoundError
from virnucpro_core.models import hub_weights
from virnucpro_core.models.hub_weights import find_weights
from virnucpro_core.models.registry import load_model, write_standin

PROTEINS = [("p1", "MKTAYIAKQRQISFVKSHFSRQ"), ("p2", "DIDI"), ("p3", "MLSDEDFKAVFGMTRSAFANLPLWKQQNLKKEKGLF")]
DNA = [("d1", "ACGTACGGTTCAAGTACCGT"), ("d2", "GGCATTACGA"), ("d3", "ACGTTGCAAGTCCAGGTTAACG")]


def single_file_state(directory: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The stand-in's tensors, read without our reader, and its file's format."""
    if (directory / "model.safetensors").is_file():
        return load_file(directory / "model.safetensors"), "safetensors"
    return torch.load(directory / "pytorch_model.bin", weights_only=True), "bin"


def shard(source: Path, target: Path, fmt: str, n: int = 3) -> dict:
    """Copy ``source`` to ``target`` with its weights split into ``n`` shards of ``fmt``, as the hub lays them out.

    Returns the index written. The single weight file is not copied.
    """
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors", "pytorch_model.bin"),
                    dirs_exist_ok=True)
    state, _ = single_file_state(source)
    keys = sorted(state)
    size = -(-len(keys) // n)
    weight_map, total = {}, 0
    for i in range(n):
        part = {key: state[key].contiguous() for key in keys[i * size : (i + 1) * size]}
        if fmt == "safetensors":
            name = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            save_file(part, str(target / name), metadata={"format": "pt"})
        else:
            name = f"pytorch_model-{i + 1:05d}-of-{n:05d}.bin"
            torch.save(part, target / name)
        weight_map.update(dict.fromkeys(part, name))
        total += sum(t.numel() * t.element_size() for t in part.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    index_name = "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    (target / index_name).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return index


def vectors(loaded) -> torch.Tensor:
    records = PROTEINS if loaded.spec.family == "esm" else DNA
    return extract_embeddings(loaded, records, progress=False).data


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """One tiny stand-in directory per model, written once."""
    root = tmp_path_factory.mktemp("standins")
    return {name: write_standin(name, "tiny", root / name, seed=4) for name in ("esm2_3b", "fastesm2_650", "dnabert_s")}


# --------------------------------------------------------------------------- sharded checkpoints load


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@pytest.mark.parametrize("name", ["esm2_3b", "fastesm2_650", "dnabert_s"])
def test_a_sharded_checkpoint_gives_the_vectors_of_the_single_file(standins, tmp_path, name, fmt):
    index = shard(standins[name], tmp_path / "sharded", fmt)
    assert len(set(index["weight_map"].values())) == 3
    whole = load_model(name, model_path=standins[name], device="cpu")
    sharded = load_model(name, model_path=tmp_path / "sharded", device="cpu")
    assert torch.equal(vectors(sharded), vectors(whole)), f"{name}: sharded {fmt} vectors differ from the single file's"
    assert sharded.provenance["size"] == "tiny" and sharded.provenance["seed"] == 4


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_find_weights_names_the_index_and_its_shards_in_order(standins, tmp_path, fmt):
    shard(standins["fastesm2_650"], tmp_path, fmt, n=2)
    weights = find_weights(tmp_path)
    suffix = "safetensors" if fmt == "safetensors" else "bin"
    stem = "model" if fmt == "safetensors" else "pytorch_model"
    assert weights.sharded and weights.entry == f"{'model.safetensors' if fmt == 'safetensors' else 'pytorch_model.bin'}.index.json"
    assert [p.name for p in weights.files] == [f"{stem}-00001-of-00002.{suffix}", f"{stem}-00002-of-00002.{suffix}"]
    assert weights.describe() == f"{weights.path} (2 shards)"
    expected, _ = single_file_state(standins["fastesm2_650"])
    assert weights.shapes() == {key: tuple(value.shape) for key, value in expected.items()}


def test_the_single_safetensors_file_is_preferred_over_every_other_layout(standins, tmp_path):
    """transformers' order: model.safetensors, its index, pytorch_model.bin, its index."""
    shard(standins["fastesm2_650"], tmp_path, "bin")
    assert find_weights(tmp_path).entry == "pytorch_model.bin.index.json"
    torch.save(load_file(standins["fastesm2_650"] / "model.safetensors"), tmp_path / "pytorch_model.bin")
    assert find_weights(tmp_path).entry == "pytorch_model.bin"
    shutil.copy(standins["fastesm2_650"] / "model.safetensors", tmp_path / "model.safetensors")
    assert find_weights(tmp_path).entry == "model.safetensors" and not find_weights(tmp_path).sharded


def test_config_and_weights_are_compared_on_a_sharded_checkpoint_too(standins, tmp_path):
    shard(standins["fastesm2_650"], tmp_path, "safetensors")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(InputError) as info:
        load_model("fastesm2_650", model_path=tmp_path, device="cpu")
    assert "num_hidden_layers 3 (config.json), but the weights have 2" in str(info.value), str(info.value)


def test_a_sharded_dnabert_checkpoint_of_another_width_is_refused_with_the_shapes(standins, tmp_path):
    shard(standins["dnabert_s"], tmp_path, "bin")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "intermediate_size": 100}))
    with pytest.raises(DimensionError) as info:
        load_model("dnabert_s", model_path=tmp_path, device="cpu")
    message = str(info.value)
    assert "pytorch_model.bin.index.json does not match the DNABERT-S architecture" in message, message
    assert "encoder.layer.0.mlp.wo.weight (48, 96) (model: (48, 100))" in message, message


# --------------------------------------------------------------------------- broken downloads


def _refusal(directory: Path, name: str = "fastesm2_650") -> str:
    with pytest.raises(InputError) as info:
        load_model(name, model_path=directory, device="cpu")
    message = str(info.value)
    assert "Traceback" not in message and "to fix:" in message, message
    return message


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_a_shard_the_index_names_but_that_is_missing(standins, tmp_path, fmt):
    shard(standins["fastesm2_650"], tmp_path, fmt)
    stem, suffix = ("model", "safetensors") if fmt == "safetensors" else ("pytorch_model", "bin")
    (tmp_path / f"{stem}-00002-of-00003.{suffix}").unlink()
    message = _refusal(tmp_path)
    index = "model.safetensors.index.json" if fmt == "safetensors" else "pytorch_model.bin.index.json"
    assert f"{tmp_path / index} names 1 shard file(s) that are not in {tmp_path}" in message, message
    assert (f"missing {stem}-00002-of-00003.{suffix}; present: {stem}-00001-of-00003.{suffix}, "
            f"{stem}-00003-of-00003.{suffix}") in message, message
    assert "finish the download" in message, message


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_a_tensor_in_two_shards(standins, tmp_path, fmt):
    shard(standins["fastesm2_650"], tmp_path, fmt, n=2)
    key = "esm.embeddings.word_embeddings.weight"
    state, _ = single_file_state(standins["fastesm2_650"])
    first, second = find_weights(tmp_path).files
    assert key in (load_file(first) if fmt == "safetensors" else torch.load(first, weights_only=True))
    extra = (load_file(second) if fmt == "safetensors" else torch.load(second, weights_only=True))
    extra[key] = state[key]
    if fmt == "safetensors":
        save_file(extra, str(second))
    else:
        torch.save(extra, second)
    message = _refusal(tmp_path)
    assert "do not hold what the index says: 1 tensor(s) in two shards" in message, message
    assert f"{key} in {first.name} and {second.name}" in message, message


def test_an_index_that_lists_a_tensor_in_two_shards(standins, tmp_path):
    shard(standins["fastesm2_650"], tmp_path, "safetensors", n=2)
    path = tmp_path / "model.safetensors.index.json"
    text = path.read_text().replace(
        '"weight_map": {', '"weight_map": {\n    "esm.embeddings.word_embeddings.weight": "model-00002-of-00002.safetensors",')
    path.write_text(text)
    message = _refusal(tmp_path)
    assert "is not a usable sharded-checkpoint index" in message, message
    assert ("1 tensor(s) in two shards: esm.embeddings.word_embeddings.weight in model-00002-of-00002.safetensors "
            "and model-00001-of-00002.safetensors") in message, message


def test_shards_that_do_not_hold_what_the_index_says(standins, tmp_path):
    index = shard(standins["fastesm2_650"], tmp_path, "safetensors", n=2)
    key = "esm.embeddings.word_embeddings.weight"
    assert index["weight_map"][key] == "model-00001-of-00002.safetensors"
    index["weight_map"][key] = "model-00002-of-00002.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    message = _refusal(tmp_path)
    assert (f"the index puts {key} in model-00002-of-00002.safetensors, which does not hold it "
            "(it is in model-00001-of-00002.safetensors)") in message, message


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"metadata": {}, "weight_map": {', "not JSON: Expecting property name enclosed in double quotes"),
        ('{"metadata": {"total_size": 10}}', "no weight_map (keys: metadata)"),
        ('{"weight_map": ["model-00001-of-00002.safetensors"]}', "weight_map is a list (keys: weight_map)"),
        ('[1, 2]', "a JSON list, not an object"),
        ('{"weight_map": {"a": "../model-00001-of-00002.safetensors"}}',
         "weight_map values that are not file names in the index's directory: a: '../model-00001-of-00002.safetensors'"),
    ],
    ids=["not-json", "no-weight-map", "weight-map-a-list", "a-list", "path-outside"],
)  # fmt: skip
def test_an_index_that_is_not_the_hubs_json(standins, tmp_path, text, found):
    shard(standins["fastesm2_650"], tmp_path, "safetensors", n=2)
    (tmp_path / "model.safetensors.index.json").write_text(text)
    message = _refusal(tmp_path)
    assert f"{tmp_path / 'model.safetensors.index.json'} is not a usable sharded-checkpoint index" in message, message
    assert found in message and '"weight_map": {"tensor name": "shard file name", ...}' in message, message


@pytest.mark.parametrize("which", ["single file", "shard"])
def test_a_truncated_safetensors_file_is_named_without_a_traceback(standins, tmp_path, which):
    if which == "single file":
        shutil.copytree(standins["fastesm2_650"], tmp_path, dirs_exist_ok=True)
        broken = tmp_path / "model.safetensors"
    else:
        shard(standins["fastesm2_650"], tmp_path, "safetensors", n=2)
        broken = tmp_path / "model-00002-of-00002.safetensors"
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    message = _refusal(tmp_path)
    assert f"{broken} is not a readable safetensors file (truncated or corrupt)" in message, message
    assert f"found: {len(data) // 2:,} bytes; SafetensorError: Error while deserializing header: incomplete metadata, " \
           "file not fully covered" in message, message
    assert "re-download this file" in message, message


def test_a_corrupt_bin_shard_is_named(standins, tmp_path):
    shard(standins["dnabert_s"], tmp_path, "bin", n=2)
    broken = tmp_path / "pytorch_model-00001-of-00002.bin"
    broken.write_bytes(broken.read_bytes()[:100])
    message = _refusal(tmp_path, "dnabert_s")
    assert f"{broken} is not a readable weights file" in message, message
    assert "torch.load(weights_only=True)" in message, message


def test_a_bin_that_is_not_a_state_dict(standins, tmp_path):
    shutil.copytree(standins["dnabert_s"], tmp_path, dirs_exist_ok=True)
    torch.save({"model": {"weight": torch.zeros(2)}, "epoch": 3}, tmp_path / "pytorch_model.bin")
    message = _refusal(tmp_path, "dnabert_s")
    assert f"{tmp_path / 'pytorch_model.bin'} is not a state dict" in message, message
    assert "found: dict of dict, int" in message, message


def test_a_bin_that_asks_to_run_code_is_refused(standins, tmp_path):
    import os

    shutil.copytree(standins["dnabert_s"], tmp_path, dirs_exist_ok=True)

    class Exploit:
        def __reduce__(self):
            return os.system, ("true",)

    torch.save({"weight": Exploit()}, tmp_path / "pytorch_model.bin")
    message = _refusal(tmp_path, "dnabert_s")
    assert "is not a readable weights file (it asks to run code, which is refused)" in message, message
    assert "system" in message, message


def test_no_weights_in_any_layout(standins, tmp_path):
    shutil.copytree(standins["dnabert_s"], tmp_path, dirs_exist_ok=True)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("dnabert_s", model_path=tmp_path, device="cpu")
    message = str(info.value)
    assert f"no DNABERT-S weights in {tmp_path}" in message, message
    assert hub_weights.EXPECTED in message and "hf download zhihan1996/DNABERT-S" in message, message


def test_a_broken_index_through_the_cli_is_one_message_and_exit_2(standins, tmp_path, run_cli):
    shard(standins["fastesm2_650"], tmp_path / "model", "safetensors", n=2)
    (tmp_path / "model" / "model.safetensors.index.json").write_text("{")
    (tmp_path / "p.faa").write_text(">p1\nMKTAYIAK\n")
    code, out, err = run_cli(["extract", str(tmp_path / "p.faa"), "--out", str(tmp_path / "f.pt"), "--model",
                              "fastesm2_650", "--model-path", str(tmp_path / "model"), "--device", "cpu"])
    assert code == 2, (out, err)
    assert "model.safetensors.index.json is not a usable sharded-checkpoint index" in err, err
    assert "Traceback" not in err and not (tmp_path / "f.pt").exists(), err
