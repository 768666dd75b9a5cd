"""lib.measure.segmentation: confusion matrix, IoU, mIoU, pixel accuracy with void ignored; the evaluator hook."""
import math

import pytest
import torch

from lib.data.segmentation import SegmentationData
from lib.measure.segmentation import (confusion_matrix, iou_per_class, mean_iou, metric_name, pixel_accuracy,
                                      segmentation_criterion, segmentation_evaluator, summarize)

V = 255


def test_hand_computed_confusion_iou_and_accuracy_with_void_ignored():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, V, V]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 1]])     # the two void pixels must not count
    m = confusion_matrix(pred, target, 3)
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU_0 = 1 / (2 + 2 - 1) = 1/3, IoU_1 = 2 / (2 + 3 - 2) = 2/3, IoU_2 = 1 / (2 + 1 - 1) = 1/2
    assert torch.allclose(iou_per_class(m), torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64))
    assert math.isclose(mean_iou(m), (1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert math.isclose(pixel_accuracy(m), 4 / 6)


def test_a_class_absent_from_truth_and_prediction_is_left_out_of_the_mean():
    m = torch.tensor([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    iou = iou_per_class(m)
    assert math.isnan(iou[2]) and math.isclose(mean_iou(m), (3 / 4 + 4 / 5) / 2)


def test_summarize_reports_percentages_groups_and_gaps():
    m = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    out = summarize(m, ["Sky", "Sign Symbol", "Pole"], groups={"thin": ["Sign Symbol", "Pole"], "other": ["Sky"]},
                    gaps={"thin_gap": ("thin", "other")})
    assert math.isclose(out["test_iou_sign_symbol"], 100 * 2 / 3)
    assert math.isclose(out["test_thin_miou"], 100 * (2 / 3 + 1 / 2) / 2)
    assert math.isclose(out["test_thin_gap"], 100 * ((2 / 3 + 1 / 2) / 2 - 1 / 3))
    with pytest.raises(ValueError, match="unknown classes"):
        summarize(m, ["a", "b", "c"], groups={"thin": ["pole"]})


def test_metric_name():
    assert metric_name("SignSymbol") == "signsymbol" and metric_name("Traffic sign") == "traffic_sign"


class Fixed(torch.nn.Module):
    """Predicts class 1 everywhere (ignores the input)."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor([0.0, 5.0, 0.0]))

    def forward(self, x):
        return self.bias[None, :, None, None].expand(x.shape[0], 3, *x.shape[2:])


def test_evaluator_and_criterion_hooks():
    labels = torch.tensor([[[0, 1], [1, V]], [[2, 1], [V, V]]])
    data = SegmentationData(torch.zeros(2, 3, 2, 2, dtype=torch.uint8), labels, ["a", "b", "c"], "t", "test")
    evaluator = segmentation_evaluator(data.classes)
    out = evaluator(Fixed(), data, torch.zeros(3), torch.ones(3), None, None)
    assert set(out) == {"test_loss", "test_miou", "test_pixel_acc", "test_iou_a", "test_iou_b", "test_iou_c",
                        "test_acc"}
    assert math.isclose(out["test_pixel_acc"], 100 * 3 / 5)
    assert math.isclose(out["test_iou_b"], 100 * 3 / 5) and out["test_iou_a"] == 0.0
    loss, logits = segmentation_criterion()(Fixed(), torch.zeros(2, 3, 2, 2), labels, 0.0)
    expected = torch.nn.functional.cross_entropy(logits.permute(0, 2, 3, 1)[labels != V], labels[labels != V])
    assert torch.isclose(loss, expected)
    assert math.isclose(out["test_loss"], expected.item(), rel_tol=1e-6)
