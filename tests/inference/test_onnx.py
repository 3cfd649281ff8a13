"""ONNX export: the graph matches PyTorch, carries the facedet metadata, and the onnx backend agrees."""

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from facedet.cli import main
from facedet.inference.backends import OnnxBackend, TorchBackend
from facedet.inference.detector import FaceDetector
from facedet.inference.onnx import export_onnx
from facedet.model import build_net, weights

TINY = {"name": "single_face", "input_size": 64, "width": 0.125, "hidden": 16}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, float]:
    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    weights.save(build_net(TINY), TINY, folder / "model.safetensors", threshold=0.25)
    diff = export_onnx(folder / "model.safetensors", folder / "model.onnx")
    return folder / "model.safetensors", folder / "model.onnx", diff


def pictures() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for w, h in [(640, 480), (200, 300), (64, 64), (33, 17)]]


def test_export_matches_pytorch_and_keeps_axes_dynamic(exported):
    _, path, diff = exported
    assert diff < 1e-4
    graph = onnx.load(str(path))
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert graph.graph.output[0].type.tensor_type.shape.dim[2].dim_value == 5
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"images": np.random.rand(3, 3, 64, 64).astype(np.float32)})[0].shape == (3, 1, 5)


def test_onnx_file_carries_the_facedet_metadata(exported):
    _, path, _ = exported
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    meta = json.loads(props["facedet"])
    assert meta["model"] == TINY and meta["threshold"] == 0.25
    assert meta["input_size"] == meta["detect_size"] == 64 and meta["resize"] == "stretch"
    assert len(meta["source_sha256"]) == 64


def test_onnx_backend_scans_at_the_dense_models_detect_size(tmp_path):
    model_cfg = {"name": "dense", "input_size": 64, "detect_size": 96, "neck_width": 8}
    torch.manual_seed(0)
    weights.save(build_net(model_cfg), model_cfg, tmp_path / "m.safetensors")
    export_onnx(tmp_path / "m.safetensors", tmp_path / "m.onnx")
    assert FaceDetector.load(tmp_path / "m.onnx").backend.detect_size == 96
    assert FaceDetector.load(tmp_path / "m.onnx", size=128).backend.detect_size == 128


def test_onnx_and_torch_backends_give_the_same_faces(exported):
    st, path, _ = exported
    by_torch = FaceDetector.load(st, backend="torch", threshold=0.0)
    by_onnx = FaceDetector.load(path, threshold=0.0)  # .onnx -> onnx backend
    assert isinstance(by_torch.backend, TorchBackend) and isinstance(by_onnx.backend, OnnxBackend)
    assert FaceDetector.load(path).threshold == 0.25  # from the ONNX metadata
    for image, a, b in zip(pictures(), by_torch.detect_batch(pictures()), by_onnx.detect_batch(pictures())):
        assert len(a) == len(b) == 1
        scale = max(image.shape[:2])
        np.testing.assert_allclose(a[0].box, b[0].box, atol=1e-3 * scale + 0.011)  # boxes are rounded to 0.01
        assert abs(a[0].score - b[0].score) <= 2e-4


def test_onnx_backend_from_safetensors_uses_the_matching_sibling_or_exports(exported, tmp_path, monkeypatch):
    st, path, _ = exported
    assert FaceDetector.load(st, backend="onnx").backend.path == path
    alone = tmp_path / "alone.safetensors"  # no sibling: exported on the fly to a temporary folder
    alone.write_bytes(st.read_bytes())
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    detector = FaceDetector.load(alone, backend="onnx", threads=1)
    assert isinstance(detector.backend, OnnxBackend) and len(detector(pictures()[0])) == 1
    assert list(temp.iterdir()) == []  # the export is gone once ONNX Runtime has read it
    with pytest.raises(ValueError, match="onnx backend only"):
        FaceDetector.load(path, backend="torch")


def test_default_engine_is_onnx_only_with_the_weights_own_export_beside_them(exported, tmp_path, caplog):
    st, path, _ = exported
    detector = FaceDetector.load(st)
    assert detector.model_info["backend"] == "onnx" and detector.backend.path == path
    alone = tmp_path / "alone.safetensors"
    alone.write_bytes(st.read_bytes())
    assert FaceDetector.load(alone).model_info["backend"] == "torch"  # no export on the fly by default
    torch.manual_seed(1)  # other weights beside an .onnx exported from the first ones
    weights.save(build_net(TINY), TINY, tmp_path / "stale.safetensors")
    (tmp_path / "stale.onnx").write_bytes(path.read_bytes())
    assert FaceDetector.load(tmp_path / "stale.safetensors").model_info["backend"] == "torch"
    assert "stale.onnx was not exported from" in caplog.text


def test_export_command_prints_the_difference(exported, tmp_path, capsys):
    st, _, _ = exported
    out = tmp_path / "cli.onnx"
    assert main(["export", "--weights", str(st), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "max abs difference" in printed
    assert float(printed.rsplit(" ", 1)[1]) < 1e-4


def test_export_of_a_missing_model_names_it(tmp_path, capsys):
    assert main(["export", "--weights", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "none.safetensors" in capsys.readouterr().err
