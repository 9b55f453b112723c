"""Writing files atomically, and the JSON records under results/: where they go, and the one record
cache (``stored``) that reuses a record while it was made with the same config or settings."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .paths import PROJECT_ROOT, results_dir
from .runtime import cpu_model, fast_mode, usable_cpus

RETRAIN_ENV = "FER_RETRAIN"  # set to 1: every stored record is made again instead of reused


def records_dir() -> Path:
    """results/ in full mode; results/fast/ (ignored by git) in fast mode, so CI never overwrites a real record."""
    return results_dir() / "fast" if fast_mode() else results_dir()


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes as hex (checkpoints and downloaded weights are identified by it)."""
    return sha256(Path(path).read_bytes())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it into place.

    A crash (even kill -9) leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it a plain file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def load_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def git_commit() -> str | None:
    """The project's current git commit, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # On failure git prints the argument ("HEAD") itself: only a successful answer is a commit.
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def environment() -> dict[str, Any]:
    """Library versions and the machine: what a record needs to be reproduced."""
    import numpy
    import sklearn
    import torch
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),  # the affinity mask and cgroup quota (fer_utils.runtime)
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": git_commit(),
    }


def save_record(name: str, record: dict[str, Any], folder: str | os.PathLike | None = None) -> Path:
    """Save a run's record (config, metrics, timings) as ``<folder>/<name>.json`` (default
    ``records_dir()``), with the environment it ran in."""
    folder = Path(folder) if folder is not None else records_dir()
    return save_json(folder / f"{name}.json", {**record, "environment": environment()})


def retrain_requested() -> bool:
    """Whether ``$FER_RETRAIN=1`` asks for every record to be made again rather than reused."""
    return os.environ.get(RETRAIN_ENV) == "1"


def stored(path: str | os.PathLike, **made_with: Any) -> dict[str, Any] | None:
    """The JSON record at ``path`` if it exists and was made with ``made_with`` (each field of the
    record equal to the value given, e.g. ``config=config.to_dict()``), else None."""
    path = Path(path)
    if not path.exists():
        return None
    record = load_json(path)
    return record if all(record.get(field) == value for field, value in made_with.items()) else None
