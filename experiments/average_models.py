"""Average the weights of models trained from one start with different seeds (a uniform "model soup").

    python experiments/average_models.py OUT.safetensors A.safetensors B.safetensors ... \
        --val results/labels/val.json --test results/labels/test.json --images results/collect/images

The bundled model's last step (docs/bundled-model.md): several seeds of one fine-tune, on one
split (`split.seed`), averaged weight by weight (batch-norm statistics included), so that no seed is
picked by luck. The average's score threshold is chosen again as the train stage chooses one (best F1
on the validation split, which none of the models trained on); OUT gets its ONNX export beside it
and, with --test, OUT's name with .metrics.json: the evaluate stage's detection and landmark metrics
on the test split (what experiments/bundle_model.py --metrics puts in the model card).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facedet.inference.onnx import export_onnx
from facedet.model import weights
from facedet.pipeline.evaluate import split_metrics
from facedet.training.publish import split_predictions, validation_threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the averaged model file to write (.safetensors)")
    parser.add_argument("models", type=Path, nargs="+", help="model files of one network config")
    parser.add_argument("--val", type=Path, required=True, help="validation split (COCO JSON) none of them trained on")
    parser.add_argument("--test", type=Path, help="test split (COCO JSON) to measure the average on")
    parser.add_argument("--images", type=Path, required=True, help="folder its file names are relative to")
    parser.add_argument(
        "--iou", type=float, default=0.5, help="IoU that makes a detection right (evaluate.iou_threshold)"
    )
    args = parser.parse_args()
    net, metadata = weights.average(args.models)
    threshold, f1 = validation_threshold(net, args.val, args.images, args.iou)
    weights.save(net, metadata["model"], args.out, threshold=threshold, averaged=[p.name for p in args.models])
    difference = export_onnx(args.out, args.out.with_suffix(".onnx"))
    if args.test:
        truth, predictions = split_predictions(net, args.test, args.images)
        metrics = split_metrics(truth, predictions, threshold, args.iou) | {"val_f1": round(f1, 4)}
        args.out.with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"test split: AP@0.5 {metrics['ap50']}, recall {metrics['recall']}, false boxes {metrics['fp']}")
    print(
        f"{args.out}: {len(args.models)} models averaged; threshold {threshold} (validation F1 {f1:.4f}; theirs "
        f"{', '.join(str(weights.read_metadata(p).get('threshold')) for p in args.models)}); ONNX export beside it "
        f"(max abs difference {difference:.2g})"
    )


if __name__ == "__main__":
    main()
