"""Benchmark: small faces in big pictures, where a model scanned once at its scan size loses them.

    python experiments/bench_small_faces.py --images ../corpus/test [--weights bundled] [--threads 2]

Builds big scenes from a labelled set (a LabelMe folder or a COCO file, as `facedet bench --images`):
its face pictures, each scaled so that its tallest face is 24-120 px, six to a scene, pasted at random
places on one of the embedded sample's real backgrounds enlarged to 3200 x 2400 (seed 0; written as a
LabelMe folder to ``--out``). Then our model scanned once (``--max-size 0``), with the default larger
scans (``FaceDetector.scan_sizes``) and up to the scenes' own size, and the peers (YuNet at the
picture's own size, dlib with one upsampling, Haar) on the same scenes: AP@0.5, precision / recall and false boxes at each
detector's threshold, and ms per scene. Use a set the model never trained on (the real-face corpus's
test split: `facedet corpus ../corpus`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from facedet.apps import peers
from facedet.apps.bench.pictures import load_truth
from facedet.apps.sample.pictures import backgrounds
from facedet.evaluation.metrics import detection_metrics
from facedet.inference import DEFAULT_MAX_SIZE
from facedet.inference.detector import FaceDetector

SCENE_W, SCENE_H, PER_SCENE, FACE_PX = 3200, 2400, 6, (24, 120)


def build_scenes(images: Path, out: Path, seed: int = 0) -> Path:
    """The LabelMe folder of scenes (see the module's docstring); returns ``out``."""
    truth, pictures, _ = load_truth(images)
    faces = [(image, picture) for image, picture in zip(truth, pictures) if image.boxes]
    if len(faces) < PER_SCENE:
        raise SystemExit(f"{images}: {len(faces)} pictures with faces; at least {PER_SCENE} are needed")
    rng, scenery = np.random.default_rng(seed), backgrounds()
    out.mkdir(parents=True, exist_ok=True)
    for number in range(len(faces) // PER_SCENE):
        scene = cv2.resize(scenery[number % len(scenery)], (SCENE_W, SCENE_H), interpolation=cv2.INTER_LINEAR)
        shapes, taken = [], []
        for image, picture in faces[number * PER_SCENE : (number + 1) * PER_SCENE]:
            scale = rng.uniform(*FACE_PX) / max(y2 - y1 for _, y1, _, y2 in image.boxes)
            small = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            h, w = small.shape[:2]
            for _ in range(100):  # a free place, else the last one drawn (pictures may then overlap)
                x, y = int(rng.integers(0, SCENE_W - w)), int(rng.integers(0, SCENE_H - h))
                if all(x + w < a or a + c < x or y + h < b or b + d < y for a, b, c, d in taken):
                    break
            taken.append((x, y, w, h))
            scene[y : y + h, x : x + w] = small
            shapes += [
                {
                    "label": "face",
                    "shape_type": "rectangle",
                    "points": [[x + x1 * scale, y + y1 * scale], [x + x2 * scale, y + y2 * scale]],
                    "group_id": None,
                    "flags": {},
                }
                for x1, y1, x2, y2 in image.boxes
            ]
        name = f"scene_{number:02d}"
        cv2.imwrite(str(out / f"{name}.jpg"), scene[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        label = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.jpg", "imageData": None}
        (out / f"{name}.json").write_text(json.dumps(label | {"imageHeight": SCENE_H, "imageWidth": SCENE_W}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="a labelled set the model never trained on")
    parser.add_argument("--weights", default="bundled", help="our model file (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every detector (default 2)")
    parser.add_argument("--out", type=Path, default=Path("results/bench-small-faces"), help="the scenes' folder")
    args = parser.parse_args()

    truth, scenes, _ = load_truth(build_scenes(args.images, args.out))
    detectors = {}
    for label, max_size in (
        ("one scan", None),
        (f"max size {DEFAULT_MAX_SIZE}", DEFAULT_MAX_SIZE),
        ("max size 4096: their own size", 4096),
    ):
        model = FaceDetector.load(args.weights, backend="onnx", threads=args.threads, max_size=max_size)
        detectors[f"facedet ({label})"] = (lambda rgb, m=model: m(rgb, threshold=0.0), model.threshold)
    for name in ("yunet", "dlib", "haar"):
        if peers.missing(name) is None:
            peer = peers.load(name, args.threads)
            detectors[name] = (peer.detect, peer.threshold)

    faces = sum(len(image.boxes) for image in truth)
    print(
        f"{len(scenes)} scenes of {SCENE_W}x{SCENE_H} with {faces} faces of {FACE_PX[0]}-{FACE_PX[1]} px "
        f"from {args.images}; {args.threads} threads\n"
    )
    print("| detector | AP@0.5 | P / R @ thr | false boxes @ thr | ms per scene |\n|---|---|---|---|---|")
    for name, (detect, threshold) in detectors.items():
        found, times = [], []
        for scene in scenes:
            started = time.perf_counter()
            found.append(detect(scene))
            times.append(1000 * (time.perf_counter() - started))
        m = detection_metrics(truth, found, threshold)
        print(
            f"| {name} | {m['ap50']:.3f} | {m['precision']:.2f} / {m['recall']:.2f} @ {threshold:.4g} "
            f"| {int(m['fp'])} | {statistics.median(times):.0f} |"
        )


if __name__ == "__main__":
    main()
