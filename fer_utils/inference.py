"""Classifying 48x48 faces with the shipped model: through ONNX Runtime when it is installed, torch otherwise;
``onnxruntime-int8`` is the quantized copy, for real time on a slow CPU.

Both backends take (N, 48, 48) uint8 faces and return (N, 7) float32 probabilities, in fp32.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from .checkpoints import DEFAULT_MODEL, load_model
from .config import BACKENDS
from .data import IMAGE_SIZE
from .evaluate import predict_proba
from .runtime import configure_threads, cpu_threads


class TorchClassifier:
    """The checkpoint's model in torch, fp32, eval mode."""

    backend = "torch"

    def __init__(self, checkpoint: str | os.PathLike | None = None, threads: int | None = None):
        if threads:  # torch's pool is the process's: this sizes it for every later torch call too
            configure_threads(threads)
        self.model = load_model(checkpoint)

    def predict_proba(self, faces: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 7) float32; ``tta`` averages with the mirrored faces."""
        return predict_proba(self.model, faces, tta=tta, precision="fp32")


class OnnxClassifier:
    """An exported model (see ``fer_utils.export``) in an ONNX Runtime CPU session."""

    def __init__(self, model: str | os.PathLike, threads: int | None = None, backend: str = "onnxruntime"):
        import onnxruntime as ort

        self.backend = backend

        options = ort.SessionOptions()
        # ONNX Runtime's own pool, sized like torch's and OpenCV's (its default is every physical core).
        # Its workers spin between calls by default, burning the cores the other work (detection, another
        # process) needs: on a busy 2-core machine that made a batch-1 call 1.7x slower with 2 threads.
        options.intra_op_num_threads = threads or cpu_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.path = Path(model)
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def predict_proba(self, faces: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 7) float32; ``tta`` averages with the mirrored faces."""
        faces = np.ascontiguousarray(faces, dtype=np.uint8)
        if not len(faces):
            return np.zeros((0, 7), np.float32)
        if tta:
            both = self.session.run(None, {self.input: np.concatenate([faces, faces[:, :, ::-1]])})[0]
            return (both[: len(faces)] + both[len(faces) :]) / 2
        return self.session.run(None, {self.input: faces})[0]


def onnxruntime_available() -> bool:
    return find_spec("onnxruntime") is not None and find_spec("onnxscript") is not None


def load_classifier(checkpoint: str | os.PathLike | None = None, backend: str = "auto",
                    threads: int | None = None, data_path: str | os.PathLike | None = None) -> TorchClassifier | OnnxClassifier:
    """The classifier for ``checkpoint`` (default: the shipped model).

    ``backend`` 'auto' picks ONNX Runtime when onnxruntime and onnxscript are installed (exporting
    the checkpoint to ONNX beside it the first time), else torch; 'onnxruntime-int8' quantizes it
    once, calibrating on FER-2013's training faces (``data_path``, else the configured dataset).
    ``threads`` sets the CPU threads (None: ``fer_utils.runtime.cpu_threads()``, the count the whole
    package uses).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = "onnxruntime" if onnxruntime_available() else "torch"
    elif backend.startswith("onnxruntime") and not onnxruntime_available():
        raise ValueError(f"the {backend} backend needs `pip install onnxruntime onnxscript`; or use the torch backend")
    if backend == "torch":
        return TorchClassifier(checkpoint, threads)
    from .export import ensure_int8, ensure_onnx

    if backend == "onnxruntime-int8":
        return OnnxClassifier(ensure_int8(checkpoint or DEFAULT_MODEL, data_path), threads, backend)
    return OnnxClassifier(ensure_onnx(checkpoint or DEFAULT_MODEL), threads)


def check_onnx(path: str | os.PathLike, checkpoint: str | os.PathLike | None = None, n: int = 64, seed: int = 0) -> float:
    """The largest absolute difference between ONNX Runtime's and torch's fp32 probabilities on
    ``n`` random (48, 48) uint8 faces."""
    faces = np.random.default_rng(seed).integers(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    reference = predict_proba(load_model(checkpoint or DEFAULT_MODEL), faces, precision="fp32")
    return float(np.abs(OnnxClassifier(path).predict_proba(faces) - reference).max())
