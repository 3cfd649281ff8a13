import math

import pytest
import torch
from conftest import ROOT
from omegaconf import OmegaConf

from facedet.loss import build_loss
from facedet.loss.dense import DenseLoss, atss_assign, iou_family
from facedet.model import build_net

# A = (0, 0, 2, 2), area 4; B = (1, 1, 4, 3), 3 x 2, area 6.
# intersection [1, 2] x [1, 2] = 1; union 4 + 6 - 1 = 9; IoU = 1/9.
# enclosing box C = (0, 0, 4, 3): 4 x 3, area 12, diagonal^2 = 16 + 9 = 25.
# GIoU = 1/9 - (12 - 9)/12 = 1/9 - 1/4 = -5/36.
# centres (1, 1) and (2.5, 2): d^2 = 2.25 + 1 = 3.25; DIoU = 1/9 - 3.25/25 = 1/9 - 13/100 = -17/900.
# EIoU = DIoU - (2 - 3)^2 / 4^2 - (2 - 2)^2 / 3^2 = -17/900 - 1/16 = -293/3600.
A = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
B = torch.tensor([[1.0, 1.0, 4.0, 3.0]])


@pytest.mark.parametrize(
    "kind, expected", [("iou", 1 / 9), ("giou", -5 / 36), ("diou", -17 / 900), ("eiou", -293 / 3600)]
)
def test_iou_family_on_two_hand_boxes(kind, expected):
    assert iou_family(A, B, kind).item() == pytest.approx(expected, abs=1e-6)
    assert iou_family(B, A, kind).item() == pytest.approx(expected, abs=1e-6)  # symmetric
    assert iou_family(A, A, kind).item() == pytest.approx(1.0, abs=1e-6)


def test_unknown_iou_type_names_the_key():
    with pytest.raises(ValueError, match="loss.iou_type"):
        DenseLoss(iou_type="ciou")


