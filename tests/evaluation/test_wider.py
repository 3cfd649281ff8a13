"""The WIDER FACE protocol on a tiny hand-made validation set; every AP is worked out below.

Ground truth (x, y, w, h), two events:
  0--Parade/0_Parade_1  A: F1 (0,0,10,10)  F2 (20,0,10,10)  F3 (40,0,10,10)
  0--Parade/0_Parade_2  B: G1 (0,0,20,20)  G2 (50,50,20,20)
  1--Handshaking/1_Handshaking_1  C: no face
  1--Handshaking/1_Handshaking_2  D: H1 (10,10,30,30)
gt_list (1-based): easy A [1] B [1] D [1]; medium A [1 2] B [1 2] D [1]; hard A [1 2 3] B [1 2] D [1]
  -> faces that count: easy 3, medium 5, hard 6.

Predictions (x y w h score), normalised over the whole set with min 0.2, max 1.0: (s - 0.2) / 0.8
  A: p1 F1 exactly .9 (-> .875)   p3 F2 exactly .6 (-> .5)   p4 (80,80,10,10) .5 (-> .375) touches
     no face   p2 F3 exactly .3 (-> .125)
  B: q1 G1 exactly .8 (-> .75)   q2 (2,2,20,20) .7 (-> .625), best face G1 (IoU 19²/(2*21² - 19²)
     = 361/521 = .69 with the +1 convention), already recalled by q1 -> a proposal recalling nothing
     q3 G2 exactly .2 (-> 0, kept only at the last threshold, 0.0)
  C: r1 (0,0,10,10) 1.0 (-> 1): its image has no face, so it is skipped; it only sets the max.
  D: an empty prediction file (count 0): H1 is missed but counts in the denominator.
Each normalised score lies in its own 1/1000 threshold bucket, so the 1000-threshold sweep gives one
curve point per detection in this global order: p1 q1 q2 p3 p4 p2 q3 (r1 never counts).

easy (F2, F3, G2 ignored: p3, p2, q3 hit an ignored face -> dropped):
  p1 TP (P 1/1, R 1/3), q1 TP (2/2, 2/3), q2 (2/3), p4 (2/4); recall never reaches 1.
  VOC AP = 1/3 * 1 + 1/3 * 1 = 2/3
medium (F3 ignored: p2 dropped):
  p1 TP 1/1 R .2 | q1 TP 2/2 R .4 | q2 2/3 | p3 TP 3/4 R .6 | p4 3/5 | q3 TP 4/6 R .8
  envelope at R .2, .4 -> 1; at .6 -> max(3/4, 3/5, 4/6) = 3/4; at .8 -> 2/3
  AP = .2 * (1 + 1 + 3/4 + 2/3) = 41/60
hard (nothing ignored):
  p1 1/1 R 1/6 | q1 2/2 R 2/6 | q2 2/3 | p3 3/4 R 3/6 | p4 3/5 | p2 4/6 R 4/6 | q3 5/7 R 5/6
  envelope: 1, 1, 3/4, max(4/6, 5/7) = 5/7, 5/7
  AP = (1 + 1 + 3/4 + 5/7 + 5/7) / 6 = (117/28) / 6 = 39/56
txt ground truth ("all"): the same faces, F3 flagged invalid -> ignored: the medium case, 41/60.
"""

import json

import numpy as np
import pytest
from scipy.io import savemat

from facedet.evaluation.wider import _overlaps, evaluate_wider, read_ground_truth, voc_ap

EVENTS = {
    "0--Parade": {
        "0_Parade_1": [(0, 0, 10, 10), (20, 0, 10, 10), (40, 0, 10, 10)],
        "0_Parade_2": [(0, 0, 20, 20), (50, 50, 20, 20)],
    },
    "1--Handshaking": {
        "1_Handshaking_1": [],
        "1_Handshaking_2": [(10, 10, 30, 30)],
    },
}
GT_LISTS = {  # per image in EVENTS order, 1-based
    "easy": [[1], [1], [], [1]],
    "medium": [[1, 2], [1, 2], [], [1]],
    "hard": [[1, 2, 3], [1, 2], [], [1]],
}
PREDICTIONS = {
    "0_Parade_1": [(0, 0, 10, 10, 0.9), (20, 0, 10, 10, 0.6), (80, 80, 10, 10, 0.5), (40, 0, 10, 10, 0.3)],
    "0_Parade_2": [(0, 0, 20, 20, 0.8), (2, 2, 20, 20, 0.7), (50, 50, 20, 20, 0.2)],
    "1_Handshaking_1": [(0, 0, 10, 10, 1.0)],
    "1_Handshaking_2": [],
}
EXPECTED = {"easy": 2 / 3, "medium": 41 / 60, "hard": 39 / 56}


def cell(items) -> np.ndarray:
    """A MATLAB n x 1 cell array as savemat writes it (and as the official files are shaped)."""
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = item
    return out


def write_mat_ground_truth(folder):
    folder.mkdir(parents=True, exist_ok=True)
    events = list(EVENTS)
    savemat(
        folder / "wider_face_val.mat",
        {
            "event_list": cell(events),
            "file_list": cell([cell(list(EVENTS[e])) for e in events]),
            "face_bbx_list": cell(
                [cell([np.array(b, dtype=np.float64).reshape(-1, 4) for b in EVENTS[e].values()]) for e in events]
            ),
        },
    )
    for setting, lists in GT_LISTS.items():
        per_image = iter(lists)
        # official gt_list entries are m x 1 columns; hard stored as int32 to check dtype robustness
        dtype = np.int32 if setting == "hard" else np.float64
        gt_list = cell(
            [cell([np.array(next(per_image), dtype=dtype).reshape(-1, 1) for _ in EVENTS[e]]) for e in events]
        )
        savemat(folder / f"wider_{setting}_val.mat", {"gt_list": gt_list})


