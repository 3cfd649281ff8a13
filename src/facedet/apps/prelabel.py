"""Propose face boxes as LabelMe files, to correct in labelme instead of drawing every box by hand.

`prelabel` runs a detector (a facedet model, or OpenCV's Haar cascade as a peer that needs no
training) on every image of a folder (recursive) that has no LabelMe file yet, and writes a LabelMe
5.4.1 JSON with one ``face`` rectangle per proposed face (``imagePath`` relative to the JSON,
``imageData`` null, ``imageWidth``/``imageHeight`` after EXIF orientation, as labelme shows the
image) and, when the detector gives them (YuNet, a facedet model with landmarks), its five landmark
points tied to the rectangle by a ``group_id`` ([`facedet.label_formats.labelme`][]; image-left first).

Where the file goes, and what counts as "has a LabelMe file already":

- The images/ + labels/ layout (the folder is named ``images``, has ``images`` folders below it,
  or is inside an ``images`` folder that has a ``labels`` folder beside it): ``.../images/a/x.jpg``
  -> ``.../labels/a/x.json`` (what ``labelme data/images --output data/labels`` reads). Otherwise
  beside the image: ``a/x.jpg`` -> ``a/x.json``.
- An image is labelled when a label file of its dataset pairs with it by the importer's rules
  ([`facedet.label_formats.labelme`][]: ``imagePath``, else the file name); a label file that cannot be
  read counts too (its image is reported, for you to fix the file). Nothing is ever overwritten:
  an existing file at the target path is left alone and reported.
- An image with no face proposed gets no file (it stays a negative, as before; run again with a
  lower threshold, or draw the box in labelme).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facedet.boxes import Box, clip_box
from facedet.images import IMAGE_EXTENSIONS, ImageError, list_images, read_rgb
from facedet.label_formats.labelme import landmark_points, rectangle, write_labelme
from facedet.label_formats.labelme_pairing import images_folder_index

# (box, score, five (x, y) landmarks or None) per proposed face
Proposer = Callable[[np.ndarray], list[tuple[Box, float, tuple | None]]]


# --- where label files are -------------------------------------------------------------------------


def dataset_root(folder: Path) -> Path:
    """The folder whose label files can label the images of ``folder``: the parent of an ``images``
    folder (``folder`` itself, or one above it with a ``labels`` folder beside it), else ``folder``."""
    folder = Path(os.path.abspath(folder))
    if folder.name.lower() == "images":
        return folder.parent
    for above in folder.parents:
        if above.name.lower() == "images" and (above.parent / "labels").is_dir():
            return above.parent
    return folder


def target_for(image: Path, root: Path) -> Path:
    """The LabelMe file to write for ``image`` of the dataset at ``root`` (see the module doc)."""
    image, root = Path(os.path.abspath(image)), Path(os.path.abspath(root))
    folders = image.parent.relative_to(root).parts
    k = images_folder_index(folders)
    if k is None:
        return image.with_suffix(".json")
    return root.joinpath(*folders[:k], "labels", *folders[k + 1 :], image.stem + ".json")


def labelled_images(root: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(image -> label file, problems) for the LabelMe files under root, paired as the importer
    pairs them; paths relative to root (POSIX)."""
    from facedet.label_formats.labelme_pairing import label_files

    claimed, unusable = label_files(root)
    problems = [
        (image_rel, f"not prelabelled: its label file {json_rel} cannot be used ({why}); fix or delete it")
        for image_rel, json_rel, why in unusable
    ]
    return claimed, problems


# --- proposers -------------------------------------------------------------------------------------


def peer_proposer(name: str, threshold: float | None = None) -> Proposer:
    """A peer detector of `facedet.apps.peers` (``haar``, ``yunet``, ``dlib``: the same ones
    ``facedet bench`` runs), its score in [0, 1]; ``threshold`` defaults to the peer's own (Haar 0:
    every box it keeps, YuNet 0.5, dlib 0.5 = SVM score 0). ValueError when the peer's package is
    not installed."""
    from facedet.apps import peers

    peer = peers.load(name)
    minimum = peer.threshold if threshold is None else threshold

    def propose(rgb: np.ndarray) -> list[tuple[Box, float, tuple | None]]:
        return [(tuple(float(v) for v in d.box), float(d.score), d.landmarks) for d in peer(rgb) if d.score >= minimum]

    return propose


def model_proposer(weights: Path | str, threshold: float | None = None) -> Proposer:
    """A facedet model file (``FaceDetector.load``); ``threshold`` defaults to the model's."""
    from facedet.inference.detector import FaceDetector

    detector = FaceDetector.load(weights, threshold=threshold)

    def propose(rgb: np.ndarray) -> list[tuple[Box, float, tuple | None]]:
        return [(tuple(float(v) for v in face.box), float(face.score), face.landmarks) for face in detector(rgb)]

    return propose


# --- writing ---------------------------------------------------------------------------------------


@dataclass
class Summary:
    written: list[Path] = field(default_factory=list)
    faces: int = 0
    labelled: int = 0  # skipped: a label file pairs with the image already
    exists: int = 0  # skipped: the target file exists (never overwritten)
    no_face: int = 0  # nothing proposed: no file written
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, why), unreadable images etc.

    def line(self) -> str:
        return (
            f"{len(self.written)} LabelMe files written ({self.faces} faces proposed); skipped: "
            f"{self.labelled} already labelled, {self.exists} with an existing file at the target "
            f"(not overwritten), {self.no_face} with no face proposed (no file), "
            f"{len(self.problems)} problems"
        )


def prelabel(folder: Path, propose: Proposer, label: str = "face", progress: bool = True) -> Summary:
    """Write proposals for the images of ``folder`` that have no LabelMe file (see the module doc)."""
    from rich.console import Console
    from rich.progress import track

    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of images")
    root = dataset_root(folder)
    claimed, problems = labelled_images(root)
    summary = Summary(problems=list(problems))
    unreadable_labels = {image for image, _ in problems}
    images = list_images(folder)
    for image in track(
        images, description="prelabel", transient=True, disable=not progress, console=Console(stderr=True)
    ):
        rel = image.relative_to(root).as_posix()
        if rel in unreadable_labels:
            continue
        if rel in claimed:
            summary.labelled += 1
            continue
        target = target_for(image, root)
        if target.exists():
            summary.exists += 1
            continue
        try:
            rgb = read_rgb(image)
        except (ImageError, OSError) as err:
            summary.problems.append((rel, f"not prelabelled: {err}"))
            continue
        faces = propose(rgb)
        if not faces:
            summary.no_face += 1
            continue
        height, width = rgb.shape[:2]
        boxes = [clip_box(box, width, height) for box, *_ in faces]
        shapes = []
        for group, (box, face) in enumerate(zip(boxes, faces), start=1):
            marks = face[2] if len(face) > 2 and face[2] is not None else ()
            # a point outside the picture (a face at its border) is left for the person to place
            points = [(x, y, 2) if 0 <= x <= width and 0 <= y <= height else (0.0, 0.0, 0) for x, y in marks]
            shapes.append(rectangle(label, box, group if points else None))
            shapes += landmark_points(points, group) if points else []
        try:
            write_labelme(target, image, shapes, width, height, overwrite=False)
        except FileExistsError:
            summary.exists += 1
            continue
        summary.written.append(target)
        summary.faces += len(boxes)
    return summary


__all__ = [
    "IMAGE_EXTENSIONS",
    "Summary",
    "dataset_root",
    "labelled_images",
    "model_proposer",
    "peer_proposer",
    "prelabel",
    "target_for",
]
