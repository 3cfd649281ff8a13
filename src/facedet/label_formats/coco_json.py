"""Import a COCO detection file (https://cocodataset.org/#format-data) and its images folder.

``images[].file_name`` is relative to the images folder; ``annotations[].bbox`` is
``[x, y, width, height]`` in pixels (0-based, continuous), so the box is (x, y, x + w, y + h).

Conventions:

- Only images listed in the file are imported; a listed image without a kept annotation is a
  negative.
- ``categories``: the category names that mean face (case-insensitive); annotations of other
  categories are ignored (logged). If the file has none of those names, that is a configuration
  mistake and raises ValueError (importing every image as a negative would be silently wrong).
- ``iscrowd: 1`` becomes an ignore region.
- An annotation without ``bbox`` uses the bounding box of its ``segmentation`` polygons.
- A ``file_name`` leading outside the images folder is refused (error), the file is never opened.
- An annotation that cannot be read (bad bbox, unknown image_id) is an error: its image is
  dropped (its faces are unknown). ``width``/``height`` that differ from the real image's: see
  [`facedet.label_formats.formats.frame`][].
- ``keypoints`` (``[x, y, v] x 5``) on a face annotation are its landmarks, in the order the face
  category's ``keypoints`` names give (facedet's names, or LabelMe's spellings; without names, facedet's
  order), "left" meaning ``left`` ("image" or "person"). Malformed keypoints drop the landmarks, not
  the face (error). A face without keypoints (or ``num_keypoints`` 0) simply has no landmarks.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from facedet.coco import NUM_KEYPOINTS, Image
from facedet.label_formats.formats import (
    BadLabels,
    Size,
    accept_box,
    accept_landmarks,
    excerpt,
    finite,
    frame,
    left_option,
    names_option,
    sorted_images,
)
from facedet.label_formats.paths import (
    MAX_DATASET_FILE_BYTES,
    Sizes,
    dataset_root,
    display_path,
    folder_inside,
    option_path,
    read_text,
    resolve_image,
)
from facedet.problems import ProblemReport

log = logging.getLogger(__name__)


def import_coco(
    src: Path,
    report: ProblemReport,
    *,
    annotations: Path | str | None = None,
    images: Path | str | None = None,
    categories: list[str] = ("face",),
    left: str = "image",
) -> list[Image]:
    """The images of a COCO detection file with their faces (and crowd regions as ignore).

    ``annotations``: the JSON file (default: the only ``*.json`` in ``src/annotations`` or in
    ``src``). ``images``: the folder file names are relative to (default ``src/images`` if it
    exists, else ``src``). Relative paths are relative to src.
    """
    root = dataset_root(src)
    wanted = names_option(categories, "categories")
    left = left_option(left)
    ann_path = _annotation_file(root, annotations)
    default_images = "images" if (root / "images").is_dir() else "."
    base = folder_inside(root, option_path(root, images, default_images), "images")
    name = display_path(root, ann_path)
    try:
        data = json.loads(read_text(ann_path, limit=MAX_DATASET_FILE_BYTES))
    except (ValueError, RecursionError) as err:  # BadLabels too
        report.error(name, f"annotation file unreadable ({type(err).__name__}: {excerpt(err, 80)}); nothing imported")
        return []
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        report.error(name, "not a COCO file (no 'images' list); nothing imported")
        return []

    face_ids, other_names = _categories(data, wanted, name)
    order = _keypoint_order(data, face_ids, name, report)
    listed = _listed_images(data["images"], root, base, name, report)
    annotations_list = data.get("annotations", [])
    if not isinstance(annotations_list, list):
        report.error(name, "'annotations' is not a list; every image dropped (faces unknown)")
        return []
    found, dropped = _face_annotations(annotations_list, listed, face_ids, other_names, name, report)
    for rel, image in listed.images.items():
        if rel in dropped or not found[rel]:
            continue
        try:
            _add_faces(image, found[rel], listed.declared[rel], listed.sizes[rel], order, left, name, report)
        except BadLabels as err:
            dropped.add(rel)
            report.error(name, f"{err}; image {rel} set aside (its faces are unknown)")
    return sorted_images({rel: image for rel, image in listed.images.items() if rel not in dropped})


@dataclass
class _Listed:
    """The usable images of a COCO file's ``images`` list, by path relative to the dataset folder."""

    by_id: dict[object, str | None] = field(default_factory=dict)  # image id -> path (None: refused)
    declared: dict[str, tuple[object, object]] = field(default_factory=dict)  # path -> (width, height) in the file
    images: dict[str, Image] = field(default_factory=dict)
    sizes: dict[str, Size] = field(default_factory=dict)  # path -> the real image's size


