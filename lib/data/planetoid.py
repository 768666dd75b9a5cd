"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split, read from the raw files.

The raw files are those of Yang, Cohen and Salakhutdinov (ICML 2016, github.com/kimiyoung/planetoid), the split
every GCN-style paper reports on: 20 labelled nodes per class for training, 500 validation nodes, 1,000 test nodes
(``data_cards/planetoid.md``). The reading follows PyTorch Geometric's ``Planetoid`` (used by the DAGNN official
code, arXiv:2007.09296), without depending on it:

* node features = ``allx`` stacked on ``tx``, the test rows moved to the sorted ids of ``test.index``; CiteSeer's
  15 isolated ids missing from ``test.index`` get zero features and label 0 and belong to no split;
* train = the first ``len(y)`` nodes, validation = the next 500, test = the ids in ``test.index``;
* edges = the adjacency lists made symmetric, duplicates and self-loops removed (Cora: 5,278 undirected edges;
  the 5,429 of the GCN paper count the raw lists' duplicates);
* ``normalize_features=True`` divides each feature row by its sum (PyG ``NormalizeFeatures``, on in the DAGNN
  official code; all-zero rows stay zero);
* ``adjacency`` = D^-1/2 (A + I) D^-1/2 with D the degree matrix of A + I (Kipf & Welling, arXiv:1609.02907,
  Eq. 2), a symmetric sparse CSR tensor.

Every file is checked against the data card (sha256, or the git blob id for PubMed's ``allx``) before it is
unpickled. The files come from a folder the user names (a PyTorch Geometric root: ``<folder>/PubMed/raw/ind.pubmed.*``)
or from the mirror (``$REPRO_DATA/planetoid/``); the Hugging Face hub has no copy of the raw Planetoid format.
PubMed is not in the offline mirror (``data_cards/planetoid.md`` says where to get it).
"""
from __future__ import annotations

import pathlib
import pickle
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .cards import load_card
from .images import MissingDataError, mirror_root, verify_folder

# PyTorch flags its CSR kernels as beta on every first use; the book relies on the tested subset only.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

NAMES = {"cora": ("Cora", "cora"), "citeseer": ("CiteSeer", "citeseer"), "pubmed": ("PubMed", "pubmed")}
PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


@dataclass
class GraphData:
    """One graph for full-batch node classification.

    ``features`` (N, F) float32 dense, ``labels`` (N,) int64, boolean masks (N,) for the public split,
    ``adjacency`` (N, N) sparse CSR float32 = D^-1/2 (A + I) D^-1/2 (symmetric), ``edges`` (2, E) int64 undirected edges
    (each once, i < j, no self-loops).
    """

    name: str
    features: torch.Tensor
    labels: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    adjacency: torch.Tensor
    edges: torch.Tensor
    num_classes: int
    source: dict = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return self.features.shape[0]

    @property
    def num_features(self) -> int:
        return self.features.shape[1]

    @property
    def num_edges(self) -> int:
        """Undirected edges without self-loops, each counted once."""
        return self.edges.shape[1]

    def sparse_features(self) -> torch.Tensor:
        """The features as a sparse CSR tensor (bag-of-words rows are ~1 % non-zero, so a sparse product is
        far cheaper than a dense one)."""
        return self.features.to_sparse_csr()


def normalized_adjacency(edges: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 as a symmetric sparse CSR tensor, from undirected ``edges`` (2, E) listed once."""
    loops = torch.arange(num_nodes)
    row = torch.cat([edges[0], edges[1], loops])
    col = torch.cat([edges[1], edges[0], loops])
    ones = torch.ones(row.numel(), dtype=torch.float32)
    a = torch.sparse_coo_tensor(torch.stack([row, col]), ones, (num_nodes, num_nodes), check_invariants=True).coalesce()
    a = torch.sparse_coo_tensor(a.indices(), torch.ones_like(a.values()), a.shape,
                                check_invariants=True).coalesce()  # binary A + I
    degree = torch.zeros(num_nodes).index_add_(0, a.indices()[0], a.values())
    scale = degree.pow(-0.5)
    i, j = a.indices()
    return torch.sparse_coo_tensor(a.indices(), scale[i] * a.values() * scale[j], a.shape,
                                   check_invariants=True).coalesce().to_sparse_csr()


def _undirected_edges(graph: dict, num_nodes: int) -> torch.Tensor:
    pairs = {(min(u, v), max(u, v)) for u, neighbours in graph.items() for v in neighbours if u != v}
    pairs = sorted(p for p in pairs if p[1] < num_nodes)
    return torch.tensor(pairs, dtype=torch.long).t().contiguous() if pairs else torch.zeros(2, 0, dtype=torch.long)


def _unpickle(path: pathlib.Path):
    with warnings.catch_warnings():   # scipy's old module paths inside the Python 2 pickles
        warnings.simplefilter("ignore", DeprecationWarning)
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="latin1")


def load_planetoid(name: str, *, normalize_features: bool = True, root: str | pathlib.Path | None = None,
                   folder: str | pathlib.Path | None = None) -> GraphData:
    """Cora, CiteSeer or PubMed with the public Planetoid split (module docstring), verified against its data card.

    ``name`` is ``"cora"``, ``"citeseer"`` or ``"pubmed"`` (case-insensitive). The files are read from ``folder``
    (a Planetoid root holding ``<Name>/raw/ind.<name>.*``, as PyTorch Geometric lays it out), else from
    ``root/planetoid/`` (``root`` defaults to ``$REPRO_DATA``). Raises ValueError for an unknown name,
    MissingDataError without a source or with a missing file, ChecksumError for a file whose digest differs from
    the card.
    """
    key = name.lower()
    if key not in NAMES:
        raise ValueError(f"unknown Planetoid graph {name!r}; accepted: {', '.join(NAMES)}")
    directory, prefix = NAMES[key]
    card = load_card("planetoid")
    if folder is not None:
        base = pathlib.Path(folder).expanduser()
        if not base.is_dir():
            raise MissingDataError(f"planetoid/{key}: the folder {base} does not exist or is not a directory; name a "
                                   f"Planetoid root holding {directory}/raw/ind.{prefix}.*")
    else:
        root = pathlib.Path(root) if root is not None else mirror_root()
        if root is None:
            raise MissingDataError(
                f"planetoid/{key}: REPRO_DATA is not set and the Hugging Face hub has no loader for the raw Planetoid "
                f"format; set REPRO_DATA to a mirror holding planetoid/{directory}/raw/ind.{prefix}.*, or pass "
                f"folder=<a Planetoid root> (see data_cards/planetoid.md for the files and their checksums)")
        base = root / card.name
    checked = verify_folder(card, key, base)
    raw = base / directory / "raw"
    parts = {p: _unpickle(raw / f"ind.{prefix}.{p}") for p in PARTS if p != "test.index"}
    test_index = np.loadtxt(raw / f"ind.{prefix}.test.index", dtype=np.int64).reshape(-1)
    sorted_test = np.sort(test_index)

    tx, ty = parts["tx"].toarray(), parts["ty"]
    first, last = int(sorted_test.min()), int(sorted_test.max())
    if last - first + 1 != len(sorted_test):
        # isolated test ids absent from test.index (CiteSeer): zero feature rows and zero label rows
        full_x = np.zeros((last - first + 1, tx.shape[1]), dtype=tx.dtype)
        full_y = np.zeros((last - first + 1, ty.shape[1]), dtype=ty.dtype)
        full_x[sorted_test - first] = tx
        full_y[sorted_test - first] = ty
        tx, ty = full_x, full_y
    x = np.vstack([parts["allx"].toarray(), tx]).astype(np.float32)
    y = np.vstack([parts["ally"], ty]).argmax(1)
    x[test_index] = x[sorted_test]
    y[test_index] = y[sorted_test]
    n = x.shape[0]

    features = torch.from_numpy(x)
    if normalize_features:
        features = features / features.sum(1, keepdim=True).clamp(min=1.0)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    n_train = parts["y"].shape[0]
    masks[0][:n_train] = True
    masks[1][n_train:n_train + 500] = True
    masks[2][torch.from_numpy(test_index)] = True
    edges = _undirected_edges(parts["graph"], n)
    return GraphData(
        name=key, features=features, labels=torch.from_numpy(y).long(), train_mask=masks[0], val_mask=masks[1],
        test_mask=masks[2], adjacency=normalized_adjacency(edges, n), edges=edges,
        num_classes=int(parts["y"].shape[1]),
        source={"origin": "mirror" if folder is None else "folder", "dataset": "planetoid", "split": key,
                "files": checked,
                "normalize_features": normalize_features})


__all__ = ["GraphData", "load_planetoid", "normalized_adjacency"]
