"""The landmark branch of the dense network and its loss, checked by hand; old box-only files still load."""

from __future__ import annotations

import math

import pytest
import torch

from facedet.loss.dense import DenseLoss, landmark_loss
from facedet.model import weights
from facedet.model.dense import DenseNet

TINY = dict(input_size=64, widths=(4, 8, 8, 8, 8), depth=0, neck_width=8)


def test_landmark_loss_by_hand():
    # Positive 1, weight 0.5: point 1's x is off by 1 stride: SmoothL1(1) = 1 - beta/2 = 1 - 1/18 = 0.944444.
    # Positive 2, weight 0.25, only point 1 labelled: its x off by 0.1 < beta: 0.5 * 0.01 * 9 = 0.045.
    # Positive 3, weight 1, no labelled point: adds nothing, not even to the denominator.
    # (0.5 * 0.944444 + 0.25 * 0.045) / (0.5 + 0.25) = 0.483472 / 0.75 = 0.644630
    pred = torch.zeros(3, 10)
    target = torch.zeros(3, 10)
    target[0, 0], target[1, 0], target[2, 0] = 1.0, 0.1, 5.0
    mask = torch.ones(3, 10)
    mask[1, 2:] = 0
    mask[2] = 0
    weight = torch.tensor([0.5, 0.25, 1.0])
    assert landmark_loss(pred, target, mask, weight).item() == pytest.approx(0.644630, abs=1e-5)
    # Wing (w 10, epsilon 2): 10 ln(1 + 1/2) = 4.054651 and 10 ln(1.05) = 0.487902;
    # (0.5 * 4.054651 + 0.25 * 0.487902) / 0.75 = 2.865742
    assert landmark_loss(pred, target, mask, weight, "wing").item() == pytest.approx(2.865742, abs=1e-5)
    assert landmark_loss(pred, target, torch.zeros(3, 10), weight).item() == 0.0


def _outputs_with_points(net: DenseNet, images: torch.Tensor, points: torch.Tensor, shift: float) -> dict:
    """Network outputs whose landmark offsets at EVERY prior point at ``points`` [5, 2] (pixels), moved
    right by ``shift`` strides: whichever priors the assigner picks, their error is known."""
    outputs = net(images)
    priors = outputs["priors"]
    offsets = (points[None] - priors[:, None, :2]) / priors[:, None, 2:3]
    offsets[..., 0] += shift
    outputs["landmarks"] = offsets.reshape(1, -1, 10).expand(len(images), -1, -1).clone().requires_grad_()
    return outputs


def test_dense_loss_counts_only_faces_with_landmarks():
    torch.manual_seed(0)
    net = DenseNet(**TINY, landmarks=True)
    images = torch.rand(2, 3, 64, 64)
    face = torch.tensor([[0.25, 0.25, 0.75, 0.75]])  # 32 x 32 px
    pixels = torch.tensor([[26.0, 28.0], [38.0, 28.0], [32.0, 34.0], [27.0, 40.0], [37.0, 40.0]])
    marks = torch.cat([pixels / 64, torch.full((5, 1), 2.0)], 1)[None]
    with_points = [{"boxes": face, "landmarks": marks}, {"boxes": face, "landmarks": marks}]
    loss = DenseLoss(landmark_weight=1.0)
    # Every positive's five x offsets are off by one stride: 5 * (1 - 1/18) = 4.722222, whatever the weights.
    shifted = loss(_outputs_with_points(net, images, pixels, 1.0), with_points)
    assert shifted["landmarks"].item() == pytest.approx(5 * (1 - 1 / 18), abs=1e-4)
    exact = loss(_outputs_with_points(net, images, pixels, 0.0), with_points)
    assert exact["landmarks"].item() == pytest.approx(0.0, abs=1e-6)
    # A batch whose faces have no landmarks (no key, or every v 0): exactly 0, and still a graph.
    for targets in ([{"boxes": face}] * 2, [{"boxes": face, "landmarks": torch.zeros(1, 5, 3)}] * 2):
        outputs = _outputs_with_points(net, images, pixels, 1.0)
        result = loss(outputs, targets)
        assert result["landmarks"].item() == 0.0
        result["loss"].backward()
    # One image with points, one without: only the first one counts, so the figure is the same.
    mixed = loss(_outputs_with_points(net, images, pixels, 1.0), [with_points[0], {"boxes": face}])
    assert mixed["landmarks"].item() == pytest.approx(5 * (1 - 1 / 18), abs=1e-4)


def test_landmark_network_outputs_and_gradients():
    torch.manual_seed(0)
    net = DenseNet(**TINY, landmarks=True)
    images = torch.rand(2, 3, 64, 96)
    outputs = net(images)
    n = outputs["priors"].shape[0]
    assert outputs["landmarks"].shape == (2, n, 10)
    decoded = net.decode(outputs)
    assert decoded.shape == (2, n, 15)
    # point = prior centre + raw * stride, normalised by the input size (W 96, H 64)
    raw, prior = outputs["landmarks"][0, 7], outputs["priors"][7]
    expected_x = (prior[0] + raw[0] * prior[2]) / 96
    assert decoded[0, 7, 5].item() == pytest.approx(expected_x.item(), abs=1e-6)
    face = torch.tensor([[0.2, 0.2, 0.6, 0.8]])
    marks = torch.tensor([[[0.3, 0.4, 2], [0.5, 0.4, 2], [0.4, 0.5, 2], [0.32, 0.65, 2], [0.48, 0.65, 1]]])
    DenseLoss()(outputs, [{"boxes": face, "landmarks": marks}] * 2)["loss"].backward()
    branch = [p for name, p in net.named_parameters() if name.startswith("predict_landmarks")]
    # every level's branch is in the graph; the levels where this face has positives learn
    assert branch and all(p.grad is not None for p in branch) and sum(p.grad.abs().sum() for p in branch) > 0


def test_box_only_files_load_as_box_only_networks_and_landmark_files_as_saved(tmp_path):
    config = {"name": "dense", **TINY, "widths": list(TINY["widths"])}
    weights.save(DenseNet(**TINY), config, tmp_path / "old.safetensors")  # made before landmarks: no key
    net, _ = weights.load(tmp_path / "old.safetensors")
    assert not net.landmarks and "landmarks" not in net(torch.rand(1, 3, 64, 64))
    assert net.decode(net(torch.rand(1, 3, 64, 64))).shape[-1] == 5
    images = torch.rand(1, 3, 64, 64)
    for depth in (0, 2):  # 0: on the box head's tower (files without the key); 2: two units of its own
        marked = DenseNet(**TINY, landmarks=True, landmark_depth=depth)
        weights.save(marked, config | {"landmarks": True, "landmark_depth": depth}, tmp_path / "m.safetensors")
        loaded, _ = weights.load(tmp_path / "m.safetensors")
        assert loaded.landmarks and loaded.landmark_depth == depth and len(loaded.predict_landmarks[0]) == 2 + depth
        assert torch.allclose(loaded.decode(loaded(images)), marked.eval().decode(marked(images)))
        with torch.no_grad():
            assert math.isfinite(float(loaded.decode(loaded(images))[..., 5:].abs().max()))
