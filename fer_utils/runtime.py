"""Seeds, devices, numeric precision and CPU threads: the settings every run shares.

**Threads are chosen here, in one place.** Left to themselves, torch (OpenMP), OpenCV and ONNX
Runtime each size a thread pool by the machine's cores, so one process can run three pools on two
cores, beside whatever else the machine is doing; on a busy 2-core machine that oversubscription
costs more than the second thread gains. ``cpu_threads()`` is the one count they all use: the CPUs
this process may run on (its affinity mask, ``os.sched_getaffinity(0)``, which taskset and
container cpusets narrow, and a cgroup CPU quota such as ``docker --cpus``), not the machine's core
count. ``$FER_THREADS`` overrides it (``FER_THREADS=1`` on a machine busy with other work).
``configure_threads()`` applies it to torch and OpenCV, and runs once when ``fer_utils`` is
imported; ``fer_utils.inference`` gives the same count to ONNX Runtime sessions. The count is a
function of the machine and the environment only, never of its momentary load: results of
training depend (in their last bits) on the thread count, and a rerun on the same machine should
give the same numbers.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from pathlib import Path

import numpy as np
import torch

FAST_ENV = "FER_FAST"
THREADS_ENV = "FER_THREADS"


def fast_mode() -> bool:
    """True when ``$FER_FAST`` is set to 1: notebooks then use a small subset and one epoch (CI)."""
    return os.environ.get(FAST_ENV, "0") == "1"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def default_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), e.g. 'AMD EPYC'; 'unknown' elsewhere."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays off.

    Honours the limits torch and oneDNN are given ($ATEN_CPU_CAPABILITY, $ONEDNN_MAX_CPU_ISA): told to
    behave like an AVX2-only CPU (``scripts/time_build.py --isa avx2``), the course trains in fp32 as it would there.
    """
    flags = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    if not ("avx512_bf16" in flags or "amx_bf16" in flags):
        return False
    onednn_bf16 = True
    with contextlib.suppress(AttributeError, RuntimeError):
        onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return onednn_bf16 and torch.backends.cpu.get_cpu_capability().startswith(("AVX512", "AMX"))


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ('auto', 'bf16', 'fp16' or 'fp32'); None means fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be 'auto', 'bf16', 'fp16' or 'fp32', got {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _cgroup_cpu_quota(root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """The CPUs a cgroup quota allows (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), None without one."""
    root = Path(root)
    with contextlib.suppress(OSError, ValueError):
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    return None


def usable_cpus() -> int:
    """How many CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)


def cpu_threads() -> int:
    """The CPU threads torch, OpenCV and ONNX Runtime use: ``$FER_THREADS`` when set, else ``usable_cpus()``."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return usable_cpus()
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"${THREADS_ENV} must be a whole number of threads, at least 1; got {value!r}")
    return threads


def configure_threads(threads: int | None = None) -> int:
    """Size torch's and OpenCV's thread pools to ``threads`` (default ``cpu_threads()``); returns the count.

    torch's inter-op pool (used only by ``torch.jit.fork``) gets one thread where it can still be set.
    Pass the same count to ONNX Runtime (``fer_utils.inference`` does).
    """
    threads = cpu_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable once, before any inter-op work
        torch.set_num_interop_threads(1)
    with contextlib.suppress(ImportError):
        import cv2

        cv2.setNumThreads(threads)
    return threads


configure_threads()
