"""Full-batch node classification: every step sees the whole graph (Planetoid-style semi-supervised training).

The loop of the DAGNN official code (github.com/mengliu1998/DeeperGNN, ``train_eval.py``; Liu, Gao, Ji, KDD 2020,
arXiv:2007.09296), run through Accelerate so the same code trains on a CPU or a GPU:

* Adam with weight decay on every parameter; cross-entropy on the training nodes; one step per epoch;
* after every epoch the model is evaluated (no dropout) on all nodes; the epoch with the lowest *validation
  loss* is the selected one, and the run reports the test accuracy of that epoch (the model's weights are restored
  to it at the end, so representations can be measured on the selected model);
* early stopping as in the official code: only in the second half of the budget (``epoch > epochs // 2``), stop
  when the validation loss exceeds the mean of the ``patience`` previous validation losses.

Any model ``model(features, adjacency) -> logits (N, classes)`` works (``lib.nn.gcn.GCN``, ``lib.nn.dagnn.DAGNN``).
Determinism: the caller seeds the initial weights (``seed_everything(seed)`` before building the model);
``fit_full_batch`` seeds the dropout stream with the same ``seed`` and fixes the thread count.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from . import check_loss, seed_everything


@dataclass
class FullBatchConfig:
    """Recipe of one full-batch run (defaults: the DAGNN official code on Cora)."""

    epochs: int = 1000
    lr: float = 0.01
    weight_decay: float = 0.005
    patience: int = 100           # early-stopping window (official code: 100); 0 disables early stopping
    log_every: int = 50           # keep one history record every k epochs (and the selected one)
    divergence_factor: float = 100.0  # stop when the loss exceeds this × the first epoch's loss (0: never)

    def __post_init__(self):
        for name in ("epochs", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FullBatchConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"FullBatchConfig.patience must be a non-negative integer, got {self.patience!r}")
        if self.lr <= 0 or self.weight_decay < 0 or self.divergence_factor < 0:
            raise ValueError(f"invalid optimisation settings: lr={self.lr} (> 0), "
                             f"weight_decay={self.weight_decay} (>= 0)")


def _accuracy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> float:
    return 100.0 * (logits[mask].argmax(1) == labels[mask]).float().mean().item()


@torch.no_grad()
def evaluate_nodes(model, features, adjacency, labels, masks: dict) -> dict:
    """Loss and accuracy (%) of ``model`` (eval mode) on each named node mask: ``{"<name>_loss", "<name>_acc"}``."""
    was_training = model.training
    model.eval()
    logits = model(features, adjacency).float()
    model.train(was_training)
    out = {}
    for name, mask in masks.items():
        out[f"{name}_loss"] = F.cross_entropy(logits[mask], labels[mask]).item()
        out[f"{name}_acc"] = _accuracy(logits, labels, mask)
    return out


def fit_full_batch(model: torch.nn.Module, graph, config: FullBatchConfig, *, seed: int, features=None,
                   threads: int | None = None, accelerator: Accelerator | None = None, label: str = "") -> dict:
    """Train ``model`` on ``graph`` (``.features``, ``.adjacency``, ``.labels``, ``.train_mask``, ``.val_mask``,
    ``.test_mask``), select the epoch of lowest validation loss, return its metrics (module docstring).

    ``features`` replaces ``graph.features`` (e.g. ``graph.sparse_features()``). Returns ``{"metrics": {test_acc,
    val_acc, val_loss, train_acc, best_epoch, epochs_run}, "history", "wall_time_s", "train_time_s",
    "seconds_per_epoch"}``; accuracies in %. The model is left holding the selected epoch's weights.
    """
    start = time.perf_counter()
    seed_everything(seed, threads)
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    device = accelerator.device
    x = (graph.features if features is None else features).to(device)
    adjacency = graph.adjacency.to(device)
    labels = graph.labels.to(device)
    masks = {"train": graph.train_mask.to(device), "val": graph.val_mask.to(device), "test": graph.test_mask.to(device)}
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)

    best = {"val_loss": float("inf")}
    best_state = None
    val_losses: list[float] = []
    history: list[dict] = []
    train_time = 0.0
    epoch, initial = 0, None
    for epoch in range(1, config.epochs + 1):
        tick = time.perf_counter()
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits = model(x, adjacency)
        loss = F.cross_entropy(logits[masks["train"]], labels[masks["train"]])
        value = loss.item()
        initial = value if epoch == 1 else initial
        check_loss(value, initial, config.divergence_factor, f"{label or 'run'} (seed {seed})", f"epoch {epoch}")
        accelerator.backward(loss)
        optimizer.step()
        train_time += time.perf_counter() - tick
        result = {"epoch": epoch, "train_loss": loss.item(),
                  **evaluate_nodes(accelerator.unwrap_model(model), x, adjacency, labels, masks)}
        if result["val_loss"] < best["val_loss"]:
            best = result
            best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
        if epoch % config.log_every == 0:
            history.append(result)
        stop = False
        if config.patience > 0 and epoch > config.epochs // 2:
            window = val_losses[-config.patience:]
            stop = bool(window) and result["val_loss"] > sum(window) / len(window)
        val_losses.append(result["val_loss"])
        if stop:
            break
    if best_state is not None:
        accelerator.unwrap_model(model).load_state_dict(best_state)
    if not history or history[-1]["epoch"] != epoch:
        history.append(result)
    metrics = {"test_acc": best["test_acc"], "val_acc": best["val_acc"], "val_loss": best["val_loss"],
               "train_acc": best["train_acc"], "best_epoch": best["epoch"], "epochs_run": epoch}
    return {"metrics": metrics, "history": history, "wall_time_s": time.perf_counter() - start,
            "train_time_s": train_time, "seconds_per_epoch": (time.perf_counter() - start) / max(epoch, 1)}


@torch.no_grad()
def node_logits(model: torch.nn.Module, graph, features=None) -> torch.Tensor:
    """The trained model's logits on every node, in eval mode, computed on the device ``fit_full_batch`` left the
    model on (the inputs are moved there, so a chapter never mixes CPU tensors with a model on a GPU); returned on
    the CPU."""
    device = next(model.parameters()).device
    model.eval()
    x = (graph.features if features is None else features).to(device)
    return model(x, graph.adjacency.to(device)).cpu()


__all__ = ["FullBatchConfig", "evaluate_nodes", "fit_full_batch", "node_logits"]
