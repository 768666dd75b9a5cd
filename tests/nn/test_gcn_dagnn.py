"""GCN and DAGNN: shapes, gradients, closed-form parameter counts, K = 0, sparse = dense paths, SMV."""
import pytest
import torch

from lib.data.planetoid import normalized_adjacency
from lib.nn.dagnn import DAGNN, dagnn_params, smoothness_metric
from lib.nn.gcn import GCN, gcn_params


def _graph(n=12, f=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, n, (2, 20), generator=g)
    edges = torch.stack([edges.min(0).values, edges.max(0).values])
    edges = torch.unique(edges[:, edges[0] != edges[1]], dim=1)
    x = (torch.rand(n, f, generator=g) < 0.3).float()
    return x, normalized_adjacency(edges, n)


@pytest.mark.parametrize("layers", [1, 2, 3, 8, 32])
def test_gcn_shapes_params_and_gradients(layers):
    x, adj = _graph()
    torch.manual_seed(0)
    model = GCN(9, 16, 4, layers=layers)
    out = model(x, adj)
    assert out.shape == (12, 4)
    assert sum(p.numel() for p in model.parameters()) == gcn_params(9, 16, 4, layers)
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("k", [0, 1, 10, 64])
def test_dagnn_shapes_params_independent_of_k_and_gradients(k):
    x, adj = _graph()
    torch.manual_seed(0)
    model = DAGNN(9, 16, 4, k=k)
    out = model(x, adj)
    assert out.shape == (12, 4)
    assert model.hops(x, adj).shape == (12, k + 1, 4)
    assert sum(p.numel() for p in model.parameters()) == dagnn_params(9, 16, 4) == 9 * 16 + 16 + 16 * 4 + 4 + 4 + 1
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_dagnn_k0_is_the_mlp_scaled_by_its_retention_score():
    x, adj = _graph()
    torch.manual_seed(0)
    model = DAGNN(9, 16, 4, k=0).eval()
    z = model.transform(x)
    out = model(x, adj)
    assert torch.allclose(out, torch.sigmoid(model.proj(z)) * z, atol=1e-6)
    assert torch.equal(out.argmax(1), z.argmax(1))           # same predictions as the MLP alone
    assert torch.equal(model(x, torch.zeros(12, 12).to_sparse_csr()), out)   # no use of the graph


def test_dagnn_hops_are_powers_of_the_adjacency():
    x, adj = _graph()
    model = DAGNN(9, 16, 4, k=3).eval()
    h = model.hops(x, adj)
    dense = adj.to_dense()
    assert torch.allclose(h[:, 3], torch.linalg.matrix_power(dense, 3) @ h[:, 0], atol=1e-5)


@pytest.mark.parametrize("build", [lambda: GCN(9, 16, 4, layers=3, dropout=0.0),
                                   lambda: DAGNN(9, 16, 4, k=3, dropout=0.0)])
def test_sparse_and_dense_inputs_give_the_same_outputs_and_gradients(build):
    x, adj = _graph()
    torch.manual_seed(0)
    model = build()
    model(x.to_sparse_csr(), adj).square().sum().backward()
    sparse_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x, adj.to_sparse_coo()).square().sum().backward()
    for a, b in zip(sparse_grads, (p.grad for p in model.parameters())):
        assert torch.allclose(a, b, atol=1e-5)


def test_dropout_on_sparse_input_keeps_the_sparsity_and_scales_kept_entries():
    x, adj = _graph()
    model = DAGNN(9, 16, 4, k=2, dropout=0.5).train()
    torch.manual_seed(1)
    out = model(x.to_sparse_csr(), adj)
    assert out.shape == (12, 4) and torch.isfinite(out).all()


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="k \\(propagation hops\\) must be >= 0, got -1"):
        DAGNN(9, 16, 4, k=-1)
    with pytest.raises(ValueError, match="layers=0"):
        GCN(9, 16, 4, layers=0)
    with pytest.raises(ValueError, match="dropout must be in \\[0, 1\\), got 1.0"):
        GCN(9, 16, 4, dropout=1.0)


def test_smoothness_metric_values():
    assert smoothness_metric(torch.ones(5, 3) * torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])) == pytest.approx(0.0)
    # two opposite unit vectors: D = 1/2 * 2 = 1
    assert smoothness_metric(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(1.0)
    # orthogonal: D = 1/2 * sqrt(2)
    eye = torch.eye(4)
    assert smoothness_metric(eye) == pytest.approx(0.5 * 2 ** 0.5)
    assert smoothness_metric(eye, chunk=1) == pytest.approx(smoothness_metric(eye))
    with pytest.raises(ValueError, match="N >= 2"):
        smoothness_metric(torch.ones(1, 3))


def test_propagation_makes_representations_smoother():
    x, adj = _graph(n=30, f=12)
    dense = adj.to_dense()
    values = [smoothness_metric(torch.linalg.matrix_power(dense, k) @ x) for k in (0, 2, 64)]
    assert values[0] > values[1] > values[2]
