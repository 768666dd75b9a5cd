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
    with pytest.raises(ValueError, match="unknown Planetoid graph 'reddit'; accepted: cora, citeseer, pubmed"):
        load_planetoid("reddit")


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


# --- PubMed: not in the offline mirror; a fake copy in the exact raw format, checked against a copy of its card -------

def _pubmed_copy(root, cards_dir):
    """``root/PubMed/raw/ind.pubmed.*`` as the Planetoid files store a graph: 3 classes, 500 features (TF-IDF-like
    floats), 6 labelled training nodes, 4 test nodes listed out of order, 14 nodes; the card copy pins these files
    (allx by its git blob id, like the real card)."""
    import pickle
    from collections import defaultdict

    import numpy as np
    import scipy.sparse as sp

    from fakes import BOOK_CARDS, card_copy, sha256
    from lib.data.cards import load_card
    from lib.data.images import git_blob_sha1

    rng = np.random.default_rng(0)
    n, n_test, features = 14, 4, 500
    x_all = sp.csr_matrix(rng.random((n, features)) * (rng.random((n, features)) < 0.05))
    labels = np.arange(n) % 3
    onehot = np.eye(3)[labels]
    test_ids = np.array([12, 10, 13, 11])                    # graph ids of the tx rows, unsorted as in the real files
    order = np.argsort(test_ids)
    raw = root / "PubMed" / "raw"
    raw.mkdir(parents=True)
    parts = {"x": x_all[:6], "y": onehot[:6], "allx": x_all[:n - n_test], "ally": onehot[:n - n_test],
             "tx": x_all[n - n_test:][np.argsort(order)], "ty": onehot[n - n_test:][np.argsort(order)]}
    graph = defaultdict(list, {i: [(i + 1) % n, (i + 5) % n] for i in range(n)})
    for key, value in {**parts, "graph": graph}.items():
        with open(raw / f"ind.pubmed.{key}", "wb") as handle:
            pickle.dump(value, handle, protocol=2)
    (raw / "ind.pubmed.test.index").write_text("".join(f"{i}\n" for i in test_ids))
    files = [f"PubMed/raw/ind.pubmed.{k}" for k in ("allx", "ally", "graph", "test.index", "tx", "ty", "x", "y")]
    real = load_card("planetoid", BOOK_CARDS)
    card_copy("planetoid", cards_dir, splits={"pubmed": {"rows": n, "files": files}},
              sha256={**real.sha256, **{f: sha256(root / f) for f in files[1:]}},
              git_sha1={files[0]: git_blob_sha1(root / files[0])})
    return x_all.toarray(), labels


def test_pubmed_from_a_named_folder_in_the_pyg_layout(tmp_path, monkeypatch):
    monkeypatch.setattr("lib.data.cards.CARDS_DIR", tmp_path / "cards")
    features, labels = _pubmed_copy(tmp_path / "pyg", tmp_path / "cards")
    g = load_planetoid("PubMed", folder=tmp_path / "pyg", normalize_features=False)
    assert (g.num_nodes, g.num_features, g.num_classes) == (14, 500, 3)
    assert torch.equal(g.labels, torch.as_tensor(labels))
    assert torch.allclose(g.features, torch.as_tensor(features, dtype=torch.float32))   # test rows back in place
    assert g.test_mask.nonzero().flatten().tolist() == [10, 11, 12, 13] and int(g.train_mask.sum()) == 6
    assert g.source["origin"] == "folder" and g.source["files"]["PubMed/raw/ind.pubmed.allx"].startswith("git-sha1:")


def test_pubmed_errors_name_the_folder_and_the_bad_digest(tmp_path, monkeypatch):
    from fakes import flip_a_byte
    from lib.data.images import git_blob_sha1

    monkeypatch.setattr("lib.data.cards.CARDS_DIR", tmp_path / "cards")
    _pubmed_copy(tmp_path / "pyg", tmp_path / "cards")
    with pytest.raises(MissingDataError, match=r"planetoid/pubmed: the folder .*elsewhere does not exist"):
        load_planetoid("pubmed", folder=tmp_path / "elsewhere")
    allx = tmp_path / "pyg" / "PubMed" / "raw" / "ind.pubmed.allx"
    expected = git_blob_sha1(allx)
    flip_a_byte(allx)
    with pytest.raises(ChecksumError, match=f"git-sha1 {git_blob_sha1(allx)} but the data card planetoid.md "
                                            f"expects {expected}"):
        load_planetoid("pubmed", folder=tmp_path / "pyg")
    (tmp_path / "pyg" / "PubMed" / "raw" / "ind.pubmed.ty").unlink()
    with pytest.raises(MissingDataError, match=r"file 'PubMed/raw/ind.pubmed.ty' is missing from the folder"):
        load_planetoid("pubmed", folder=tmp_path / "pyg")


def test_the_real_card_pins_pubmed_by_the_blob_ids_of_the_public_repositories():
    from lib.data.cards import load_card

    card = load_card("planetoid")
    assert card.expected_checksum("PubMed/raw/ind.pubmed.allx") == ("git-sha1", "3b86bccf08111c37c632a9dd8ab63db25ea76361")
    assert [card.expected_checksum(f)[0] for f in card.splits["pubmed"]["files"]].count("sha256") == 7
    assert not card.in_offline_mirror("pubmed") and card.in_offline_mirror("cora")
