"""Import Pascal VOC XML annotations (as written by labelImg, CVAT, Roboflow ...).

Layouts: ``Annotations/x.xml`` + ``JPEGImages/x.jpg`` (the VOC devkit), or ``x.xml`` next to
``x.jpg``. An XML file names its image in ``<filename>`` (relative to the images folder); when
that is missing or names no file, the image with the XML's name is used (warning). ``<path>``
(an absolute path on the annotator's machine) is not used.

Each ``<object>`` whose ``<name>`` is one of ``names`` (case-insensitive) is a face with
``<bndbox><xmin><ymin><xmax><ymax>``. VOC coordinates are 1-based pixel indices, inclusive: a box
over the whole W x H image is xmin=1, ymin=1, xmax=W, ymax=H. They are converted to facedet's
0-based continuous pixels by subtracting 1 from xmin and ymin and keeping xmax and ymax, so that
box becomes (0, 0, W, H). ``one_based=False`` reads files whose writer used 0-based values.
``<difficult>1</difficult>`` makes the face an ignore region.

Conventions:

- Every image under ``src`` is imported; an image without an XML file is a negative.
- XML with a DOCTYPE or ENTITY declaration is refused before parsing (entity expansion attacks
  such as "billion laughs", external entities); the file and its image are dropped (error).
- A ``<filename>`` leading outside the images folder is refused (error); nothing there is opened.
- An XML file that cannot be read (not XML, a bndbox without numbers) is dropped, with its image.
- ``<size>`` that differs from the real image: see [`facedet.label_formats.formats.frame`][].
"""

from __future__ import annotations

import logging
import posixpath
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from facedet.coco import Image
from facedet.images import IMAGE_EXTENSIONS
from facedet.label_formats.formats import (
    BadLabels,
    Outside,
    Size,
    accept_box,
    frame,
    names_option,
    parse_float,
    sorted_images,
)
from facedet.label_formats.paths import (
    dataset_root,
    folder_really_inside,
    image_size,
    label_path,
    read_text,
    resolve_image,
    scan,
)
from facedet.problems import ProblemReport

log = logging.getLogger(__name__)

_DANGEROUS = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def import_voc(
    src: Path, report: ProblemReport, *, names: list[str] = ("face",), one_based: bool = True
) -> list[Image]:
    """Every image under src with the faces of its VOC XML file (ignore regions for difficult)."""
    root = dataset_root(src)
    wanted = names_option(names, "names")
    image_paths, xml_paths = scan(root, ".xml", report)
    state = _State(root, image_paths, wanted, 1.0 if one_based else 0.0, report)
    for xml_rel in sorted(xml_paths):
        state.import_label_file(xml_rel, xml_paths[xml_rel])
    if state.ignored:
        log.info("voc: ignored objects with other names: %s", dict(sorted(state.ignored.items())))
        if not any(i.boxes or i.ignore for i in state.found.values()):
            report.warning(
                str(src),
                f"no object named {sorted(wanted)} in any XML file (names seen: "
                f"{', '.join(sorted(state.ignored))}); check the names option",
            )
    return sorted_images(state.images())


@dataclass
class _State:
    """One import: what is known so far about the images, filled in one XML file at a time."""

    root: Path
    image_paths: dict[str, Path]
    wanted: set[str]
    offset: float  # subtracted from xmin and ymin: 1 for VOC's 1-based pixel indices
    report: ProblemReport
    sizes: dict[str, Size | None] = field(default_factory=dict)
    claimed: dict[str, str] = field(default_factory=dict)  # image -> the XML file that claimed it
    dropped: set[str] = field(default_factory=set)  # images whose faces are unknown
    found: dict[str, Image] = field(default_factory=dict)  # images with their faces
    ignored: Counter = field(default_factory=Counter)  # objects with other names, by name

    def size_of(self, rel: str) -> Size | None:
        if rel not in self.sizes:
            try:
                self.sizes[rel] = image_size(self.image_paths[rel])
            except BadLabels as err:
                self.sizes[rel] = None
                self.report.error(rel, f"image dropped: {err}")
        return self.sizes[rel]

    def import_label_file(self, xml_rel: str, path: Path | None) -> None:
        paired = self._read(xml_rel, path)
        if paired is None:
            return
        tree, image_rel, guess, note = paired
        if not self._claim(xml_rel, image_rel, guess):
            return
        if note:
            self.report.warning(xml_rel, note)
        size = self.size_of(image_rel)
        if size is None:
            return
        try:
            self.found[image_rel] = _objects(
                tree, image_rel, xml_rel, size, self.wanted, self.offset, self.ignored, self.report
            )
        except BadLabels as err:
            self.dropped.add(image_rel)
            self.report.error(
                xml_rel, f"label file dropped: {err}; its image {image_rel} is dropped too (its faces are unknown)"
            )
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the import
            log.exception("voc: unexpected failure on %s", xml_rel)
            self.dropped.add(image_rel)
            self.report.error(
                xml_rel,
                f"label file dropped: unexpected failure ({type(err).__name__}: {err}); "
                f"its image {image_rel} is dropped too",
            )

    def _read(self, xml_rel: str, path: Path | None) -> tuple[ET.Element, str, str | None, str] | None:
        """(the XML tree, its image, the image its file name tells, how they were paired when not
        by ``<filename>``) or None (reported)."""
        base = _images_folder(self.root, xml_rel)
        guess = _by_stem(self.image_paths, base, xml_rel)
        try:
            path = label_path(path)  # a refused link: BadLabels, never opened
            if not folder_really_inside(path, self.root):
                raise BadLabels("its folder leads outside the dataset folder through a link (refused)")
            tree = _parse(read_text(path, limit=10_000_000))
            if tree.tag != "annotation":
                raise BadLabels(f"not a VOC file (root element <{tree.tag}>, not <annotation>)")
            image_rel, note = _pair(self.root, self.image_paths, base, xml_rel, tree, guess)
        except Outside as err:
            self.report.error(xml_rel, f"label file dropped: {err}")
            return None
        except BadLabels as err:
            message = f"label file dropped: {err}"
            if guess is not None and guess not in self.claimed:
                message += f"; its image {guess} is dropped too (its faces are unknown)"
                self.dropped.add(guess)
                self.claimed[guess] = xml_rel
            self.report.error(xml_rel, message)
            return None
        if image_rel is None:
            self.report.error(xml_rel, f"label file dropped: {note}")
            return None
        return tree, image_rel, guess, note

    def _claim(self, xml_rel: str, image_rel: str, guess: str | None) -> bool:
        """Whether the XML file labels its image: the first one does, unless a later one is the image's own."""
        if image_rel in self.claimed:
            previous = self.claimed[image_rel]
            own = _by_stem(self.image_paths, _images_folder(self.root, previous), previous)
            if guess != image_rel or own == image_rel:
                self.report.error(xml_rel, f"label file ignored: {image_rel} is already labelled by {previous}")
                return False
            self.report.error(previous, f"label file ignored: {image_rel} is labelled by its own file {xml_rel}")
            self.found.pop(image_rel, None)
            self.dropped.discard(image_rel)
        self.claimed[image_rel] = xml_rel
        return True

    def images(self) -> dict[str, Image]:
        """Every image not dropped: with its faces, or a negative."""
        result: dict[str, Image] = {}
        for rel in sorted(self.image_paths):
            if rel in self.dropped:
                continue
            if rel in self.found:
                result[rel] = self.found[rel]
            elif (size := self.size_of(rel)) is not None:
                result[rel] = Image(rel, size.width, size.height)
        return result


