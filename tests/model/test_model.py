import pytest
import torch

from facedet.model import build_net, predict, weights


def test_seed_configuration_is_vgg16_with_two_heads_16_8_million_parameters():
    # VGG16 convolutions 14,714,688 + two Linear(512, 2048) 2 x 1,050,624 + Linear(2048, 1) 2,049
    # + Linear(2048, 4) 8,196 = 16,826,181 (the seed's Keras summary: 16.8 M).
    net = build_net({"name": "single_face", "width": 1.0, "hidden": 2048, "batch_norm": False})
    assert sum(p.numel() for p in net.parameters()) == 16_826_181


@pytest.mark.parametrize("size", [64, 120])
def test_default_network_shapes_ranges_and_gradients(size):
    net = build_net({"name": "single_face", "input_size": size, "width": 0.25, "hidden": 64})
    out = net(torch.rand(2, 3, size, size))
    assert out["face_logit"].shape == (2,) and out["box"].shape == (2, 4)
    assert torch.all((out["box"] >= 0) & (out["box"] <= 1))
    (out["face_logit"].sum() + out["box"].sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_predict_returns_ordered_boxes_with_scores():
    net = build_net({"name": "single_face", "input_size": 64, "width": 0.25, "hidden": 32}).eval()
    rows = predict(net, torch.rand(3, 3, 64, 64))
    assert len(rows) == 3
    for row in rows:
        assert row.shape == (1, 5)
        x1, y1, x2, y2, score = row[0].tolist()
        assert x1 <= x2 and y1 <= y2 and 0 <= score <= 1


def test_weights_round_trip_rebuilds_the_same_network(tmp_path):
    cfg = {"name": "single_face", "input_size": 64, "width": 0.25, "hidden": 32, "stages": [1, 1, 1, 1, 1]}
    net = build_net(cfg).eval()
    weights.save(net, cfg, tmp_path / "m.safetensors", threshold=0.4)
    loaded, meta = weights.load(tmp_path / "m.safetensors")
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(net(x)["box"], loaded(x)["box"])
    assert meta["threshold"] == 0.4 and meta["model"]["stages"] == [1, 1, 1, 1, 1]


def test_averaging_models_averages_every_weight_and_refuses_other_networks(tmp_path):
    cfg = {"name": "dense", "input_size": 64, "widths": [8, 8, 8, 8, 8], "neck_width": 8, "landmarks": False}
    nets = [build_net(cfg) for _ in range(2)]
    with torch.no_grad():
        nets[0].predict[0].bias.fill_(1.0), nets[1].predict[0].bias.fill_(2.0)
    for i, net in enumerate(nets):
        weights.save(net, cfg, tmp_path / f"{i}.safetensors", threshold=0.5)
    soup, metadata = weights.average([tmp_path / "0.safetensors", tmp_path / "1.safetensors"])
    assert torch.equal(soup.predict[0].bias, torch.full((5,), 1.5))
    first, second = nets[0].state_dict(), nets[1].state_dict()
    for key, tensor in soup.state_dict().items():
        expected = (first[key] + second[key]) / 2 if tensor.is_floating_point() else first[key]
        assert torch.allclose(tensor, expected, atol=1e-6), key
    assert metadata["model"] == cfg
    weights.save(build_net({**cfg, "neck_width": 16}), {**cfg, "neck_width": 16}, tmp_path / "wide.safetensors")
    with pytest.raises(weights.ModelFileError, match="wide.safetensors.*network configs differ"):
        weights.average([tmp_path / "0.safetensors", tmp_path / "wide.safetensors"])


def test_unknown_network_name_names_the_key():
    with pytest.raises(ValueError, match="model.name"):
        build_net({"name": "resnet"})
