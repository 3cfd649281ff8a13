"""Where a LabelMe file is and which image it is about (the pairing rules of
[`facedet.label_formats.labelme`][]): beside its image or mirrored under a sibling ``labels/`` folder,
paired through its ``imagePath``, else by file name."""

from __future__ import annotations

import os
import posixpath
from collections import defaultdict
from pathlib import Path

from facedet.label_formats.formats import BadLabels, Outside
from facedet.label_formats.labelme_shapes import load_labelme
from facedet.label_formats.paths import WINDOWS_ABSOLUTE, really_inside, scan


def images_folder_index(parts: tuple[str, ...]) -> int | None:
    """Index of the last folder named ``images`` among parts (folders only), or None."""
    found = [i for i, part in enumerate(parts) if part.lower() == "images"]
    return found[-1] if found else None


def label_candidates(image: Path) -> list[Path]:
    """Where a LabelMe file for this image would be: beside it, and (when it is under a folder named
    images) at the same place under the sibling labels/ folder. The first one that applies to the
    layout comes first."""
    image = Path(os.path.abspath(image))
    beside = image.with_suffix(".json")
    folders = image.parent.parts
    k = images_folder_index(folders)
    if k is None:
        return [beside]
    mirrored = Path(*folders[:k], "labels", *folders[k + 1 :], image.stem + ".json")
    return [mirrored, beside]


def has_label_file(image: Path) -> bool:
    """Whether a LabelMe file for this image sits beside it or in the sibling labels/ folder."""
    return any(p.is_file() for p in label_candidates(image))


def label_files(root: Path) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The LabelMe files under root paired with their images as
    [`facedet.label_formats.labelme.import_folder`][] pairs them.

    Returns (image -> label file, unusable): the first label file of each image, and (image, label
    file, why) for each label file that cannot be used whose image its file name tells (that image
    is in the first too). Paths are POSIX, relative to root. Image files are not opened.
    """
    root = Path(root)
    images, jsons = scan(root, ".json")
    index = ImageIndex(images)
    claimed: dict[str, str] = {}
    unusable: list[tuple[str, str, str]] = []
    for json_rel in sorted(jsons):
        try:
            data = load_labelme(jsons[json_rel])
            image_rel, _ = pair_image(data.get("imagePath"), json_rel, root, index)
        except BadLabels as err:
            image_rel = index.by_stem(posixpath.dirname(json_rel), file_stem(json_rel))
            if image_rel is not None:
                unusable.append((image_rel, json_rel, str(err)))
        if image_rel is not None and (
            image_rel not in claimed or takes_over(root, json_rel, claimed[image_rel], image_rel)
        ):
            claimed[image_rel] = json_rel
    return claimed, unusable


def takes_over(root: Path, json_rel: str, previous: str, image_rel: str) -> bool:
    """Whether ``json_rel`` takes ``image_rel`` from the label file ``previous`` that claimed it
    first: when it is the image's own file (beside it, or mirrored under labels/) and ``previous``
    is not."""
    own = set(label_candidates(root / image_rel))
    return Path(os.path.abspath(root / json_rel)) in own and Path(os.path.abspath(root / previous)) not in own


def file_stem(rel: str) -> str:
    return posixpath.splitext(posixpath.basename(rel))[0]


class ImageIndex:
    """Looks images up by name, for label files whose ``imagePath`` does not lead to one."""

    def __init__(self, images: dict[str, Path]):
        self.images = images
        self._dir_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._stem: dict[str, list[str]] = defaultdict(list)
        for rel in sorted(images):
            self._dir_stem[(posixpath.dirname(rel), file_stem(rel))].append(rel)
            self._stem[file_stem(rel)].append(rel)

    def next_to(self, folder: str, stem: str) -> str | None:
        found = self._dir_stem.get((folder, stem), [])
        return found[0] if len(found) == 1 else None

    def anywhere(self, stem: str) -> str | None:
        found = self._stem.get(stem, [])
        return found[0] if len(found) == 1 else None

    def by_stem(self, folder: str, stem: str) -> str | None:
        return self.next_to(folder, stem) or self.anywhere(stem)


def pair_image(image_path: object, json_rel: str, root: Path, index: ImageIndex) -> tuple[str | None, str]:
    """(image, note): the image a label file is about, or (None, why not).

    The note is a warning to report when the image was found some other way than by imagePath.
    Raises Outside when imagePath leads out of the dataset folder.
    """
    json_dir, stem = posixpath.dirname(json_rel), file_stem(json_rel)
    if image_path is not None and not isinstance(image_path, str):
        raise BadLabels(f"imagePath is not a string ({type(image_path).__name__})")
    written = (image_path or "").replace("\\", "/").strip()
    if not written:
        why = "no imagePath"
    elif WINDOWS_ABSOLUTE.match(written):
        why = f"imagePath '{image_path}' is an absolute Windows path"
    else:
        key = _lexical(written, json_dir, root)
        if key is not None and key in index.images:
            return key, ""  # an image found by the walk: nothing else is ever read
        if key is None or not really_inside(root / key, root):
            raise Outside(f"imagePath '{image_path}' points outside the dataset folder (refused)")
        why = f"imagePath '{image_path}' does not exist"
    found = index.by_stem(json_dir, stem)
    if found is None:
        return None, f"{why}, and no single image named '{stem}.*' was found"
    return found, f"{why}; paired by file name with {found}"


def _lexical(written: str, json_dir: str, root: Path) -> str | None:
    """imagePath as a normalised POSIX path relative to root, or None if it leads out of root."""
    if written.startswith("/"):
        for base in (str(root), os.path.realpath(root)):
            if written == base or written.startswith(base.rstrip("/") + "/"):
                written = written[len(base) :].lstrip("/") or "."
                break
        else:
            return None
        key = posixpath.normpath(written)
    else:
        key = posixpath.normpath(posixpath.join(json_dir, written))
    return None if key == ".." or key.startswith("../") else key
