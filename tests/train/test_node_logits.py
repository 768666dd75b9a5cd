"""node_logits: a chapter's forward pass after fit_full_batch runs on the device the loop put the model on."""
import torch
from types import SimpleNamespace

from lib.nn.gcn import GCN
from lib.train.full_batch import node_logits


class DeviceChecking(torch.nn.Module):
    """Raises, like a CUDA model fed CPU tensors, when an input is not on the parameters' device."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x, adjacency):
        device = self.linear.weight.device
        if x.device != device or adjacency.device != device:
            raise RuntimeError(f"inputs on {x.device}/{adjacency.device}, model on {device}")
        return self.linear(x)


def test_inputs_follow_the_model_to_its_device():
    graph = SimpleNamespace(features=torch.randn(5, 4), adjacency=torch.eye(5))
    model = DeviceChecking().to("meta")            # a second device type, available without a GPU
    try:
        model(graph.features, graph.adjacency)     # what the DAGNN chapter used to do
    except RuntimeError as error:
        assert "model on meta" in str(error)
    else:
        raise AssertionError("the device check did not fire")
    moved = {}
    original = DeviceChecking.forward

    def spy(self, x, adjacency):
        moved["devices"] = (x.device.type, adjacency.device.type)
        return original(self, x, adjacency)

    DeviceChecking.forward = spy
    try:
        try:
            node_logits(model, graph)
        except (NotImplementedError, RuntimeError):   # a meta tensor has no data to copy back; the forward ran
            pass
    finally:
        DeviceChecking.forward = original
    assert moved["devices"] == ("meta", "meta")


def test_on_the_cpu_it_equals_the_plain_eval_forward():
    torch.manual_seed(0)
    n = 6
    adjacency = (torch.eye(n) + torch.diag(torch.ones(n - 1), 1) + torch.diag(torch.ones(n - 1), -1)).to_sparse()
    graph = SimpleNamespace(features=torch.randn(n, 5), adjacency=adjacency)
    model = GCN(5, 8, 3, layers=2, dropout=0.5)
    model.train()
    logits = node_logits(model, graph)
    assert not model.training
    with torch.no_grad():
        assert torch.equal(logits, model(graph.features, graph.adjacency))