def _parse(text: str) -> ET.Element:
    """Parse XML that has no DOCTYPE or ENTITY declaration (refused before the parser sees it)."""
    if _DANGEROUS.search(text):
        raise BadLabels("XML with a DOCTYPE or ENTITY declaration refused (entity expansion attack?)")
    try:
        return ET.fromstring(text)
    except ET.ParseError as err:
        raise BadLabels(f"not valid XML ({err})") from None


def _images_folder(root: Path, xml_rel: str) -> str:
    """JPEGImages next to an Annotations folder (when it exists), else the XML's own folder."""
    folder = posixpath.dirname(xml_rel)
    if posixpath.basename(folder) == "Annotations":
        sibling = posixpath.join(posixpath.dirname(folder), "JPEGImages")
        if (root / sibling).is_dir():
            return sibling
    return folder


def _by_stem(image_paths: dict[str, Path], base: str, xml_rel: str) -> str | None:
    stem = posixpath.splitext(posixpath.basename(xml_rel))[0]
    found = [
        rel
        for rel in image_paths
        if posixpath.dirname(rel) == base and posixpath.splitext(posixpath.basename(rel))[0] == stem
    ]
    return sorted(found)[0] if len(found) == 1 else None


def _pair(
    root: Path, image_paths: dict[str, Path], base: str, xml_rel: str, tree: ET.Element, guess: str | None
) -> tuple[str | None, str]:
    """(image, warning) for an XML file, or (None, why not); Outside for a refused filename."""
    written = (tree.findtext("filename") or "").strip()
    if written:
        key = resolve_image(root, base, written)  # raises Outside before anything is opened
        if key in image_paths:
            return key, ""
        if not posixpath.splitext(key)[1]:  # "000001" without extension
            for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
                if key + ext in image_paths:
                    return key + ext, ""
        why = f"<filename> '{written}' does not exist"
    else:
        if guess is not None:
            return guess, ""
        why = "no <filename>"
    if guess is None:
        return None, f"{why}, and no single image with the XML file's name in {base or '.'}"
    return guess, f"{why}; paired by file name with {guess}"


def _number(element: ET.Element, tag: str, where: str) -> float:
    text = element.findtext(tag)
    if text is None:
        raise BadLabels(f"{where}: <{tag}> missing")
    try:
        return parse_float(text.strip())
    except BadLabels as err:
        raise BadLabels(f"{where}: <{tag}> {err}") from None


def _objects(
    tree: ET.Element,
    image_rel: str,
    xml_rel: str,
    size: Size,
    wanted: set[str],
    offset: float,
    ignored: Counter,
    report: ProblemReport,
) -> Image:
    raw = []
    for k, obj in enumerate(tree.findall("object")):
        name = (obj.findtext("name") or "").strip()
        where = f"object {k} ('{name}')"
        if name.lower() not in wanted:
            ignored[name] += 1
            continue
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise BadLabels(f"{where}: no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(bndbox, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
        difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true", "True")
        raw.append((where, difficult, (xmin - offset, ymin - offset, xmax, ymax)))
    image = Image(image_rel, size.width, size.height)
    if not raw:
        return image
    declared = tree.find("size")
    dims = (None, None)
    if declared is not None:
        try:
            dims = (parse_float(declared.findtext("width") or ""), parse_float(declared.findtext("height") or ""))
        except BadLabels:
            pass
    transform = frame(dims, size, image_rel, xml_rel, report)
    for where, difficult, box in raw:
        (image.ignore if difficult else image.boxes).append(
            accept_box(transform(box), size, image_rel, xml_rel, where, report)
        )
    return image
