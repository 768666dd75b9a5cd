"""fit's unlabelled stream: the labelled stream is untouched, batches are seeded per (seed, epoch), resume is exact."""
import pytest
import torch
import torch.nn.functional as F

from lib.train import TrainConfig, fit, unlabeled_order
from tests.train.tiny import tiny_data, tiny_model


class Recording(torch.nn.Module):
    """Cross-entropy that ignores the unlabelled batch but records it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, model, x, labels, progress, unlabeled=None):
        if unlabeled is not None:
            self.seen.append(unlabeled.detach().clone())
        logits = model(x)
        return F.cross_entropy(logits, labels), logits

    def state_dict(self, *a, **k):
        return {}

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return torch.nn.modules.module._IncompatibleKeys([], [])


CONFIG = TrainConfig(epochs=3, batch_size=16, lr=0.05)


def _fit(criterion, unlabeled=None, run_dir=None, seed=0):
    torch.manual_seed(seed)
    return fit(tiny_model(), tiny_data(64), tiny_data(32, seed=1), CONFIG, seed=seed, criterion=criterion,
               unlabeled=unlabeled, run_dir=run_dir, progress=False)


def test_the_labelled_stream_is_exactly_the_same_with_an_unlabelled_stream():
    plain = _fit(Recording())
    recording = Recording()
    with_unlabeled = _fit(recording, unlabeled=tiny_data(40, seed=2))
    assert [h["train_loss"] for h in plain["history"]] == [h["train_loss"] for h in with_unlabeled["history"]]
    assert len(recording.seen) == 3 * 4 and all(u.shape == (16, 3, 8, 8) for u in recording.seen)


def test_unlabelled_batches_are_a_function_of_seed_and_epoch_and_cover_the_set():
    a, b, c = Recording(), Recording(), Recording()
    _fit(a, unlabeled=tiny_data(40, seed=2))
    _fit(b, unlabeled=tiny_data(40, seed=2))
    _fit(c, unlabeled=tiny_data(40, seed=2), seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.seen, b.seen))
    assert not all(torch.equal(x, y) for x, y in zip(a.seen, c.seen))
    order, _ = unlabeled_order(40, 0, 0, 64)
    assert sorted(order[:40].tolist()) == list(range(40)) and len(order) == 64     # a permutation, then more
    assert not torch.equal(a.seen[0], a.seen[4])                                   # epoch 1 is not epoch 0 again


def test_an_unlabelled_batch_is_the_drawn_rows_augmented_and_normalised_with_the_training_statistics():
    from lib.data import crop_flip, normalize
    train, unlabeled = tiny_data(64), tiny_data(40, seed=2)
    recording = Recording()
    torch.manual_seed(0)
    fit(tiny_model(), train, tiny_data(32, seed=1), TrainConfig(epochs=1, batch_size=16, lr=0.05, channels_last=True),
        seed=0, criterion=recording, unlabeled=unlabeled, progress=False)
    order, generator = unlabeled_order(40, 0, 0, 64)
    mean, std = train.channel_stats()
    for step in range(4):
        images = crop_flip(unlabeled.images[order[step * 16:(step + 1) * 16]], generator, padding=4)
        torch.testing.assert_close(recording.seen[step], normalize(images, mean, std))
    assert recording.seen[0].is_contiguous(memory_format=torch.channels_last)


def test_resume_with_another_unlabelled_set_is_refused(tmp_path, interrupt_at_evaluation):
    interrupt_at_evaluation(2)
    with pytest.raises(KeyboardInterrupt):
        _fit(Recording(), unlabeled=tiny_data(40, seed=2), run_dir=tmp_path)
    interrupt_at_evaluation.restore()
    with pytest.raises(ValueError, match="another unlabelled set"):
        _fit(Recording(), unlabeled=tiny_data(40, seed=5), run_dir=tmp_path)


def test_resume_sees_the_same_unlabelled_batches(tmp_path, interrupt_at_evaluation):
    straight = Recording()
    _fit(straight, unlabeled=tiny_data(40, seed=2))
    interrupt_at_evaluation(2)                 # stop in epoch 2's evaluation: epoch 1 is checkpointed
    first = Recording()
    with pytest.raises(KeyboardInterrupt):
        _fit(first, unlabeled=tiny_data(40, seed=2), run_dir=tmp_path)
    interrupt_at_evaluation.restore()
    resumed = Recording()
    _fit(resumed, unlabeled=tiny_data(40, seed=2), run_dir=tmp_path)
    assert len(resumed.seen) == 8 and all(torch.equal(x, y) for x, y in zip(resumed.seen, straight.seen[4:]))


def test_unlabelled_without_a_criterion_or_with_other_shapes_is_refused():
    with pytest.raises(ValueError, match="needs a criterion"):
        fit(tiny_model(), tiny_data(64), tiny_data(32), CONFIG, seed=0, unlabeled=tiny_data(8), progress=False)
    small = tiny_data(8)
    small.images = small.images[:, :, :4, :4]
    with pytest.raises(ValueError, match="shaped like the training images"):
        fit(tiny_model(), tiny_data(64), tiny_data(32), CONFIG, seed=0, criterion=Recording(), unlabeled=small,
            progress=False)
