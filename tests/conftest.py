"""Shared fixtures: a tiny synthetic FER-2013 written in both layouts, and the real dataset when found."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fer_utils as fu
from fer_utils.paths import DatasetNotFoundError

TRAIN_PER_CLASS = 40
TEST_PER_CLASS = 8  # half PublicTest, half PrivateTest


def synthetic_face(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 uint8 image whose class is learnable: a noisy face-sized blob whose brightness
    and stripe spacing depend on the class."""
    img = rng.normal(30 + 25 * label, 12, size=(48, 48))
    period = 2 + label % 3
    img[:, ::period] += 40
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_members(seed: int = 0) -> dict[str, bytes]:
    """{path inside the dataset: JPEG bytes} in the Kaggle msambare/fer2013 layout."""
    rng = np.random.default_rng(seed)
    members = {}
    for label, cls in enumerate(fu.CLASSES):
        for i in range(TRAIN_PER_CLASS):
            members[f"train/{cls}/Training_{label}{i:04d}.jpg"] = _jpeg(synthetic_face(label, rng))
        for i in range(TEST_PER_CLASS):
            source = "PublicTest" if i % 2 else "PrivateTest"
            members[f"test/{cls}/{source}_{label}{i:04d}.jpg"] = _jpeg(synthetic_face(label, rng))
    return members


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode="L").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_tree(root: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture(scope="session")
def synthetic_zip(tmp_path_factory) -> Path:
    return write_zip(tmp_path_factory.mktemp("zip") / "fer2013.zip", synthetic_members())


@pytest.fixture(scope="session")
def synthetic_tree(tmp_path_factory) -> Path:
    return write_tree(tmp_path_factory.mktemp("tree") / "fer2013", synthetic_members())


@pytest.fixture(scope="session")
def synthetic(synthetic_zip) -> fu.FER2013:
    return fu.load_fer2013(synthetic_zip)


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path, monkeypatch):
    """Records and checkpoints of a test go to its own temporary folder, never into the project."""
    monkeypatch.setenv("FER_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("FER_FAST", raising=False)
    monkeypatch.delenv("FER_RETRAIN", raising=False)


@pytest.fixture(scope="session")
def real_data() -> fu.FER2013:
    """The real FER-2013 when it is configured ($FER2013_PATH or data/); the test is skipped otherwise."""
    try:
        return fu.load_fer2013()
    except DatasetNotFoundError:
        pytest.skip("FER-2013 not found: set FER2013_PATH to run the real-data tests")