def test_face_terms_on_hand_logits():
    # logits 0 (p = 1/2) and ln 3 (p = 3/4).
    logits = torch.tensor([0.0, 0.0, math.log(3.0), math.log(3.0)])
    # focal, alpha 0.25, gamma 2: alpha_t * (1 - p_t)^2 * BCE
    #   x=0, t=1: 0.25 * 0.25 * ln 2 = 0.0433217      x=0, t=0: 0.75 * 0.25 * ln 2 = 0.1299651
    #   x=ln3, t=1: 0.25 * (1/4)^2 * -ln(3/4) = 0.25 * 0.0625 * 0.2876821 = 0.0044950
    #   x=ln3, t=0: 0.75 * (3/4)^2 * -ln(1/4) = 0.75 * 0.5625 * 1.3862944 = 0.5848430
    focal = DenseLoss(face_loss="focal", alpha=0.25, gamma=2.0)._face(logits, torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert focal.tolist() == pytest.approx([0.0433217, 0.1299651, 0.0044950, 0.5848430], abs=1e-6)
    # quality focal, beta 2: |p - t|^2 * BCE(p, t)
    #   x=0, t=0.5: |0|^2 * ... = 0                      x=0, t=0: 0.25 * ln 2 = 0.1732868
    #   x=ln3, t=0.25: 0.25 * (0.25 * 0.2876821 + 0.75 * 1.3862944) = 0.25 * 1.1116413 = 0.2779103
    #   x=ln3, t=1: 0.0625 * 0.2876821 = 0.0179801
    qfl = DenseLoss(face_loss="qfl", gamma=2.0)._face(logits, torch.tensor([0.5, 0.0, 0.25, 1.0]))
    assert qfl.tolist() == pytest.approx([0.0, 0.1732868, 0.2779103, 0.0179801], abs=1e-6)


# One row of stride-8 prior points at x = 4, 12, 20, 28 (y = 4); anchor_scale 2 -> 16 x 16 anchors
# (-4..12), (4..20), (12..28), (20..36) in x, (-4..12) in y.
ROW = torch.tensor([[4.0, 4.0, 8.0], [12.0, 4.0, 8.0], [20.0, 4.0, 8.0], [28.0, 4.0, 8.0]])


def test_atss_takes_the_candidates_above_mean_plus_std():
    # Face (6, -4, 22, 12), centre x = 14: the 3 nearest points are 12 (d 2), 20 (d 6), 4 (d 10).
    # Anchor IoUs (all 16 high): 12 -> 14/18 = 7/9 = 0.7778; 20 -> 10/22 = 5/11 = 0.4545;
    # 4 -> 6/26 = 3/13 = 0.2308. mean 0.4877, unbiased std 0.2750 -> threshold 0.7627:
    # only the point at x = 12 (inside the face) is positive.
    assigned, positive = atss_assign(torch.tensor([[6.0, -4.0, 22.0, 12.0]]), ROW, topk=3, anchor_scale=2.0)
    assert positive.tolist() == [False, True, False, False]
    assert assigned.tolist() == [-1, 0, -1, -1]


def test_atss_gives_a_tiny_face_its_best_candidate():
    # Face (13, 3, 15, 5), 2 x 2: IoU 4/256 with the anchors at 12 and 20, 0 with the one at 4;
    # threshold = mean + std = 0.0104 + 0.0090 > 4/256 and no point lies inside it: no ATSS positive.
    # The fallback takes the first best candidate, the point at x = 12.
    assigned, positive = atss_assign(torch.tensor([[13.0, 3.0, 15.0, 5.0]]), ROW, topk=3, anchor_scale=2.0)
    assert positive.tolist() == [False, True, False, False]


def test_atss_without_faces_assigns_nothing():
    assigned, positive = atss_assign(torch.zeros(0, 4), ROW)
    assert not positive.any() and (assigned == -1).all()


def _outputs(size=(64, 64), batch=2):
    torch.manual_seed(0)
    net = build_net({"name": "dense", "input_size": size[0], "neck_width": 16})
    return net, net(torch.rand(batch, 3, *size))


@pytest.mark.parametrize("face_loss", ["qfl", "focal"])
def test_image_without_face_has_zero_box_term_and_pushes_scores_down(face_loss):
    net, outputs = _outputs()
    outputs["face_logit"].retain_grad()
    losses = DenseLoss(face_loss=face_loss)(outputs, [{"boxes": torch.zeros(0, 4)}] * 2)
    assert losses["box"].item() == 0.0
    assert losses["face"].item() > 0
    losses["loss"].backward()
    assert (outputs["face_logit"].grad > 0).all()  # gradient descent lowers every score


@pytest.mark.parametrize("iou_type", ["iou", "giou", "diou", "eiou"])
def test_loss_with_faces_is_finite_and_reaches_every_parameter(iou_type):
    net, outputs = _outputs(size=(64, 96))
    targets = [{"boxes": torch.tensor([[0.2, 0.3, 0.5, 0.7], [0.6, 0.1, 0.7, 0.2]])}, {"boxes": torch.zeros(0, 4)}]
    losses = DenseLoss(iou_type=iou_type)(outputs, targets)
    assert set(losses) == {"loss", "face", "box"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["box"] > 0
    assert not losses["box"].requires_grad and not losses["face"].requires_grad
    losses["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_config_file_builds_the_loss():
    cfg = OmegaConf.load(ROOT / "conf" / "loss" / "dense.yaml")
    loss = build_loss(OmegaConf.to_container(cfg))
    assert isinstance(loss, DenseLoss) and loss.iou_type == cfg.iou_type


def test_points_inside_an_ignore_region_add_no_face_term():
    net, outputs = _outputs()
    outputs["face_logit"].retain_grad()
    half = torch.tensor([[0.0, 0.0, 0.5, 1.0]])  # the left half of the input
    losses = DenseLoss()(outputs, [{"boxes": torch.zeros(0, 4), "ignore": half}] * 2)
    losses["loss"].backward()
    centres_x = outputs["priors"][:, 0] / 64
    grad = outputs["face_logit"].grad
    assert (grad[:, centres_x < 0.5] == 0).all() and (grad[:, centres_x > 0.5] > 0).all()
    whole = DenseLoss()(outputs, [{"boxes": torch.zeros(0, 4), "ignore": torch.tensor([[0.0, 0.0, 1.0, 1.0]])}] * 2)
    assert whole["loss"].item() == 0.0


@pytest.mark.parametrize("side", [6, 12, 24, 48, 96, 160, 240, 320])
def test_assigner_gives_faces_of_every_training_size_positives_on_a_fitting_level(side):
    """At the default 320 input (strides 8/16/32, anchors 4x stride) every face from the ignore limit
    (6 px) to the whole input gets positives, and big faces get them on the coarse levels."""
    net = build_net({"name": "dense", "input_size": 320, "neck_width": 16})
    priors = net(torch.rand(1, 3, 320, 320))["priors"]
    loss = build_loss(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "loss" / "dense.yaml")))
    centre = 160.0 + 3.0  # off the prior grid
    gt = torch.tensor([[centre - side / 2, centre - side / 2, centre + side / 2, centre + side / 2]]).clamp(0, 320)
    _, positive = atss_assign(gt, priors, loss.topk, loss.anchor_scale, loss.centre_inside)
    strides = priors[positive, 2]
    assert positive.sum() >= (1 if side < 24 else 3)
    if side >= 160:
        assert (strides >= 16).all() and (strides == 32).any()
    if side <= 12:
        assert (strides == 8).all()
