import numpy as np
import pytest
import torch
from conftest import ROOT
from omegaconf import OmegaConf

from facedet.model import build_net, predict, weights
from facedet.model.dense import DenseNet


@pytest.fixture(scope="module")
def net() -> DenseNet:
    torch.manual_seed(0)
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / "dense.yaml"))
    return build_net(cfg)


def test_config_builds_a_small_letterbox_network(net):
    assert isinstance(net, DenseNet) and net.resize == "letterbox" and net.input_size == 320
    assert sum(p.numel() for p in net.parameters()) < 300_000


@pytest.mark.parametrize("height, width", [(320, 320), (480, 640), (96, 128)])
def test_shapes_priors_and_decoded_range(net, height, width):
    net.eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, height, width))
    # locations at strides 8, 16, 32
    n = sum((height // s) * (width // s) for s in (8, 16, 32))
    assert out["face_logit"].shape == (2, n) and out["box"].shape == (2, n, 4) and out["priors"].shape == (n, 3)
    assert out["landmarks"].shape == (2, n, 10)  # the default network is the bundled model's: with landmarks
    assert out["size"].tolist() == [width, height]
    # the first prior is the centre of the top-left stride-8 cell, the last the bottom-right stride-32 one
    assert out["priors"][0].tolist() == [4.0, 4.0, 8.0]
    assert out["priors"][-1].tolist() == [width - 16.0, height - 16.0, 32.0]
    decoded = net.decode(out)
    assert decoded.shape == (2, n, 15) and torch.isfinite(decoded).all()
    assert ((decoded[..., :5] >= 0) & (decoded[..., :5] <= 1)).all()  # points may lie outside the picture
    assert (decoded[..., 2] >= decoded[..., 0]).all() and (decoded[..., 3] >= decoded[..., 1]).all()


def test_decode_maps_distances_to_normalised_boxes():
    # One prior at (12, 4) with stride 8 on a 64 x 32 input; raw log-distance ln 0.5 -> 4 px each side.
    outputs = {
        "face_logit": torch.zeros(1, 1),
        "box": torch.full((1, 1, 4), float(np.log(0.5))),
        "priors": torch.tensor([[12.0, 4.0, 8.0]]),
        "size": torch.tensor([64.0, 32.0]),
    }
    decoded = DenseNet().decode(outputs)[0, 0].tolist()
    # (12 - 4) / 64, (4 - 4) / 32, (12 + 4) / 64, (4 + 4) / 32, sigmoid(0)
    assert decoded == pytest.approx([0.125, 0.0, 0.25, 0.25, 0.5], abs=1e-6)


def test_training_forward_gives_every_parameter_a_gradient(net):
    net.train()
    out = net(torch.rand(2, 3, 96, 128))
    assert all(torch.isfinite(v).all() for v in out.values())
    (out["face_logit"].sum() + out["box"].sum() + out["landmarks"].sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in net.parameters())
    net.zero_grad()


def test_predict_and_weights_round_trip(net, tmp_path):
    net.eval()
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / "dense.yaml"))
    weights.save(net, cfg, tmp_path / "m.safetensors")
    loaded, _ = weights.load(tmp_path / "m.safetensors")
    x = torch.rand(1, 3, 96, 128)
    rows = predict(loaded, x)[0]
    assert rows.shape[1] == 15 and np.all(np.diff(rows[:, 4]) <= 0)
    assert torch.equal(net.decode(net(x)), loaded.decode(loaded(x)))


