"""What a LabelMe file says: its JSON (read within limits), each shape's box, the landmark points
of each face and the frame the boxes were drawn in (the reading rules of
[`facedet.label_formats.labelme`][])."""

from __future__ import annotations

import json
import math
from pathlib import Path

from facedet.coco import KEYPOINT_NAMES, Landmarks
from facedet.label_formats.formats import BadLabels, Box, Size, accept_landmarks, excerpt, finite, frame
from facedet.label_formats.paths import label_path, read_text
from facedet.problems import ProblemReport


def load_labelme(path: Path | None) -> dict:
    """A LabelMe file's JSON (at most `MAX_LABEL_BYTES`, refused
    before it is read); BadLabels when it is not one, or when it is a link that `scan` refused
    (None: never opened)."""
    try:
        text = read_text(label_path(path))
    except BadLabels as err:
        raise BadLabels(f"not a LabelMe file ({err})" if "UTF-8" in str(err) else str(err)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadLabels(f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # e.g. a 5000-digit number, nesting 100000 deep
        raise BadLabels(f"not usable JSON ({type(err).__name__}: {excerpt(err, 80)})") from None
    if not isinstance(data, dict):
        raise BadLabels(f"not a LabelMe file (the JSON is a {type(data).__name__}, not an object)")
    if "shapes" not in data:
        raise BadLabels("not a LabelMe file (no 'shapes' key)")
    if not isinstance(data["shapes"], list):
        raise BadLabels(f"'shapes' is not a list ({type(data['shapes']).__name__})")
    return data


def shape_points(shape: dict, where: str) -> list[tuple[float, float]]:
    raw = shape.get("points")
    if not isinstance(raw, list):
        raise BadLabels(f"{where}: 'points' is not a list")
    points = []
    for point in raw:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise BadLabels(f"{where}: point {json_excerpt(point)} is not an [x, y] pair")
        if not (finite(point[0]) and finite(point[1])):
            raise BadLabels(f"{where}: point {json_excerpt(point)} has a coordinate that is not a number")
        points.append((float(point[0]), float(point[1])))
    return points


def json_excerpt(value: object) -> str:
    return excerpt(json.dumps(value) if not isinstance(value, tuple) else repr(value))


def _bbox(points: list[tuple[float, float]]) -> Box:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


def shape_box(shape: dict, where: str, json_rel: str, report: ProblemReport) -> Box | None:
    """The box of one face shape, or None (with a warning) for a shape that has no extent."""
    points = shape_points(shape, where)
    kind = shape.get("shape_type") or "polygon"  # LabelMe's own default
    kind = kind.strip().lower() if isinstance(kind, str) else str(kind)
    if kind in ("rectangle", "polygon", "mask"):  # mask: LabelMe stores its box corners
        if not points:
            raise BadLabels(f"{where}: {kind} without points")
        return _bbox(points)
    if kind == "circle":
        if len(points) != 2:
            raise BadLabels(f"{where}: circle needs 2 points (centre, edge), has {len(points)}")
        (cx, cy), (ex, ey) = points
        r = math.hypot(ex - cx, ey - cy)
        return cx - r, cy - r, cx + r, cy + r
    if len(points) >= 3:
        report.warning(json_rel, f"{where}: shape_type '{kind}' used as the box around its points")
        return _bbox(points)
    report.warning(
        json_rel,
        f"{where}: shape_type '{kind}' with {len(points)} point(s) has no box; skipped (this face stays unboxed)",
    )
    return None


def face_landmarks(faces, raw_points, transform, size: Size, json_rel: str, report: ProblemReport, left: str):
    """The five points of each face (None where it has none) from the point shapes (see the module docstring)."""
    if not raw_points:
        return []
    found: list[dict[int, tuple[float, float]]] = [{} for _ in faces]
    twice: set[int] = set()
    for where, index, shape in raw_points:
        try:
            points = shape_points(shape, where)
            if len(points) != 1:
                raise BadLabels(f"{where}: a landmark is one point, this shape has {len(points)}")
        except BadLabels as err:
            report.error(json_rel, f"{err}; landmark left out")
            continue
        x, y = transform((*points[0], *points[0]))[:2]
        group = shape.get("group_id")
        if group is not None:
            owners = [f for f, (_, g, _) in enumerate(faces) if g == group]
            why = f"group_id {json_excerpt(group)}"
        else:
            owners = [f for f, (b, _, _) in enumerate(faces) if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
            why = "no group_id, and it lies inside"
        if len(owners) != 1:
            report.error(
                json_rel,
                f"{where}: landmark belongs to no single face ({why} {len(owners)} face boxes); left out",
            )
            continue
        if index in found[owners[0]]:
            twice.add(owners[0])
        found[owners[0]][index] = (x, y)
    result: list[Landmarks | None] = []
    for f, (box, _, where) in enumerate(faces):
        if f in twice:
            report.error(
                json_rel, f"{where}: a landmark labelled twice on this face; the face is kept without landmarks"
            )
            result.append(None)
            continue
        points = [(*found[f][k], 2) if k in found[f] else (0.0, 0.0, 0) for k in range(len(KEYPOINT_NAMES))]
        result.append(accept_landmarks(points, box, size, left, json_rel, where, report) if found[f] else None)
    return result


def declared_frame(data: dict, json_rel: str, image_rel: str, size: Size, report: ProblemReport):
    """Maps boxes from the frame LabelMe recorded (imageWidth x imageHeight) to the image's."""
    jw, jh = data.get("imageWidth"), data.get("imageHeight")
    if jw is None and jh is None:
        return lambda box: box
    if not (finite(jw) and finite(jh) and jw > 0 and jh > 0):
        report.warning(
            json_rel, f"imageWidth/imageHeight ({json_excerpt(jw)}, {json_excerpt(jh)}) are not sizes; ignored"
        )
        return lambda box: box
    return frame((jw, jh), size, image_rel, json_rel, report, what="imageWidth x imageHeight")
