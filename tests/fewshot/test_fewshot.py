"""Episodes are seeded, disjoint and class-ordered; ProtoNet's prototypes and logits equal hand computations."""
import pytest
import torch
import torch.nn.functional as F

from lib.fewshot import EpisodeSampler, ProtoNet, protonet_logits, prototypes
from lib.models import Conv4


def _labels():
    return torch.arange(200) % 20          # 20 classes x 10 examples


def test_an_episode_depends_only_on_seed_and_index_and_is_disjoint_and_class_ordered():
    labels = _labels()
    a = EpisodeSampler(labels, 5, 1, 3, episodes=10, seed=7)
    b = EpisodeSampler(labels, 5, 1, 3, episodes=10, seed=7)
    eps = list(a)
    assert all(torch.equal(x.support, y.support) and torch.equal(x.query, y.query) for x, y in zip(eps, b))
    assert torch.equal(a.episode(9).query, eps[9].query)                   # random access
    assert not torch.equal(eps[0].query, eps[1].query)                   # the index matters, not only the seed
    assert not torch.equal(EpisodeSampler(labels, 5, 1, 3, seed=8).episode(0).query, eps[0].query)
    for e in eps:
        assert len(set(e.support.tolist()) | set(e.query.tolist())) == 5 * 4     # disjoint, no repeats
        assert len(set(e.classes.tolist())) == 5
        assert torch.equal(labels[e.support], e.classes[e.support_labels])   # class by class, episode labels
        assert torch.equal(labels[e.query], e.classes[e.query_labels])
        assert torch.equal(e.query_labels, torch.arange(5).repeat_interleave(3))


def test_classes_too_small_are_excluded_and_too_few_classes_is_an_error():
    labels = torch.cat([torch.arange(40) % 4, torch.tensor([9, 9])])        # class 9 has 2 examples
    sampler = EpisodeSampler(labels, 4, 2, 3, seed=0)
    assert sampler.excluded == [9] and 9 not in sampler.episode(0).classes
    with pytest.raises(ValueError, match="5-way episodes need 5 classes"):
        EpisodeSampler(labels, 5, 2, 3)
    with pytest.raises(ValueError, match="k_shot"):
        EpisodeSampler(labels, 2, 0, 3)


def test_prototypes_are_class_means_and_logits_are_negative_squared_distances():
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 6.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    protos = prototypes(emb, labels, 2)
    torch.testing.assert_close(protos, torch.tensor([[1.0, 0.0], [0.0, 5.0]], dtype=torch.float64))
    q = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(protonet_logits(q, protos), torch.tensor([[-1.0, -17.0]], dtype=torch.float64))
    torch.testing.assert_close(protonet_logits(q, protos, scale=2.0), torch.tensor([[-0.5, -8.5]], dtype=torch.float64))
    with pytest.raises(ValueError, match="support example"):
        prototypes(emb, torch.tensor([0, 0, 0, 0]), 2)
    with pytest.raises(ValueError, match=r"episode labels in 0..1, got \[2\]"):
        prototypes(emb, torch.tensor([0, 1, 2, 1]), 2)


def test_logits_stay_exact_for_high_norm_embeddings():
    q = torch.full((1, 64), 1000.0)
    c = torch.stack([torch.full((64,), 1000.0), torch.full((64,), 1000.0)])
    c[1, 0] += 0.5
    torch.testing.assert_close(protonet_logits(q, c), torch.tensor([[0.0, -0.25]]))


def test_protonet_equals_the_cdist_path_and_conv4_embeds_omniglot_to_64():
    torch.manual_seed(0)
    encoder = Conv4(1, 64).eval()
    net = ProtoNet(encoder)
    support, query = torch.randn(10, 1, 28, 28), torch.randn(6, 1, 28, 28)
    s_labels = torch.arange(5).repeat_interleave(2)
    logits = net(support, s_labels, query, 5)
    with torch.no_grad():
        zs, zq = encoder(support), encoder(query)
    assert zs.shape == (10, 64)
    protos = torch.stack([zs[s_labels == c].mean(0) for c in range(5)])
    torch.testing.assert_close(logits, -torch.cdist(zq, protos) ** 2, rtol=1e-4, atol=1e-4)
    loss = F.cross_entropy(logits, torch.tensor([0, 1, 2, 3, 4, 0]))
    loss.backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_named_streams_differ_by_purpose_and_never_collide_across_seed_and_index():
    from lib.data.streams import stream_generator
    draw = lambda *key: torch.randint(0, 2**31, (4,), generator=stream_generator(*key)).tolist()
    assert draw("episode", 0, 1) == draw("episode", 0, 1)
    assert draw("episode", 0, 1) != draw("permuted-task", 0, 1)
    assert draw("episode", 0, 1_000_003) != draw("episode", 1, 0)
