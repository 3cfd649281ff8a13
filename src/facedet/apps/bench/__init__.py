"""``facedet bench``: our models against peer face detectors, on the same images, same thread count.

Per detector (our model files, OpenCV's Haar cascade always, YuNet and dlib's HOG detector when their
packages are installed -- see `facedet.apps.peers`):

- ``ap50`` / ``ap50_95``: COCO AP ([`facedet.evaluation.metrics.detection_metrics`][]) on a labelled
  set -- default the pipeline's test split (``results/labels/test.json``, images in
  ``results/collect/images``); every candidate a detector scores is ranked. ``precision`` /
  ``recall`` at the detector's own threshold (ours: the model's; peers: the library default).
- ``ms_per_frame``: median wall time of one call on one RGB frame resized to 640x480 (everything a
  user pays: colour conversion, resizing, network, NMS), after warm-up, over ``repeats`` calls, the
  detectors taking turns of 10 calls, with torch / OpenCV / ONNX Runtime / OpenMP limited to
  ``threads`` intra-op threads.
- ``params`` and ``size_bytes`` (the model file on disk); peers: known values or None with a note.
- ``fp_nonface``: boxes at the detector's threshold on real non-face pictures shipped in packages
  (scikit-image, scikit-learn). Most of them were also sample backgrounds (random crops, see
  `facedet.apps.sample`); ``fp_nonface_unseen`` counts only the ones the sample never uses.
- ``nme``: landmark NME ([`facedet.evaluation.metrics.landmark_metrics`][]: mean point error over
  sqrt(box area), at the detector's threshold) on the labelled set's faces that have landmarks, for the
  detectors that give landmarks (YuNet, our models with landmarks); ``nme_faces`` faces measured.
- ``faces_found``: faces matched (IoU >= 0.5, at the threshold) on the real portraits shipped in
  packages: skimage's astronaut and camera (profile), matplotlib's Grace Hopper. Their faces ARE
  pasted into the embedded sample, so this says "finds the real, whole picture", not "generalises";
  ``portraits`` has each one's faces found and false boxes (the table shows their sum in brackets).

Outputs ``bench.md`` (the table) and ``bench.json`` under ``out``, and an MLflow run (tag ``bench``)
in the project's experiment when a store is configured.

Modules: `pictures` (what it measures on), `runners` (the detectors, timing),
`measure` (one detector), `run` (a run), `report` (bench.md, MLflow).
"""

from facedet.apps.bench.measure import measure
from facedet.apps.bench.pictures import DEFAULT_PEERS, FRAME, load_truth
from facedet.apps.bench.report import log_mlflow, markdown
from facedet.apps.bench.run import BenchSettings, run_bench
from facedet.apps.bench.runners import TIMING_TURN, Runner, Timing, our_runner, peer_runner, time_ms, timing_problems

__all__ = [
    "BenchSettings",
    "DEFAULT_PEERS",
    "FRAME",
    "Runner",
    "TIMING_TURN",
    "Timing",
    "load_truth",
    "log_mlflow",
    "markdown",
    "measure",
    "our_runner",
    "peer_runner",
    "run_bench",
    "time_ms",
    "timing_problems",
]
