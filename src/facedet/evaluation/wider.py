"""The WIDER FACE validation protocol, for users who downloaded WIDER FACE.

Reproduces the official evaluation (the MATLAB ``wider_eval.m`` of the WIDER FACE ``eval_tools``
and its Python port ``evaluation.py``) so numbers are comparable with published ones:

1. Ground truth: ``wider_face_val.mat`` (``event_list``, ``file_list``, ``face_bbx_list`` with
   boxes as x, y, w, h) and ``wider_{easy,medium,hard}_val.mat`` whose ``gt_list`` holds, per image,
   the 1-based indices of the faces that count at that difficulty. Every other face of the image is
   *ignored*: a detection whose best-overlap face is an ignored one is dropped (neither a proposal
   nor a recall).
2. Scores are min-max normalised to [0, 1] over every detection of the set (MATLAB: true min and
   max; the Python port clamps them to [0, 1], identical for scores already in [0, 1]). If every
   score is equal (the official code would divide by zero and score nothing), all become 1.
3. Per image, detections sorted by descending score (as MATLAB's ``read_pred``; the Python port
   assumes the files are sorted) are taken in turn; each looks at the face of highest IoU among
   ALL faces (not only unmatched ones, unlike COCO): IoU >= 0.5 with an ignored face -> dropped;
   with a counting face not yet recalled -> that face is recalled; otherwise (no face, or a face
   already recalled) it stays a proposal that recalls nothing, i.e. a false positive.
   IoU uses the official +1 pixel convention (x2 = x + w, inclusive, width x2 - x1 + 1).
4. For 1000 thresholds t = 1 - k/1000 (k = 1..1000) and each image, the detections with
   score >= t give (proposals, recalled faces); these are summed over the set. Images without
   any face or without any detection are skipped (their faces still count in the denominator;
   detections on a face-less image count nowhere -- the official behaviour).
5. precision = recalled / proposals (0 where there is no proposal, where recall is 0 too so the
   AP is the same as the official NaN), recall = recalled / counting faces; AP is the VOC
   "all points" area under the precision envelope.

Also accepted as ground truth: ``wider_face_val_bbx_gt.txt`` (or a ``wider_face_val.mat`` without
the difficulty files). Then easy/medium/hard cannot be derived: only ``{"all": ap}`` is computed,
where every face counts except those flagged invalid or of zero width/height, which are ignored.

Predictions: the official layout, a folder with one ``<event>/<name>.txt`` per image (line 1 the
image name, line 2 the count, then ``x y w h score`` lines), or the JSON written by
``facedet detect --json`` (boxes x1, y1, x2, y2). Images are matched by file name without
extension; a ground-truth image without prediction has no detection.
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SETTINGS", "THRESHOLDS", "evaluate_wider", "read_ground_truth", "read_predictions", "wider_ap"]

SETTINGS = ("easy", "medium", "hard")
THRESHOLDS = 1000
VAL_MAT = "wider_face_val.mat"
VAL_TXT = "wider_face_val_bbx_gt.txt"


@dataclass
class WiderImage:
    """One ground-truth image: boxes [N, 4] as x, y, w, h and, per setting, 0-based indices of the
    faces that count (the rest are ignored)."""

    event: str
    name: str
    boxes: np.ndarray
    keep: dict[str, np.ndarray] = field(default_factory=dict)


# --- reading the ground truth -------------------------------------------------------------------


def _cells(value) -> list:
    """The elements of a MATLAB cell array as loadmat returns it (an object ndarray of any shape)."""
    array = np.asarray(value)
    return list(array.ravel()) if array.dtype == object else [array]


def _unwrap(value):
    """Peel 1-element object arrays (loadmat's nesting) down to the content."""
    while isinstance(value, np.ndarray) and value.dtype == object:
        if value.size == 0:
            return np.zeros(0)
        value = value.ravel()[0]
    return value


def _string(value) -> str:
    value = _unwrap(value)
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        value = value.ravel()[0]
    return str(value)


def _boxes(value) -> np.ndarray:
    array = np.asarray(_unwrap(value), dtype=np.float64)
    return array.reshape(-1, 4) if array.size else np.zeros((0, 4))


def _indices(value, n_faces: int, where: str) -> np.ndarray:
    array = np.asarray(_unwrap(value), dtype=np.float64).ravel()
    index = array.astype(np.int64) - 1  # MATLAB's 1-based indices
    if array.size and (np.any(array != np.round(array)) or index.min() < 0 or index.max() >= n_faces):
        raise ValueError(f"{where}: gt_list indices {array.tolist()} are not 1..{n_faces}")
    return index


def _load_mat(path: Path) -> dict:
    from scipy.io import loadmat

    return loadmat(str(path))


def _read_val_mat(path: Path) -> list[WiderImage]:
    mat = _load_mat(path)
    events = [_string(e) for e in _cells(mat["event_list"])]
    files, boxes = _cells(mat["file_list"]), _cells(mat["face_bbx_list"])
    if not len(events) == len(files) == len(boxes):
        raise ValueError(f"{path}: {len(events)} events, {len(files)} file lists, {len(boxes)} box lists")
    images = []
    invalid = _cells(mat["invalid_label_list"]) if "invalid_label_list" in mat else None
    for e, event in enumerate(events):
        names, event_boxes = _cells(files[e]), _cells(boxes[e])
        if len(names) != len(event_boxes):
            raise ValueError(f"{path}: event {event}: {len(names)} files but {len(event_boxes)} box lists")
        flags = _cells(invalid[e]) if invalid is not None else [None] * len(names)
        for name, image_boxes, flag in zip(names, event_boxes, flags):
            image = WiderImage(event, Path(_string(name)).stem, _boxes(image_boxes))
            bad = (
                np.zeros(len(image.boxes), dtype=bool)
                if flag is None
                else np.asarray(_unwrap(flag), dtype=np.float64).ravel()[: len(image.boxes)] == 1
            )
            bad = np.pad(bad, (0, len(image.boxes) - len(bad)))
            image.keep["all"] = np.flatnonzero(~bad & (image.boxes[:, 2] > 0) & (image.boxes[:, 3] > 0))
            images.append(image)
    return images


def _add_setting(images: list[WiderImage], path: Path, setting: str) -> None:
    gt_lists = _cells(_load_mat(path)["gt_list"])
    per_event: dict[str, list[WiderImage]] = {}
    for image in images:
        per_event.setdefault(image.event, []).append(image)
    if len(gt_lists) != len(per_event):
        raise ValueError(f"{path}: gt_list has {len(gt_lists)} events, {VAL_MAT} {len(per_event)}")
    for (event, event_images), event_lists in zip(per_event.items(), gt_lists):
        lists = _cells(event_lists)
        if len(lists) != len(event_images):
            raise ValueError(f"{path}: event {event}: {len(lists)} gt lists for {len(event_images)} images")
        for image, keep in zip(event_images, lists):
            image.keep[setting] = _indices(keep, len(image.boxes), f"{path} {event}/{image.name}")


def _read_bbx_txt(path: Path) -> list[WiderImage]:
    """``wider_face_val_bbx_gt.txt``: name, count, then ``x y w h blur expression illumination
    invalid occlusion pose`` per face (an image without face has one all-zero line)."""
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    images, i = [], 0
    while i < len(lines):
        name, count = lines[i], int(lines[i + 1])
        i += 2
        rows = [[float(v) for v in lines[i + k].split()] for k in range(count)]
        i += count
        if count == 0 and i < len(lines) and _is_number_row(lines[i]):
            i += 1  # the all-zero placeholder line
        boxes = np.array([row[:4] for row in rows], dtype=np.float64).reshape(-1, 4)
        invalid = np.array([len(row) > 7 and row[7] == 1 for row in rows], dtype=bool)
        keep = np.flatnonzero(~invalid & (boxes[:, 2] > 0) & (boxes[:, 3] > 0))
        images.append(WiderImage(Path(name).parent.as_posix(), Path(name).stem, boxes, {"all": keep}))
    return images


def _is_number_row(line: str) -> bool:
    try:
        return len([float(v) for v in line.split()]) >= 4
    except ValueError:
        return False


def read_ground_truth(gt: Path) -> tuple[list[WiderImage], tuple[str, ...]]:
    """Ground truth from a folder (or a file) and the settings it supports.

    A folder with ``wider_face_val.mat`` and all three ``wider_{easy,medium,hard}_val.mat`` gives
    ("easy", "medium", "hard"); else ``wider_face_val_bbx_gt.txt`` or ``wider_face_val.mat`` alone
    give ("all",).
    """
    gt = Path(gt)
    if gt.is_file():
        if gt.suffix == ".txt":
            return _read_bbx_txt(gt), ("all",)
        gt_dir = gt.parent
    else:
        gt_dir = gt
    difficulty = [gt_dir / f"wider_{setting}_val.mat" for setting in SETTINGS]
    if (gt_dir / VAL_MAT).is_file() and all(p.is_file() for p in difficulty):
        images = _read_val_mat(gt_dir / VAL_MAT)
        for setting, path in zip(SETTINGS, difficulty):
            _add_setting(images, path, setting)
        return images, SETTINGS
    if (gt_dir / VAL_TXT).is_file():
        return _read_bbx_txt(gt_dir / VAL_TXT), ("all",)
    if (gt_dir / VAL_MAT).is_file():
        return _read_val_mat(gt_dir / VAL_MAT), ("all",)
    raise FileNotFoundError(f"{gt}: no {VAL_MAT} + wider_{{easy,medium,hard}}_val.mat, nor {VAL_TXT}")


# --- reading predictions ------------------------------------------------------------------------


def _read_pred_txt(path: Path) -> np.ndarray:
    lines = [line.strip() for line in path.read_text().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected the image name and the count on the first two lines")
    count = int(float(lines[1]))
    rows = lines[2 : 2 + count]
    if len(rows) < count:
        raise ValueError(f"{path}: {count} boxes announced, {len(rows)} given")
    return np.array([[float(v) for v in row.split()[:5]] for row in rows], dtype=np.float64).reshape(-1, 5)


def read_predictions(path: Path) -> dict[str, np.ndarray]:
    """{image name without extension: [N, 5] x, y, w, h, score} from a folder of official txt files
    or from ``facedet detect --json`` output."""
    path = Path(path)
    found: dict[str, np.ndarray] = {}

    def put(key: str, rows: np.ndarray, where) -> None:
        if key in found:
            raise ValueError(f"{where}: a second prediction for image {key!r}")
        found[key] = rows

    if path.is_dir():
        for txt in sorted(path.rglob("*.txt")):
            put(txt.stem, _read_pred_txt(txt), txt)
    else:
        data = json.loads(path.read_text())
        for image in data["images"]:
            rows = [
                [x1, y1, x2 - x1, y2 - y1, face["score"]] for face in image["faces"] for x1, y1, x2, y2 in [face["box"]]
            ]
            put(Path(image["file"]).stem, np.array(rows, dtype=np.float64).reshape(-1, 5), path)
    return found


# --- the protocol -------------------------------------------------------------------------------


def _overlaps(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU [N, M] of x, y, w, h boxes with the official +1 convention (bbox_overlaps/boxoverlap.m):
    corners (x, y, x + w, y + h) taken as inclusive pixel indices."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4).copy()
    g = np.asarray(gt, dtype=np.float64).reshape(-1, 4).copy()
    p[:, 2:] += p[:, :2]
    g[:, 2:] += g[:, :2]
    iw = np.minimum(p[:, None, 2], g[None, :, 2]) - np.maximum(p[:, None, 0], g[None, :, 0]) + 1
    ih = np.minimum(p[:, None, 3], g[None, :, 3]) - np.maximum(p[:, None, 1], g[None, :, 1]) + 1
    area_p = (p[:, 2] - p[:, 0] + 1) * (p[:, 3] - p[:, 1] + 1)
    area_g = (g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1)
    inter = iw * ih
    union = area_p[:, None] + area_g[None, :] - inter
    valid = (iw > 0) & (ih > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(valid, inter / np.where(valid, union, 1.0), 0.0)


def _image_eval(pred: np.ndarray, gt: np.ndarray, counts: np.ndarray, iou_threshold: float):
    """(pred_recall, proposal) for detections sorted by descending score: faces recalled so far
    after each detection, and whether each detection counts as a proposal."""
    overlaps = _overlaps(pred[:, :4], gt)
    recalled = np.zeros(len(gt), dtype=np.int8)  # 0 not yet, 1 recalled, -1 ignored face hit
    proposal = np.ones(len(pred), dtype=bool)
    pred_recall = np.zeros(len(pred))
    for h in range(len(pred)):
        g = int(np.argmax(overlaps[h]))
        if overlaps[h, g] >= iou_threshold:
            if not counts[g]:
                recalled[g] = -1
                proposal[h] = False
            elif recalled[g] == 0:
                recalled[g] = 1
        pred_recall[h] = np.count_nonzero(recalled == 1)
    return pred_recall, proposal


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC "all points" AP: area under the monotone envelope of precision over recall."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _normalise_scores(predictions: list[np.ndarray]) -> list[np.ndarray]:
    scores = np.concatenate([p[:, 4] for p in predictions]) if predictions else np.zeros(0)
    if not scores.size:
        return predictions
    low, high = float(scores.min()), float(scores.max())
    out = []
    for p in predictions:
        p = p.copy()
        p[:, 4] = (p[:, 4] - low) / (high - low) if high > low else 1.0
        out.append(p)
    return out


def wider_ap(
    images: list[WiderImage], predictions: dict[str, np.ndarray], setting: str, iou_threshold: float = 0.5
) -> float:
    """AP of one setting (a key of ``WiderImage.keep``); nan when no face counts."""
    preds = _normalise_scores([predictions.get(image.name, np.zeros((0, 5))) for image in images])
    thresholds = 1 - np.arange(1, THRESHOLDS + 1) / THRESHOLDS
    proposals, recalled = np.zeros(THRESHOLDS), np.zeros(THRESHOLDS)
    count_face = 0
    for image, pred in zip(images, preds):
        keep = image.keep[setting]
        count_face += len(keep)
        if not len(image.boxes) or not len(pred):
            continue
        pred = pred[np.argsort(-pred[:, 4], kind="stable")]
        counts = np.zeros(len(image.boxes), dtype=bool)
        counts[keep] = True
        pred_recall, proposal = _image_eval(pred, image.boxes, counts, iou_threshold)
        n_kept = np.searchsorted(-pred[:, 4], -thresholds, side="right")  # scores >= threshold
        last = np.maximum(n_kept - 1, 0)
        proposals += np.where(n_kept > 0, np.cumsum(proposal)[last], 0)
        recalled += np.where(n_kept > 0, pred_recall[last], 0)
    if count_face == 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(proposals > 0, recalled / np.where(proposals > 0, proposals, 1), 0.0)
    return voc_ap(recalled / count_face, precision)


def evaluate_wider(gt_dir: Path, predictions: Path, iou_threshold: float = 0.5) -> dict[str, float]:
    """{"easy": ap, "medium": ap, "hard": ap} with the official .mat ground truth, or {"all": ap}
    with ``wider_face_val_bbx_gt.txt`` (see the module docstring)."""
    images, settings = read_ground_truth(Path(gt_dir))
    found = read_predictions(Path(predictions))
    missing = sum(image.name not in found for image in images)
    if images and missing == len(images):
        raise ValueError(f"{predictions}: no prediction for any of the {len(images)} ground-truth images")
    if missing:
        warnings.warn(
            f"{missing} of {len(images)} ground-truth images have no prediction; counted as no detection", stacklevel=2
        )
    return {setting: wider_ap(images, found, setting, iou_threshold) for setting in settings}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="WIDER FACE validation AP (official protocol).")
    parser.add_argument("gt", type=Path, help="folder with the wider_*_val.mat files, or wider_face_val_bbx_gt.txt")
    parser.add_argument("predictions", type=Path, help="folder of <event>/<name>.txt, or facedet detect --json output")
    args = parser.parse_args(argv)
    for setting, ap in evaluate_wider(args.gt, args.predictions).items():
        print(f"{setting:>6} AP: {ap:.4f}")


if __name__ == "__main__":
    main()
