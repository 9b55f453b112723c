"""fer_utils.runtime: the one thread count that torch, OpenCV and ONNX Runtime share."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import pytest
import torch

from fer_utils import runtime


@pytest.fixture
def restore_threads():
    """Put torch's and OpenCV's pools back to what the package chose at import."""
    yield
    runtime.configure_threads()


@pytest.mark.parametrize("fer_threads", ["", "1"])
def test_using_the_package_sizes_torch_and_opencv_alike(fer_threads):
    env = {**os.environ, runtime.THREADS_ENV: fer_threads}
    out = subprocess.run([sys.executable, "-c", "import cv2, torch, fer_utils as fu; fu.faces; "
                          "print(torch.get_num_threads(), cv2.getNumThreads(), fu.runtime.cpu_threads())"],
                         env=env, capture_output=True, text=True, check=True, timeout=300)
    torch_threads, cv2_threads, chosen = map(int, out.stdout.split())
    assert torch_threads == cv2_threads == chosen == (int(fer_threads) if fer_threads else runtime.usable_cpus())


def test_cpu_threads_are_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.delenv(runtime.THREADS_ENV, raising=False)
    assert runtime.cpu_threads() == runtime.usable_cpus()
    assert 1 <= runtime.usable_cpus() <= len(os.sched_getaffinity(0)) <= (os.cpu_count() or 1)


def test_fer_threads_overrides_the_count(monkeypatch):
    monkeypatch.setenv(runtime.THREADS_ENV, "3")
    assert runtime.cpu_threads() == 3
    monkeypatch.setenv(runtime.THREADS_ENV, "")
    assert runtime.cpu_threads() == runtime.usable_cpus()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_fer_threads_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(runtime.THREADS_ENV, value)
    with pytest.raises(ValueError, match="FER_THREADS"):
        runtime.cpu_threads()


def test_configure_threads_sizes_torch_and_opencv(monkeypatch, restore_threads):
    assert runtime.configure_threads(1) == 1
    assert torch.get_num_threads() == cv2.getNumThreads() == 1
    monkeypatch.setenv(runtime.THREADS_ENV, "2")
    assert runtime.configure_threads() == 2
    assert torch.get_num_threads() == cv2.getNumThreads() == 2
    with pytest.raises(ValueError):
        runtime.configure_threads(0)


@pytest.mark.parametrize(("files", "cpus"), [
    ({"cpu.max": "max 100000\n"}, None),  # cgroup v2, no quota
    ({"cpu.max": "150000 100000\n"}, 1.5),  # docker --cpus=1.5
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # cgroup v1, no quota
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({}, None),  # no cgroup files at all (macOS, or not mounted)
])
def test_a_cgroup_cpu_quota_is_read(tmp_path, files, cpus):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert runtime._cgroup_cpu_quota(tmp_path) == cpus


def test_a_cpu_quota_caps_the_count(monkeypatch):
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: 0.5)
    assert runtime.usable_cpus() == 1
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: 1000.0)
    assert runtime.usable_cpus() == len(os.sched_getaffinity(0))


def test_native_bf16_follows_the_isa_torch_is_allowed_to_use():
    """Told to behave like an AVX2-only CPU, the course trains in fp32, as it would on one."""
    code = "import fer_utils as fu; print(fu.runtime.cpu_has_bf16(), fu.runtime.resolve_precision('auto', fu.runtime.default_device()))"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "None"]
