"""Full-batch training: learns a separable graph, is deterministic per seed, selects the best-validation epoch."""
import pytest
import torch

from lib.data.planetoid import GraphData, normalized_adjacency
from lib.nn.dagnn import DAGNN
from lib.nn.gcn import GCN
from lib.train import seed_everything
from lib.train.full_batch import FullBatchConfig, fit_full_batch


def _graph(n=60, classes=3, f=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    x = torch.rand(n, f, generator=g) * 0.5
    x[torch.arange(n), labels] += 1.0                         # class signal in features
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j] and (j - i) % 7 == 3]
    edges = torch.tensor(pairs).t()
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][:12], masks[1][12:30], masks[2][30:] = True, True, True
    return GraphData("toy", x, labels, *masks, normalized_adjacency(edges, n), edges, classes)


def _run(build, seed, **config):
    graph = _graph()
    seed_everything(seed, 1)
    return fit_full_batch(build(), graph, FullBatchConfig(**config), seed=seed, threads=1)


@pytest.mark.parametrize("build", [lambda: DAGNN(10, 16, 3, k=4), lambda: GCN(10, 16, 3, layers=2)])
def test_learns_and_is_deterministic(build):
    a = _run(build, 3, epochs=60, weight_decay=5e-4)
    b = _run(build, 3, epochs=60, weight_decay=5e-4)
    assert a["metrics"] == b["metrics"]
    assert a["metrics"]["test_acc"] > 80.0
    c = _run(build, 4, epochs=60, weight_decay=5e-4)
    assert c["metrics"]["val_loss"] != a["metrics"]["val_loss"]


def test_selected_epoch_has_lowest_validation_loss_and_model_holds_it():
    graph = _graph()
    seed_everything(0, 1)
    model = DAGNN(10, 16, 3, k=2)
    result = fit_full_batch(model, graph, FullBatchConfig(epochs=40, log_every=1, patience=0), seed=0, threads=1)
    losses = [h["val_loss"] for h in result["history"]]
    assert result["metrics"]["best_epoch"] == 1 + losses.index(min(losses))
    assert result["metrics"]["epochs_run"] == 40
    model.eval()
    with torch.no_grad():
        logits = model(graph.features, graph.adjacency)
    acc = 100.0 * (logits[graph.test_mask].argmax(1) == graph.labels[graph.test_mask]).float().mean().item()
    assert acc == pytest.approx(result["metrics"]["test_acc"])


def test_early_stopping_only_in_second_half():
    result = _run(lambda: DAGNN(10, 16, 3, k=2), 0, epochs=200, lr=0.05, patience=5)
    assert 100 < result["metrics"]["epochs_run"] <= 200


def test_bad_config_names_the_value():
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        FullBatchConfig(epochs=0)
    with pytest.raises(ValueError, match="patience must be a non-negative integer, got -1"):
        FullBatchConfig(patience=-1)
