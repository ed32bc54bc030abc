"""Training: both MLPs converge, the best-validation checkpoint is kept beside the evaluated final weights,
checkpoints fit the pipeline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from virnucpro_core.layouts.features import open_rows
from virnucpro_core.gate.validation import EMBEDDERS

# Recomputed validation loss of the restored weights vs the logged best (float32 sums).
LOSS_TOLERANCE = 1e-4


def test_validation_loss_fell(trained_model, embedder):
    history = trained_model.history
    first, best = history.val_loss[0], min(history.val_loss)
    assert best < first, (
        f"{EMBEDDERS[embedder]}: validation loss never fell below epoch 1's {first:.4f} "
        f"in {len(history.epochs)} epochs (stopped: {history.stop_reason})"
    )


def test_best_checkpoint_holds_the_best_epoch_beside_the_evaluated_final_weights(trained_model, embedder):
    """The best-validation checkpoint (best.pt) holds the best epoch's weights (the original kept a live reference,
    so its "best" was the last epoch's); it is kept beside the final weights, which are the ones evaluated."""
    model = trained_model
    history, best = model.history, model.best
    assert best.meta.epoch == history.best_epoch, (
        f"best checkpoint is from epoch {best.meta.epoch}, history says the best epoch was {history.best_epoch}"
    )
    assert (model.final.meta.which, model.final.meta.epoch) == ("final", history.stopped_epoch), (
        f"the evaluated checkpoint holds the {model.final.meta.which} weights of epoch {model.final.meta.epoch}, "
        f"expected the final weights of epoch {history.stopped_epoch}"
    )
    features = open_rows(model.train_path)  # only the validation rows are read
    positions = features.positions(model.val_ids)
    with torch.inference_mode():
        logits = best.model.eval()(features.gather(positions))
        loss = F.cross_entropy(logits, features.labels[torch.tensor(positions)]).item()
    assert abs(loss - history.best_val_loss) <= LOSS_TOLERANCE, (
        f"{EMBEDDERS[embedder]}: restored weights give validation loss {loss:.6f}, but epoch {history.best_epoch} "
        f"logged {history.best_val_loss:.6f} — the checkpoint does not hold the best epoch's weights"
    )


def test_checkpoint_matches_pipeline_width(trained_model, embedder, run):
    meta = trained_model.final.meta
    expected_dim = run.pipeline_dim(embedder)
    assert (meta.protein_model, meta.input_dim) == (EMBEDDERS[embedder], expected_dim), (
        f"checkpoint was trained on {meta.input_dim}-d {meta.protein_model} features; the {embedder} pipeline "
        f"feeds {expected_dim}-d {EMBEDDERS[embedder]} features"
    )
