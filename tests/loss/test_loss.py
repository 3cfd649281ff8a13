import math

import pytest
import torch

from facedet.loss import build_loss
from facedet.loss.single_face import SingleFaceLoss


def _targets(*boxes):
    return [{"boxes": torch.tensor(b, dtype=torch.float32).reshape(-1, 4)} for b in boxes]


def test_hand_computed_example():
    # Image A: truth (0.1, 0.2, 0.5, 0.6), prediction (0.2, 0.2, 0.6, 0.8):
    #   corners (0.2-0.1)^2 + 0 = 0.01; sizes: w 0.4 vs 0.4, h 0.6 vs 0.4 -> 0.04; localisation 0.05.
    # Image B: no face; its (wild) box must not count. BCE of logit 0 is ln 2 for either label.
    outputs = {
        "box": torch.tensor([[0.2, 0.2, 0.6, 0.8], [0.9, 0.9, 1.0, 1.0]]),
        "face_logit": torch.tensor([0.0, 0.0]),
    }
    losses = SingleFaceLoss(box_weight=1.0, face_weight=0.5)(outputs, _targets([[0.1, 0.2, 0.5, 0.6]], []))
    assert losses["box"].item() == pytest.approx(0.05)
    assert losses["face"].item() == pytest.approx(math.log(2))
    assert losses["loss"].item() == pytest.approx(0.05 + 0.5 * math.log(2))


def test_batch_without_faces_has_exactly_zero_box_term_and_still_trains_the_face_head():
    box = torch.rand(3, 4, requires_grad=True)
    logit = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    losses = SingleFaceLoss()({"box": box, "face_logit": logit}, _targets([], [], []))
    assert losses["box"].item() == 0.0
    losses["loss"].backward()
    assert torch.count_nonzero(box.grad) == 0
    assert torch.all(logit.grad > 0)  # every image is pushed towards "no face"


def test_largest_face_is_the_target_when_an_image_has_several():
    # Faces of area 0.01 and 0.16; the prediction equals the large one, so localisation is 0.
    outputs = {"box": torch.tensor([[0.4, 0.4, 0.8, 0.8]]), "face_logit": torch.tensor([5.0])}
    losses = SingleFaceLoss()(outputs, _targets([[0.0, 0.0, 0.1, 0.1], [0.4, 0.4, 0.8, 0.8]]))
    assert losses["box"].item() == pytest.approx(0.0, abs=1e-7)


def test_weights_come_from_config_and_bad_names_are_named():
    loss = build_loss({"name": "single_face", "box_weight": 2.0, "face_weight": 0.0})
    assert (loss.box_weight, loss.face_weight) == (2.0, 0.0)
    with pytest.raises(ValueError, match="loss.name"):
        build_loss({"name": "nope"})
