"""Planetoid reader: counts, split sizes, the normalised adjacency, feature normalisation, errors."""
import os
import shutil

import pytest
import torch

from lib.data import ChecksumError, MissingDataError
from lib.data.planetoid import load_planetoid, normalized_adjacency

needs_mirror = pytest.mark.skipif(not os.environ.get("REPRO_DATA"), reason="REPRO_DATA is not set")


def test_normalized_adjacency_matches_dense_formula():
    edges = torch.tensor([[0, 0, 1, 3], [1, 2, 2, 4]])
    a = torch.zeros(6, 6)
    a[edges[0], edges[1]] = 1
    a = a + a.t() + torch.eye(6)
    d = a.sum(1).pow(-0.5)
    expected = d[:, None] * a * d[None, :]
    got = normalized_adjacency(edges, 6)
    assert got.layout == torch.sparse_csr
    assert torch.allclose(got.to_dense(), expected, atol=1e-7)
    assert got.to_dense()[5, 5] == 1.0   # an isolated node keeps only its self-loop


def test_unknown_name_names_the_accepted_ones():
    with pytest.raises(ValueError, match="unknown Planetoid graph 'pubmed'; accepted: cora, citeseer"):
        load_planetoid("pubmed")


def test_without_mirror_the_error_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("REPRO_DATA", raising=False)
    with pytest.raises(MissingDataError, match="REPRO_DATA is not set.*no loader for the raw Planetoid"):
        load_planetoid("cora")


@needs_mirror
@pytest.mark.parametrize("name,nodes,features,classes,edges,train", [
    ("cora", 2708, 1433, 7, 5278, 140), ("citeseer", 3327, 3703, 6, 4552, 120)])
def test_counts_and_public_split(name, nodes, features, classes, edges, train):
    g = load_planetoid(name)
    assert (g.num_nodes, g.num_features, g.num_classes, g.num_edges) == (nodes, features, classes, edges)
    assert [int(m.sum()) for m in (g.train_mask, g.val_mask, g.test_mask)] == [train, 500, 1000]
    assert not (g.train_mask & g.val_mask).any() and not (g.val_mask & g.test_mask).any()
    assert not (g.train_mask & g.test_mask).any()
    assert torch.bincount(g.labels[g.train_mask], minlength=classes).tolist() == [20] * classes
    assert g.adjacency._nnz() == 2 * edges + nodes


@needs_mirror
def test_features_row_normalised_and_citeseer_isolated_rows_zero():
    g = load_planetoid("citeseer")
    sums = g.features.sum(1)
    zero = sums == 0
    assert int(zero.sum()) == 15                              # isolated ids missing from test.index
    assert not (zero & (g.train_mask | g.val_mask | g.test_mask)).any()
    assert torch.allclose(sums[~zero], torch.ones(int((~zero).sum())), atol=1e-5)
    raw = load_planetoid("citeseer", normalize_features=False).features
    assert raw.max() == 1.0 and torch.equal(raw > 0, g.features > 0)


@needs_mirror
def test_adjacency_symmetric_and_rows_match_dense_computation():
    g = load_planetoid("cora")
    dense = g.adjacency.to_dense()
    assert torch.equal(dense, dense.t())
    a = torch.zeros(g.num_nodes, g.num_nodes)
    a[g.edges[0], g.edges[1]] = 1
    a = a + a.t() + torch.eye(g.num_nodes)
    d = a.sum(1).pow(-0.5)
    assert torch.allclose(dense, d[:, None] * a * d[None, :], atol=1e-7)
    assert torch.allclose(g.sparse_features().to_dense(), g.features)


@needs_mirror
def test_corrupted_file_is_refused_before_unpickling(tmp_path, monkeypatch):
    src = os.path.join(os.environ["REPRO_DATA"], "planetoid", "Cora")
    shutil.copytree(src, tmp_path / "planetoid" / "Cora")
    victim = tmp_path / "planetoid" / "Cora" / "raw" / "ind.cora.graph"
    raw = bytearray(victim.read_bytes())
    raw[100] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        load_planetoid("cora", root=tmp_path)
    shutil.copy(os.path.join(src, "raw", "ind.cora.graph"), victim)
    (tmp_path / "planetoid" / "Cora" / "raw" / "ind.cora.x").unlink()
    with pytest.raises(MissingDataError, match="ind.cora.x"):
        load_planetoid("cora", root=tmp_path)
