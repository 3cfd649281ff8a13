"""Copy the pipeline's model into the package as the bundled default, with its model card.

    python experiments/bundle_model.py

Run after `make run` on the embedded sample: writes src/facedet/bundled/default.safetensors and
src/facedet/bundled/MODEL_CARD.md (data hash, config, test metrics, MLflow run), so `facedet detect`
works right after install, before any training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from facedet.model import weights

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "src/facedet/bundled"


def main() -> None:
    model = ROOT / "results/train/model.safetensors"
    metadata = weights.read_metadata(model)
    metrics = json.loads((ROOT / "results/evaluate/metrics.json").read_text())
    data = yaml.safe_load((ROOT / "data.dvc").read_text())["outs"][0]
    BUNDLED.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, BUNDLED / "default.safetensors")
    net, _ = weights.load(model)
    parameters = sum(p.numel() for p in net.parameters())
    rows = "\n".join(f"| {key} | {value} |" for key, value in metrics.items() if value is not None)
    (BUNDLED / "MODEL_CARD.md").write_text(f"""# facedet default model

The model `facedet detect` uses when no `--weights` is given and the project has not trained one
yet (`results/train/model.safetensors` wins when it exists).

- **Network**: `{metadata["model"]["name"]}`, {parameters:,} parameters, trained from scratch (nothing downloaded).
- **Data**: the embedded sample (`facedet sample`), DVC hash `{data["md5"]}` ({data["nfiles"]} files),
  train split augmented; real faces from images that ship in scikit-image and matplotlib composited
  on real backgrounds. Only a handful of identities: expect it to work on clear, roughly frontal faces, and
  retrain on your own pictures for anything else.
- **Score threshold**: {metadata["threshold"]} (best F1 on the validation split).
- **MLflow run**: `{metadata.get("mlflow_run_id")}` in the store that trained it.
- **File**: safetensors with JSON metadata; loading never unpickles anything.

## Configuration

```yaml
{yaml.safe_dump(metadata["model"], sort_keys=False).strip()}
```

## Test-split metrics (IoU 0.5)

| metric | value |
|---|---|
{rows}
""")
    print(f"bundled {model} ({model.stat().st_size / 1e6:.2f} MB) into {BUNDLED}")


if __name__ == "__main__":
    main()
