"""The model as ONNX: exported once from its checkpoint, re-exported when the checkpoint changes.

The ONNX graph holds the whole classifier: (N, 48, 48) uint8 faces in, (N, 7) class probabilities
out (the normalisation and the softmax are inside), so any ONNX runtime can use it without this
package. It sits beside its checkpoint (``results/final_model.onnx``, ignored by git) and records
the checkpoint's SHA-256, so a new checkpoint makes ``ensure_onnx`` export again. Its int8 copy
(``results/final_model.int8.onnx``, ``ensure_int8``) is the real-time option: a third of fp32's
latency on one thread at nearly the same accuracy (notebook 07 measures both); quantizing it needs
FER-2013's training faces, which set its activation ranges.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import DEFAULT_MODEL, CheckpointError, load_model, model_spec
from .config import CLASSES
from .data import IMAGE_SIZE
from .inputs import to_model_input
from .paths import DatasetNotFoundError
from .storage import atomic_write, file_sha256

INPUT, OUTPUT = "faces", "probabilities"
CALIBRATION_FACES = 512  # training faces that set int8's activation ranges


class Probabilities(nn.Module):
    """``model`` with its input scaling and a softmax: (N, 48, 48) uint8 -> (N, 7) probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(to_model_input(faces)), dim=1)


def onnx_path(checkpoint: str | os.PathLike | None = None) -> Path:
    """Where the ONNX copy of ``checkpoint`` (default: the shipped model) lives: beside it, ``.onnx``."""
    return Path(checkpoint or DEFAULT_MODEL).with_suffix(".onnx")


def export_onnx(checkpoint: str | os.PathLike | None = None, out: str | os.PathLike | None = None) -> Path:
    """Export ``checkpoint`` (default: the shipped model) to ``out`` (default: beside it) and return the path.

    Uses torch's ``torch.export``-based exporter (needs onnxscript), with a dynamic batch size.
    """
    checkpoint = Path(checkpoint or DEFAULT_MODEL)
    model = load_model(checkpoint)
    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8)
    program = torch.onnx.export(
        Probabilities(model).eval(), (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
        dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False, verbose=False,
    )
    proto = program.model_proto
    meta = {"checkpoint_sha256": file_sha256(checkpoint), "classes": json.dumps(list(CLASSES)),
            "spec": json.dumps(model_spec(model)), "source": checkpoint.name}
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    data = proto.SerializeToString()
    return atomic_write(out or onnx_path(checkpoint), lambda f: f.write(data))


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata that ``export_onnx`` stored in an ONNX file (checkpoint hash, classes, spec)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def ensure_onnx(checkpoint: str | os.PathLike | None = None) -> Path:
    """The ONNX copy of ``checkpoint``, exported first when it is missing or was made from other weights."""
    checkpoint = Path(checkpoint or DEFAULT_MODEL)
    if not checkpoint.is_file():
        raise CheckpointError(f"no checkpoint at {checkpoint}; train one with `python -m fer_utils train`")
    path = onnx_path(checkpoint)
    if path.exists() and onnx_metadata(path).get("checkpoint_sha256") == file_sha256(checkpoint):
        return path
    return export_onnx(checkpoint, path)


def quantize_int8(model_path: str | os.PathLike, calibration: np.ndarray, out: str | os.PathLike) -> Path:
    """ONNX Runtime static int8 quantization (QDQ, per-channel weights) of an exported model.

    ``calibration`` is (N, 48, 48) uint8 faces (training images, never test ones) that set the
    activation ranges.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 32)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    out = Path(out)
    prepared = out.with_suffix(".prep.onnx")
    try:
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
    return out


def int8_path(checkpoint: str | os.PathLike | None = None) -> Path:
    """Where the int8 ONNX copy of ``checkpoint`` (default: the shipped model) lives: beside it, ``.int8.onnx``."""
    return Path(checkpoint or DEFAULT_MODEL).with_suffix(".int8.onnx")


def calibration_faces(data_path: str | os.PathLike | None = None, n: int = CALIBRATION_FACES) -> np.ndarray:
    """(n, 48, 48) uint8 training faces, a class-stratified sample fixed by seed 0 (never test faces)."""
    from .data import load_fer2013, stratified_subset

    train = load_fer2013(data_path).train
    return stratified_subset(train, min(1.0, n / len(train)), seed=0).images


def ensure_int8(checkpoint: str | os.PathLike | None = None, data_path: str | os.PathLike | None = None) -> Path:
    """The int8 copy of ``checkpoint``'s ONNX model, quantized first (on ``calibration_faces``) when it
    is missing or was made from other weights. It carries the fp32 copy's metadata."""
    checkpoint = Path(checkpoint or DEFAULT_MODEL)
    fp32, path = ensure_onnx(checkpoint), int8_path(checkpoint)
    meta = onnx_metadata(fp32)
    if path.exists() and onnx_metadata(path).get("checkpoint_sha256") == meta["checkpoint_sha256"]:
        return path
    try:
        faces = calibration_faces(data_path)
    except DatasetNotFoundError as error:
        raise DatasetNotFoundError("quantizing to int8 calibrates on FER-2013's training faces (or use the fp32 "
                                   f"model: --backend onnxruntime). {error}") from error
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(str(quantize_int8(fp32, faces, Path(tmp) / "int8.onnx")))
    del model.metadata_props[:]
    for key, value in {**meta, "calibration": f"{len(faces)} training faces"}.items():
        model.metadata_props.add(key=key, value=value)
    data = model.SerializeToString()
    return atomic_write(path, lambda f: f.write(data))
