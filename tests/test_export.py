"""ONNX export: the same probabilities as torch for every model of the registry, re-exported when
the checkpoint changes, and the classifier backends that use it."""

import json

import numpy as np
import onnx
import pytest

import fer_utils as fu
from fer_utils.export import (
    calibration_faces,
    ensure_int8,
    ensure_onnx,
    export_onnx,
    int8_path,
    onnx_metadata,
    onnx_path,
)
from fer_utils.inference import OnnxClassifier, TorchClassifier, check_onnx, load_classifier
from fer_utils.paths import DatasetNotFoundError

SMALL = {
    "mlp": {"hidden": [64]},
    "plain_cnn": {"depth": 3, "width": 8},
    "residual_cnn": {"widths": [8, 16], "blocks": [1, 1]},
    "resnet18": {},
    "ensemble": {"members": [{"name": "plain_cnn", "kwargs": {"depth": 3, "width": 8}}] * 2},
}


def save_random(path, name="plain_cnn", seed=0, **kwargs):
    fu.set_seed(seed)
    return fu.save_model(path, fu.build_model(name, **(kwargs or SMALL[name])))


@pytest.fixture
def faces():
    return np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_onnx_runtime_gives_torchs_probabilities_for_every_model(name, tmp_path, faces):
    checkpoint = save_random(tmp_path / f"{name}.pt", name)
    path = export_onnx(checkpoint)
    assert path == tmp_path / f"{name}.onnx"
    torch_probs = TorchClassifier(checkpoint).predict_proba(faces)
    onnx = OnnxClassifier(path, threads=1)
    for batch in (faces[:1], faces):  # any batch size, not only the one it was traced with
        np.testing.assert_allclose(onnx.predict_proba(batch), torch_probs[: len(batch)], atol=1e-4, rtol=0)
    np.testing.assert_allclose(onnx.predict_proba(faces, tta=True), TorchClassifier(checkpoint).predict_proba(faces, tta=True),
                               atol=1e-4, rtol=0)
    assert check_onnx(path, checkpoint) < 1e-4
    meta = onnx_metadata(path)
    assert meta["checkpoint_sha256"] and json.loads(meta["spec"])["name"] == name


def test_the_onnx_copy_is_reused_and_remade_when_the_checkpoint_changes(tmp_path, faces):
    checkpoint = save_random(tmp_path / "model.pt", seed=0)
    path = ensure_onnx(checkpoint)
    stamp = path.stat().st_mtime_ns
    assert ensure_onnx(checkpoint) == path and path.stat().st_mtime_ns == stamp  # reused
    save_random(checkpoint, seed=1)  # new weights at the same path
    ensure_onnx(checkpoint)
    default = OnnxClassifier(path)
    np.testing.assert_allclose(default.predict_proba(faces), TorchClassifier(checkpoint).predict_proba(faces),
                               atol=1e-4, rtol=0)
    # ONNX Runtime's pool is sized like torch's (fer_utils.runtime), and its workers do not spin between calls
    options = default.session.get_session_options()
    assert options.intra_op_num_threads == fu.runtime.cpu_threads()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert OnnxClassifier(path, threads=1).session.get_session_options().intra_op_num_threads == 1


def test_load_classifier_prefers_onnx_runtime_and_falls_back_to_torch(tmp_path, faces):
    checkpoint = save_random(tmp_path / "model.pt")
    auto = load_classifier(checkpoint, threads=1)
    assert auto.backend == "onnxruntime" and onnx_path(checkpoint).exists()
    plain = load_classifier(checkpoint, backend="torch")
    assert plain.backend == "torch"
    np.testing.assert_allclose(auto.predict_proba(faces), plain.predict_proba(faces), atol=1e-4, rtol=0)
    assert auto.predict_proba(faces[:0]).shape == (0, 7)
    with pytest.raises(ValueError, match="backend must be"):
        load_classifier(checkpoint, backend="tflite")


def test_a_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(fu.CheckpointError, match="no checkpoint"):
        ensure_onnx(tmp_path / "missing.pt")


def test_the_int8_copy_is_quantized_once_from_training_faces_and_stays_close_to_fp32(tmp_path, synthetic_zip, faces):
    checkpoint = save_random(tmp_path / "model.pt")
    int8 = load_classifier(checkpoint, backend="onnxruntime-int8", threads=1, data_path=synthetic_zip)
    assert int8.backend == "onnxruntime-int8" and int8.path == int8_path(checkpoint) == tmp_path / "model.int8.onnx"
    assert sum(node.op_type == "QuantizeLinear" for node in onnx.load(str(int8.path)).graph.node) > 0
    meta = onnx_metadata(int8.path)
    assert meta["checkpoint_sha256"] == onnx_metadata(onnx_path(checkpoint))["checkpoint_sha256"]
    assert meta["calibration"] == f"{len(calibration_faces(synthetic_zip))} training faces"
    fp32 = load_classifier(checkpoint, threads=1).predict_proba(faces)
    probs = int8.predict_proba(faces)
    assert probs.shape == (5, 7) and np.allclose(probs.sum(1), 1, atol=7 / 255)  # the output is quantized too
    np.testing.assert_allclose(probs, fp32, atol=0.05, rtol=0)
    stamp = int8.path.stat().st_mtime_ns
    missing = tmp_path / "no-dataset.zip"
    assert ensure_int8(checkpoint, missing) == int8.path and int8.path.stat().st_mtime_ns == stamp  # reused: no data needed
    save_random(checkpoint, seed=1)  # new weights: quantizing again needs the training faces
    with pytest.raises(DatasetNotFoundError, match="calibrates on FER-2013's training faces"):
        ensure_int8(checkpoint, missing)
