"""lib.measure: parameter and FLOP counts against closed forms; MobileNetV2 against the paper's cost table."""
import pytest
import torch
from torch import nn

from lib.measure import count_flops, count_params, latency_ms
from lib.models import MobileNetV2


def test_conv_and_linear_flops_follow_the_closed_form():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 3, 16, 16)) == 2 * 16 * 16 * 8 * 3 * 9
    linear = nn.Linear(10, 5)
    assert count_flops(linear, (4, 10)) == 2 * 4 * 10 * 5
    assert count_params(linear) == 55


def test_mobilenetv2_matches_the_papers_cost_table():
    """MobileNetV2-1.0 at 224×224: 3.5M parameters and 300M multiply-adds, as in the coordinate attention
    paper's comparison table (the MobileNetV2 paper rounds to 3.4M)."""
    model = MobileNetV2(num_classes=1000, width_mult=1.0, strides="imagenet")
    assert count_params(model) == 3_504_872
    assert count_flops(model, (1, 3, 224, 224)) / 2 == pytest.approx(300e6, rel=0.01)


def test_latency_is_positive_and_restores_threads():
    before = torch.get_num_threads()
    assert latency_ms(nn.Linear(4, 4), (1, 4), repeats=3, warmup=1, threads=1) > 0
    assert torch.get_num_threads() == before
