"""Linear CKA: the reference formula, invariances, range; the official layer mapping."""
import pytest
import torch

from lib.losses import layer_mapping, linear_cka


def _reference_cka(x, y):
    """Kornblith et al. 2019, feature-space form: ||Y_cᵀ X_c||²_F / (||X_cᵀ X_c||_F ||Y_cᵀ Y_c||_F)."""
    x, y = x - x.mean(0), y - y.mean(0)
    return (y.t() @ x).norm() ** 2 / ((x.t() @ x).norm() * (y.t() @ y).norm())


def test_equals_the_feature_space_formula_and_the_centred_gram_hsic():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 7, generator=g, dtype=torch.float64), torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = y + x[:, :4]                                            # some shared structure
    torch.testing.assert_close(linear_cka(x, y), _reference_cka(x, y))
    h = torch.eye(30, dtype=torch.float64) - 1 / 30
    hsic = lambda a, b: torch.trace(h @ a @ a.t() @ h @ h @ b @ b.t() @ h)
    torch.testing.assert_close(linear_cka(x, y), hsic(x, y) / (hsic(x, x) * hsic(y, y)).sqrt())


def test_invariant_to_orthogonal_maps_and_isotropic_scaling_not_to_anisotropic_ones():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = y + 0.5 * x
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    base = linear_cka(x, y)
    torch.testing.assert_close(linear_cka(x @ q, y), base)
    torch.testing.assert_close(linear_cka(x, 3.7 * y + 2.0), base)   # scaling and a translation
    stretched = x * torch.tensor([10.0, 1, 1, 1, 1, 0.1], dtype=torch.float64)
    assert not torch.allclose(linear_cka(stretched, y), base)


def test_range_and_identity_and_conv_maps_are_flattened():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 3, 4, 4, generator=g)
    assert torch.isclose(linear_cka(x, x), torch.tensor(1.0))
    value = linear_cka(x, torch.randn(16, 5, generator=g))
    assert 0.0 <= value <= 1.0
    torch.testing.assert_close(linear_cka(x, x.flatten(1) * 2), torch.tensor(1.0))


def test_gradient_flows_to_both_arguments():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 4, generator=g, requires_grad=True)
    y = torch.randn(10, 3, generator=g, requires_grad=True)
    (1 - linear_cka(x, y)).backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0


def test_layer_mapping_spreads_the_guide_evenly_like_the_official_code():
    assert layer_mapping(["g0", "g1", "g2"], list("abcde")) == {"g0": "a", "g1": "c", "g2": "e"}
    assert layer_mapping(["g0"], list("abc")) == {"g0": "a"}
    assert layer_mapping(["g0", "g1", "g2", "g3"], ["a", "b"]) == {"g0": "a", "g1": "a", "g2": "b", "g3": "b"}
    # round(0.5) == 0 in Python (half to even), as in the official code
    assert layer_mapping(["g0", "g1", "g2"], ["a", "b"]) == {"g0": "a", "g1": "a", "g2": "b"}


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="same inputs"):
        linear_cka(torch.randn(4, 2), torch.randn(5, 2))
    with pytest.raises(ValueError, match="at least one layer"):
        layer_mapping([], ["a"])
