"""Training: seeded reproducibility, early stopping that really keeps the best weights, validation carved from train."""

from __future__ import annotations

import argparse

import pytest
import torch

from virnucpro_core.layouts.features import read_merged
from virnucpro_core.errors import InputError
from virnucpro_core.files import sha256_file
from virnucpro_core.layouts.checkpoints import load_checkpoint
from virnucpro_core.split.make import make_split
from virnucpro_core.paths import SplitPaths, TrainingPaths
from virnucpro_core.train.results import TrainingConfig, TrainingHistory
from virnucpro_core.train.training import (
    deterministic_training,
    seed_everything,
    train_classifier,
)


def features(n_viral: int = 120, n_host: int = 80, *, dim: int = 24, separable: bool = True, seed: int = 0) -> dict:
    """Hand-made merged features of 6 source records; ``separable=False`` gives pure noise labels."""
    generator = torch.Generator().manual_seed(seed)
    ids = [f"vir{k % 3}_chunk_{k}F1" for k in range(n_viral)] + [f"host{k % 3}_chunk_{k}R1" for k in range(n_host)]
    labels = torch.tensor([1] * n_viral + [0] * n_host)
    data = torch.randn(len(ids), dim, generator=generator)
    if separable:
        data += (labels.float() * 2 - 1).unsqueeze(1) * 0.75
    return {
        "ids": ids,
        "data": data,
        "labels": labels,
        "lengths": torch.randint(40, 120, (len(ids),), generator=generator),
        "meta": {"protein_model": "fastesm2_650", "dna_model": "dnabert_s"},
    }


def quiet(**overrides) -> dict:
    return {"progress": False, "log": None, **overrides}


@pytest.fixture
def split_dir(tmp_path):
    data = features()
    viral = {k: (v[:120] if k != "meta" else v) for k, v in data.items()}
    host = {k: (v[120:] if k != "meta" else v) for k, v in data.items()}
    torch.save(viral, tmp_path / "viral.pt")
    torch.save(host, tmp_path / "host.pt")
    make_split(tmp_path / "viral.pt", tmp_path / "host.pt", out_dir=tmp_path / "split")
    return tmp_path / "split"


def test_identical_history_for_identical_seeds():
    config = TrainingConfig(max_epochs=3, seed=11)
    first = train_classifier(features(), config, **quiet())
    second = train_classifier(features(), config, **quiet())
    assert first.history.to_dict(include_timing=False) == second.history.to_dict(include_timing=False)
    assert first.val_ids == second.val_ids
    for key, value in first.final_state.items():
        assert torch.equal(value, second.final_state[key]), key
    other = train_classifier(features(), TrainingConfig(max_epochs=3, seed=12), **quiet())
    assert other.history.train_loss != first.history.train_loss


def test_early_stopping_restores_the_best_epochs_weights():
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(record, model):
        snapshots[record.epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # Noise labels and a large learning rate: validation loss rises after a few epochs.
    config = TrainingConfig(max_epochs=40, patience=3, learning_rate=0.05, save="best", seed=3)
    result = train_classifier(features(separable=False, seed=3), config, on_epoch_end=snapshot, **quiet())
    history = result.history
    assert history.stop_reason == "early_stopping"
    assert history.stopped_epoch == history.best_epoch + 3 < 40
    assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)
    assert [e.improved for e in history.epochs].count(True) >= 1 and not any(
        e.improved for e in history.epochs[history.best_epoch :]
    )
    best, last = snapshots[history.best_epoch], snapshots[history.stopped_epoch]
    model_state = result.model.state_dict()
    for key in best:
        assert torch.equal(model_state[key], best[key]), f"{key} is not the best epoch's"
        assert torch.equal(result.best_state[key], best[key])
        assert torch.equal(result.final_state[key], last[key])
    assert any(not torch.equal(best[k], last[k]) for k in best), "best and last weights should differ here"
    # a real copy, not a view of the live parameters (VirNucPro's bug)
    assert result.best_state["hidden_layer.weight"].data_ptr() != result.model.hidden_layer.weight.data_ptr()


def test_save_final_keeps_the_last_epochs_weights():
    snapshots = {}
    config = TrainingConfig(max_epochs=40, patience=3, learning_rate=0.05, save="final", seed=3)
    result = train_classifier(
        features(separable=False, seed=3),
        config,
        on_epoch_end=lambda r, m: snapshots.__setitem__(r.epoch, {k: v.clone() for k, v in m.state_dict().items()}),
        **quiet(),
    )
    last = snapshots[result.history.stopped_epoch]
    assert all(torch.equal(result.model.state_dict()[k], last[k]) for k in last)
    assert result.checkpoint_meta().which == "final"
    assert result.checkpoint_meta().epoch == result.history.stopped_epoch