class _Exported(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.decode(self.net(images))


def test_onnx_export_with_dynamic_size_matches_pytorch(net, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    wrapper = _Exported(net).eval()  # eval before export: the exporter restores the wrapper's mode
    path = tmp_path / "dense.onnx"
    torch.onnx.export(
        wrapper,
        (torch.rand(1, 3, 320, 320),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["images"],
        output_names=["faces"],
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "faces": {0: "batch", 1: "n"}},
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for height, width in [(320, 320), (480, 640)]:
        x = torch.rand(1, 3, height, width)
        with torch.no_grad():
            expected = wrapper(x).numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4


@pytest.mark.slow  # torch.export takes 10-30 s on 2 CPU cores
def test_the_mlflow_model_has_a_small_input_example_and_takes_any_batch_and_size(net, tmp_path):
    # The train stage logs Predictor (decode(forward)) with mlflow.pytorch.log_model: pt2, torch.export
    # traced with the input example, which MLflow also stores as JSON (twice) in every logged model.
    import mlflow

    from facedet.tracking import Tracker
    from facedet.training.publish import Predictor, log_servable

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "t")
    tracker.client.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = tracker.create_run("servable", {})
    info = log_servable(tracker, run_id, net)
    with mlflow.tracking._tracking_service.utils._use_tracking_uri(tracker.uri):
        served, pyfunc = mlflow.pytorch.load_model(info.model_uri), mlflow.pyfunc.load_model(info.model_uri)
    files = {p.name: p.stat().st_size for p in (tmp_path / "artifacts").rglob("*.json")}
    # A 1 x 3 x 320 x 320 random example made 6.2 + 9.3 MB (the serving copy is indented); this, about 0.5.
    assert 0 < files["input_example.json"] + files["serving_input_example.json"] < 600_000, files
    assert info.signature.inputs.inputs[0].shape == (-1, 3, -1, -1)

    predictor = Predictor(net).eval()
    for shape in [(1, 3, 320, 320), (3, 3, 480, 640)]:  # not the example's (2, 3, 64, 64)
        x = torch.rand(*shape)
        with torch.no_grad():
            expected = predictor(x)
            assert torch.allclose(served(x), expected, atol=1e-5)
        assert np.abs(pyfunc.predict(x.numpy()) - expected.numpy()).max() < 1e-5


def _input_shapes(detector, picture) -> list[tuple[int, ...]]:
    seen = []
    hook = detector.net.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    detector(picture)
    hook.remove()
    return seen


def test_pictures_are_scanned_at_detect_size_aspect_kept_and_size_overrides_it(tmp_path):
    # Trained on 64 px crops, scanned at 128 px: a 256x192 picture becomes 128x96 (no square padding),
    # and --size 64 makes it 64x64 (48 rows padded up to the stride, 64). Being larger than the scan
    # size, it is also scanned at twice that and at its own size (unless max_size is None).
    model_cfg = {"name": "dense", "input_size": 64, "detect_size": 128, "neck_width": 8}
    torch.manual_seed(0)
    weights.save(build_net(model_cfg), model_cfg, tmp_path / "m.safetensors", threshold=0.5)
    from facedet.inference.detector import FaceDetector

    picture = np.zeros((192, 256, 3), np.uint8)
    detector = FaceDetector.load(tmp_path / "m.safetensors", max_size=None)
    assert detector.net.input_size == 64 and _input_shapes(detector, picture) == [(1, 3, 96, 128)]
    assert "scanned at 128 px" in detector.describe()
    assert _input_shapes(detector.with_max_size(256), picture) == [(1, 3, 96, 128), (1, 3, 192, 256)]
    smaller = FaceDetector.load(tmp_path / "m.safetensors", size=64)
    assert _input_shapes(smaller.with_max_size(None), picture) == [(1, 3, 64, 64)]
    assert _input_shapes(smaller, picture) == [(1, 3, 64, 64), (1, 3, 96, 128), (1, 3, 192, 256)]
    with pytest.raises(ValueError, match="size 100: expected a multiple of 32"):
        FaceDetector.load(tmp_path / "m.safetensors", size=100)


def test_a_model_file_without_detect_size_scans_at_its_input_size(tmp_path):
    # Model files written before detect_size existed keep behaving as they did.
    model_cfg = {"name": "dense", "input_size": 64, "neck_width": 8}
    weights.save(build_net(model_cfg), model_cfg, tmp_path / "old.safetensors")
    net, _ = weights.load(tmp_path / "old.safetensors")
    assert net.detect_size == 64