def _listed_images(entries: list, root: Path, base: str, name: str, report: ProblemReport) -> _Listed:
    listed = _Listed()
    sizes = Sizes(root, report)
    for k, entry in enumerate(entries):
        where = f"images[{k}]"
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("file_name"), str):
            report.error(name, f"{where}: not an image entry with 'id' and 'file_name'; ignored")
            continue
        try:
            rel = resolve_image(root, base, entry["file_name"])
        except BadLabels as err:
            report.error(name, f"{where}: {err}; image dropped")
            listed.by_id[_key(entry["id"])] = None
            continue
        if rel in listed.declared:
            report.warning(name, f"{where}: {rel} is listed again (id {entry['id']}); its annotations are merged")
        listed.by_id[_key(entry["id"])] = rel
        listed.declared.setdefault(rel, (entry.get("width"), entry.get("height")))
        size = sizes.get(rel, name)
        if size is not None and rel not in listed.images:
            listed.images[rel] = Image(rel, size.width, size.height)
            listed.sizes[rel] = size
    return listed


def _face_annotations(
    annotations: list, listed: _Listed, face_ids: set, other_names: dict, name: str, report: ProblemReport
) -> tuple[dict[str, list[tuple]], set[str]]:
    """(image -> its face annotations as (where, crowd, box, keypoints or None), images dropped
    because an annotation of theirs cannot be read)."""
    found: dict[str, list[tuple]] = defaultdict(list)
    dropped: set[str] = set()
    ignored: Counter = Counter()
    for k, ann in enumerate(annotations):
        where = f"annotations[{k}]"
        if not isinstance(ann, dict):
            report.error(name, f"{where}: not an object; ignored")
            continue
        category = _key(ann.get("category_id"))
        if category not in face_ids:
            ignored[other_names.get(category, f"category_id {category}")] += 1
            continue
        image_id = _key(ann.get("image_id"))
        if image_id not in listed.by_id:
            report.error(name, f"{where}: image_id {ann.get('image_id')!r} is not in 'images'; ignored")
            continue
        rel = listed.by_id[image_id]
        if rel is None or rel not in listed.images:
            continue  # a refused or unreadable image, already reported
        try:
            box = _bbox(ann)
        except BadLabels as err:
            dropped.add(rel)
            report.error(name, f"{where}: {err}; image {rel} dropped (its faces are unknown)")
            continue
        found[rel].append(
            (where, bool(ann.get("iscrowd")), box, ann.get("keypoints") if ann.get("num_keypoints", 1) else None)
        )
    if ignored:
        log.info("coco: ignored annotations of other categories: %s", dict(sorted(ignored.items())))
    return found, dropped


def _add_faces(
    image: Image,
    annotations: list[tuple],
    declared: tuple[object, object],
    size: Size,
    order: list[int] | None,
    left: str,
    name: str,
    report: ProblemReport,
) -> None:
    """An image's face boxes (with landmarks) and crowd regions; BadLabels for a box that cannot be used."""
    rel = image.file_name
    transform = frame(declared, size, rel, name, report)
    for where, crowd, box, keypoints in annotations:
        box = accept_box(transform(box), size, rel, name, where, report)
        if crowd:
            image.ignore.append(box)
            continue
        image.boxes.append(box)
        points = _points(keypoints, order, transform) if keypoints is not None else None
        image.landmarks.append(accept_landmarks(points, box, size, left, name, where, report) if points else None)
    if not any(image.landmarks):
        image.landmarks = []