def write_txt_predictions(folder):
    for event, images in EVENTS.items():
        (folder / event).mkdir(parents=True, exist_ok=True)
        for name in images:
            rows = PREDICTIONS[name]
            lines = [f"{name}.jpg", str(len(rows))] + [" ".join(f"{v:g}" for v in row) for row in rows]
            (folder / event / f"{name}.txt").write_text("\n".join(lines) + "\n")


def test_overlap_uses_the_official_plus_one_convention():
    # (0,0,1,1) and (1,1,1,1) -> inclusive pixels [0,1]² and [1,2]²: inter 1, areas 4 -> 1 / 7
    # (continuous boxes would touch only at a corner: 0)
    assert _overlaps(np.array([[0, 0, 1, 1]]), np.array([[1, 1, 1, 1]]))[0, 0] == pytest.approx(1 / 7)
    # (0,0,4,4) vs (2,0,4,4): [0,4] and [2,6] -> inter 3 * 5 = 15, union 25 + 25 - 15 = 35 -> 3/7
    assert _overlaps(np.array([[0, 0, 4, 4]]), np.array([[2, 0, 4, 4]]))[0, 0] == pytest.approx(3 / 7)
    assert _overlaps(np.array([[0, 0, 4, 4]]), np.array([[10, 10, 4, 4]]))[0, 0] == 0.0


def test_voc_ap_all_points():
    # recall .5 at precision 1, then recall 1 at precision 2/3 -> .5 * 1 + .5 * 2/3
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)


def test_mat_ground_truth_is_read_like_the_official_nesting(tmp_path):
    write_mat_ground_truth(tmp_path)
    images, settings = read_ground_truth(tmp_path)
    assert settings == ("easy", "medium", "hard")
    assert [(i.event, i.name, len(i.boxes)) for i in images] == [
        ("0--Parade", "0_Parade_1", 3),
        ("0--Parade", "0_Parade_2", 2),
        ("1--Handshaking", "1_Handshaking_1", 0),
        ("1--Handshaking", "1_Handshaking_2", 1),
    ]
    assert images[0].boxes[1].tolist() == [20, 0, 10, 10]
    assert images[0].keep["medium"].tolist() == [0, 1]  # 0-based
    assert images[2].keep["hard"].tolist() == []


def test_official_mat_ground_truth_and_txt_predictions(tmp_path):
    write_mat_ground_truth(tmp_path / "gt")
    write_txt_predictions(tmp_path / "pred")
    aps = evaluate_wider(tmp_path / "gt", tmp_path / "pred")
    assert aps.keys() == EXPECTED.keys()
    for setting, expected in EXPECTED.items():
        assert aps[setting] == pytest.approx(expected), setting


def test_json_predictions_give_the_same_ap(tmp_path):
    write_mat_ground_truth(tmp_path / "gt")
    images = [
        {
            "file": f"{event}/{name}.jpg",
            "width": 100,
            "height": 100,
            "faces": [{"box": [x, y, x + w, y + h], "score": s} for x, y, w, h, s in PREDICTIONS[name]],
        }
        for event, names in EVENTS.items()
        for name in names
    ]
    path = tmp_path / "detections.json"
    path.write_text(json.dumps({"images": images, "errors": []}))
    aps = evaluate_wider(tmp_path / "gt", path)
    for setting, expected in EXPECTED.items():
        assert aps[setting] == pytest.approx(expected), setting


def test_txt_ground_truth_gives_all_faces_only(tmp_path):
    lines = []
    for event, images in EVENTS.items():
        for name, boxes in images.items():
            lines += [f"{event}/{name}.jpg", str(len(boxes))]
            for k, (x, y, w, h) in enumerate(boxes):
                invalid = int(name == "0_Parade_1" and k == 2)  # F3 flagged invalid -> ignored
                lines.append(f"{x} {y} {w} {h} 0 0 0 {invalid} 0 0 ")
            if not boxes:
                lines.append("0 0 0 0 0 0 0 0 0 0 ")  # the official placeholder line
    (tmp_path / "wider_face_val_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    write_txt_predictions(tmp_path / "pred")
    aps = evaluate_wider(tmp_path, tmp_path / "pred")
    assert aps == {"all": pytest.approx(41 / 60)}
    # the file itself is accepted too
    assert evaluate_wider(tmp_path / "wider_face_val_bbx_gt.txt", tmp_path / "pred") == aps


def test_missing_predictions(tmp_path):
    write_mat_ground_truth(tmp_path / "gt")
    write_txt_predictions(tmp_path / "pred")
    (tmp_path / "pred" / "1--Handshaking" / "1_Handshaking_2.txt").unlink()  # had no box anyway
    with pytest.warns(UserWarning, match="1 of 4"):
        aps = evaluate_wider(tmp_path / "gt", tmp_path / "pred")
    assert aps["hard"] == pytest.approx(39 / 56)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no prediction"):
        evaluate_wider(tmp_path / "gt", tmp_path / "empty")
