"""Training on rows streamed from disk equals the in-memory ``DataLoader`` path it replaced, weight for weight."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.train.test_training import features, quiet
from virnucpro_core.models.classifier import MLPClassifier
from virnucpro_core.layouts.features import read_merged
from virnucpro_core.split.make import make_split
from virnucpro_core.paths import SplitPaths
from virnucpro_core.threads import stage_threads
from virnucpro_core.train.results import TrainingConfig
from virnucpro_core.train.training import (
    _carve_validation,
    deterministic_training,
    epoch_batches,
    train_classifier,
)


@pytest.fixture
def split_dir(tmp_path):
    data = features()
    for name, rows in (("viral", slice(0, 120)), ("host", slice(120, None))):
        torch.save({k: (v[rows] if k != "meta" else v) for k, v in data.items()}, tmp_path / f"{name}.pt")
    make_split(tmp_path / "viral.pt", tmp_path / "host.pt", out_dir=tmp_path / "split")
    return tmp_path / "split"


@pytest.mark.parametrize("n", [64, 65, 97, 33])
def test_epoch_batches_are_the_dataloaders_batches(n):
    """Same generator seed → the same positions in the same batches, epoch after epoch (n % 32 == 1 drops one)."""
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(5), drop_last=n % 32 == 1)
    generator = torch.Generator().manual_seed(5)
    for _epoch in range(3):
        expected = [batch[0].tolist() for batch in loader]
        assert [b.tolist() for b in epoch_batches(n, 32, generator)] == expected


def _reference_training(train_path, config: TrainingConfig) -> dict[str, torch.Tensor]:
    """The training loop as it was before streaming: everything in memory, TensorDataset + DataLoader, on the
    intra-op threads training uses (a sum over other threads rounds otherwise)."""
    with deterministic_training(config.seed), stage_threads("train"):
        features = read_merged(train_path)
        train_ids, _val_ids = _carve_validation(features, config.val_fraction, config.seed, "reference")
        where = {sample: i for i, sample in enumerate(features["ids"])}
        rows = torch.tensor([where[i] for i in train_ids])
        data, labels = features["data"][rows], features["labels"][rows]
        model = MLPClassifier(data.shape[1], config.hidden_dim, 2, config.dropout)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_size, gamma=config.lr_gamma)
        loader = DataLoader(TensorDataset(data, labels), batch_size=config.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(config.seed),
                            drop_last=len(train_ids) % config.batch_size == 1)
        criterion = nn.CrossEntropyLoss()
        for _epoch in range(config.max_epochs):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
            scheduler.step()
        return {key: value.clone() for key, value in model.state_dict().items()}


def test_streamed_training_gives_the_weights_of_the_in_memory_path(split_dir):
    config = TrainingConfig(max_epochs=4, patience=100, seed=3)
    streamed = train_classifier(split_dir, config, **quiet())
    reference = _reference_training(SplitPaths(split_dir).train, config)
    assert streamed.final_state.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(streamed.final_state[key], value), f"{key} differs after {config.max_epochs} epochs"


def test_the_split_writes_views_not_copies(split_dir):
    """train.pt / test.pt say where each row is; the rows stay in the inputs."""
    raw = torch.load(SplitPaths(split_dir).train, weights_only=True)
    assert "data" not in raw and raw["format"] == "virnucpro-feature-view"
    assert SplitPaths(split_dir).train.stat().st_size < 40 * len(raw["ids"]) + 20_000