def _keypoint_order(data: dict, face_ids: set, name: str, report: ProblemReport) -> list[int] | None:
    """Where each of facedet's five points sits in an annotation's keypoints, from the face category's
    keypoint names; None (facedet's order) when it names none."""
    from facedet.label_formats.labelme import LANDMARK_LABELS

    for cat in data.get("categories", []):
        if not isinstance(cat, dict) or _key(cat.get("id")) not in face_ids or not cat.get("keypoints"):
            continue
        names = [str(n).strip().lower() for n in cat["keypoints"]] if isinstance(cat["keypoints"], list) else []
        order = [next((i for i, n in enumerate(names) if LANDMARK_LABELS.get(n) == k), None) for k in range(5)]
        if None in order:
            report.warning(
                name, f"categories: keypoint names {excerpt(names, 80)} are not facedet's five; read in facedet's order"
            )
            return None
        return order
    return None


def _points(values: object, order: list[int] | None, transform) -> list | None:
    """An annotation's keypoints as five (x, y, v) in facedet's order and the image's pixels; the raw
    values where they are not a flat list of triples ([`accept_landmarks`][facedet.label_formats.formats.accept_landmarks] names the problem)."""
    if not isinstance(values, list) or len(values) % 3 or len(values) < 3 * NUM_KEYPOINTS:
        return list(values) if isinstance(values, list) and values else [None]
    triples = [values[i : i + 3] for i in range(0, len(values), 3)]
    chosen = [triples[i] for i in order] if order else triples
    points = []
    for x, y, v in chosen:
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and v:
            x, y = transform((x, y, x, y))[:2]
        points.append((x, y, v))
    return points


def _key(value: object) -> object:
    """Ids compare by value: 7, 7.0 and "7" are one id (hand-written files mix them)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, dict)):
        return repr(value)  # unhashable: never a real id
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _annotation_file(root: Path, annotations) -> Path:
    if annotations is not None:
        path = option_path(root, annotations, "")
        if not path.is_file():
            raise FileNotFoundError(f"annotations: {path} is not a file")
        return path
    for folder in (root / "annotations", root):
        found = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"annotations: several JSON files in {folder}; say which one")
    raise FileNotFoundError(f"annotations: no COCO JSON file in {root / 'annotations'} or {root}")


def _categories(data: dict, wanted: set[str], name: str) -> tuple[set, dict]:
    cats = data.get("categories")
    if not isinstance(cats, list):
        raise ValueError(f"categories: {name} has no 'categories' list")
    face_ids, others, seen = set(), {}, []
    for cat in cats:
        if not isinstance(cat, dict) or "id" not in cat:
            continue
        cat_name = str(cat.get("name", "")).strip()
        seen.append(cat_name)
        if cat_name.lower() in wanted:
            face_ids.add(_key(cat["id"]))
        else:
            others[_key(cat["id"])] = cat_name
    if not face_ids:
        raise ValueError(
            f"categories: none of {sorted(wanted)} is a category of {name} "
            f"(its categories: {', '.join(seen) or 'none'})"
        )
    return face_ids, others


def _bbox(ann: dict) -> tuple[float, float, float, float]:
    bbox = ann.get("bbox")
    if bbox is None:
        polygons = ann.get("segmentation")
        if (
            isinstance(polygons, list)
            and polygons
            and all(
                isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(finite(v) for v in p) for p in polygons
            )
        ):
            xs = [v for p in polygons for v in p[0::2]]
            ys = [v for p in polygons for v in p[1::2]]
            return min(xs), min(ys), max(xs), max(ys)
        raise BadLabels("no 'bbox' (and no polygon segmentation)")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(finite(v) for v in bbox):
        raise BadLabels(f"bbox {excerpt(bbox)} is not [x, y, width, height] numbers")
    x, y, w, h = (float(v) for v in bbox)
    return x, y, x + w, y + h
