"""The registry of label importers: ``labels.format`` in the config -> the function that reads it.

Every importer has the signature ``(src: Path, report: ProblemReport, **options) -> list[Image]``
and follows the rules of [`facedet.label_formats.formats`][].
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from facedet.coco import Image
from facedet.label_formats.coco_json import import_coco
from facedet.label_formats.fddb import import_fddb
from facedet.label_formats.labelme import import_labelme
from facedet.label_formats.retinaface import import_retinaface
from facedet.label_formats.voc import import_voc
from facedet.label_formats.wider import import_wider
from facedet.label_formats.yolo import import_yolo
from facedet.problems import ProblemReport

Importer = Callable[..., list[Image]]

IMPORTERS: dict[str, Importer] = {
    "labelme": import_labelme,
    "wider": import_wider,
    "retinaface": import_retinaface,
    "fddb": import_fddb,
    "coco": import_coco,
    "yolo": import_yolo,
    "voc": import_voc,
}


def options_of(format: str) -> dict[str, object]:
    """The options a format accepts, with their defaults."""
    if format not in IMPORTERS:
        raise ValueError(f"labels.format: unknown format '{format}'; known: {', '.join(sorted(IMPORTERS))}")
    parameters = list(inspect.signature(IMPORTERS[format]).parameters.values())[2:]
    return {p.name: p.default for p in parameters}


def import_labels(format: str, src: Path, report: ProblemReport, **options) -> list[Image]:
    """The images of the dataset ``src`` in the label format ``format``, sorted by file_name.

    Raises ValueError naming ``labels.format`` for an unknown format, and naming the option
    (``labels.<option>``) for an option the format does not accept.
    """
    accepted = options_of(format)
    for option in options:
        if option not in accepted:
            raise ValueError(
                f"labels.{option}: not an option of the '{format}' format (its options: "
                f"{', '.join(accepted) or 'none'})"
            )
    return IMPORTERS[format](Path(src), report, **options)