def test_validation_is_carved_from_training_and_stratified(split_dir):
    result = train_classifier(split_dir, TrainingConfig(max_epochs=1), **quiet())
    train = read_merged(SplitPaths(split_dir).train)
    test = read_merged(SplitPaths(split_dir).test)
    assert set(result.val_ids) <= set(train["ids"]) and not set(result.val_ids) & set(test["ids"])
    assert not set(result.val_ids) & set(result.train_ids)
    assert len(result.train_ids) + len(result.val_ids) == 180
    # training side: 108 viral, 72 host -> validation round_half_up(10.8) = 11 viral, round_half_up(7.2) = 7 host
    assert sum(i.startswith("vir") for i in result.val_ids) == 11
    assert sum(i.startswith("host") for i in result.val_ids) == 7
    assert (result.history.train_samples, result.history.val_samples) == (162, 18)


def test_refuses_the_test_side(split_dir):
    with pytest.raises(InputError, match="is the test side of a split"):
        train_classifier(SplitPaths(split_dir).test, TrainingConfig(max_epochs=1), **quiet())


def test_history_log_and_json(tmp_path):
    lines: list[str] = []
    result = train_classifier(features(), TrainingConfig(max_epochs=2), progress=False, log=lines.append)
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 2
    for field in ("train_loss", "val_loss", "val_accuracy", "lr 0.0002", "s"):
        assert field in epoch_lines[0], field
    assert any("the test set is not read" in line for line in lines)
    assert any("--patience" in line and "--save" in line for line in lines), "log names the options"
    history = result.history
    assert len(history.train_loss) == len(history.val_loss) == 2 and history.epoch_numbers == [1, 2]
    assert history.lr == [2e-4, 2e-4]
    history.save(tmp_path / "h.json")
    assert TrainingHistory.load(tmp_path / "h.json").to_dict() == history.to_dict()


def test_learning_rate_steps_every_ten_epochs():
    result = train_classifier(features(40, 40), TrainingConfig(max_epochs=12, patience=100, lr_step_size=10), **quiet())
    assert result.history.lr[:10] == [2e-4] * 10
    assert result.history.lr[10] == pytest.approx(2e-4 * 0.85)


def test_checkpoint_of_a_run_loads_into_the_matching_pipeline(split_dir, tmp_path):
    config = TrainingConfig(max_epochs=2, save="best")
    result = train_classifier(split_dir, config, **quiet())
    paths = result.save(tmp_path / "model.pt")
    assert paths == TrainingPaths(tmp_path / "model.pt")
    assert paths.history == tmp_path / "model.history.json" and paths.history.is_file()
    loaded = load_checkpoint(paths.checkpoint, expected_input_dim=24, expected_protein_model="fastesm2_650")
    meta = loaded.meta
    assert (meta.which, meta.epoch, meta.seed) == ("best", result.history.best_epoch, 42)
    assert meta.split_manifest_sha256 == sha256_file(SplitPaths(split_dir).manifest)
    assert meta.hyperparameters["learning_rate"] == 2e-4 and meta.hyperparameters["batch_size"] == 32
    assert (meta.train_samples, meta.val_samples) == (162, 18)
    for key, value in result.best_state.items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_single_sample_last_batch_is_dropped():
    # 18 + 18 samples, 10 % validation -> 2 + 2, leaving 32 = 31 * 1 + 1 with batch 31: BatchNorm needs 2
    result = train_classifier(features(18, 18), TrainingConfig(max_epochs=1, batch_size=31), **quiet())
    assert len(result.train_ids) == 32 and result.history.stopped_epoch == 1


def test_bad_config_lists_every_problem():
    with pytest.raises(InputError) as info:
        TrainingConfig(save="last", patience=0, val_fraction=1.0)
    message = str(info.value)
    assert "save 'last' is not one of final, best" in message
    assert "patience 0" in message and "val_fraction 1.0" in message


def test_too_few_samples_for_validation():
    with pytest.raises(InputError, match="has 4 host sample"):
        train_classifier(features(40, 4), TrainingConfig(max_epochs=1), **quiet())


def test_unavailable_device():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(InputError, match="CUDA is not available"):
        train_classifier(features(), TrainingConfig(max_epochs=1, device="cuda"), **quiet())


def test_training_leaves_the_kernel_flags_as_it_found_them():
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    train_classifier(features(), TrainingConfig(max_epochs=1), **quiet())
    assert not torch.are_deterministic_algorithms_enabled(), "deterministic kernels leaked out of training"
    assert not torch.backends.cudnn.deterministic


def test_seed_everything_sets_deterministic_flags():
    with deterministic_training(5):
        a = torch.rand(3)
        seed_everything(5)
        assert torch.equal(a, torch.rand(3))
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled()


def test_train_command(split_dir, tmp_path, capsys):
    from virnucpro_core.commands import train as train_command

    parser = argparse.ArgumentParser(prog="virnucpro")
    train_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["train", "--features", str(split_dir), "--out", str(tmp_path / "m.pt"), "--max-epochs", "2",
         "--save", "best", "--no-progress"]
    )
    assert args.patience == 5 and args.seed == 42 and args.device == "auto"
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "epoch   2/2" in out and f"wrote {tmp_path / 'm.pt'} (best weights" in out
    assert (tmp_path / "m.history.json").is_file()
