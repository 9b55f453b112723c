"""fer_utils.course.cluster: a study grid as Ray tasks, on one local Ray instance (2 CPUs, loopback) shared
by the module, with tiny fast-mode runs on the synthetic dataset."""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import fer_utils as fu
from fer_utils.course import cluster

from .scripts import load_script

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
# Metrics of the same config from either engine, both on one CPU thread: equal to the last bits in
# practice; losses are compared to this relative tolerance.
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def ray_instance():
    cluster.connect(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setenv("FER_FAST", "1")


def tiny_grid(n: int = 3, **overrides) -> dict[str, fu.ExperimentConfig]:
    return {f"seed {s}": fu.ExperimentConfig(model="plain_cnn", model_kwargs={"depth": 2, "width": 16}, seed=s,
                                             batch_size=4, schedule="constant", precision="fp32", **overrides)
            for s in range(n)}


def experiments_dir() -> Path:
    return fu.experiments.record_path("x").parent


def stored_files(folder: Path) -> list[str]:
    """Every file in the records folder, temporary ones included (an atomic write leaves none)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def counting(marker_dir: Path, crash_once: str | None = None):
    """A task that leaves a marker per training it finishes and, for the run named ``crash_once``,
    kills its own worker the first time it starts (os._exit: a dead worker, as on a lost node)."""
    def task(config, name, data, threads, env, options):
        if name == crash_once and not (marker_dir / f"{name}.crashed").exists():
            (marker_dir / f"{name}.crashed").write_text("once")
            os._exit(1)
        result = cluster.train_task(config, name, data, threads, env, options)
        (marker_dir / f"{name}.{time.time_ns()}.trained").write_text("")
        return result

    marker_dir.mkdir(parents=True, exist_ok=True)
    return task


def trained_names(marker_dir: Path) -> list[str]:
    return sorted(p.name.split(".")[0] for p in marker_dir.glob("*.trained"))


def test_a_local_ray_listens_and_is_reached_on_loopback_only(ray_instance):
    host = ray.get_runtime_context().gcs_address.rsplit(":", 1)[0]
    assert ipaddress.ip_address(host).is_loopback, f"the local Ray's GCS is on {host}, not 127.0.0.1"
    assert all(ipaddress.ip_address(node["NodeManagerAddress"]).is_loopback for node in ray.nodes())
    assert cluster.on_loopback(None) and cluster.on_loopback("127.0.0.1:6379") and not cluster.on_loopback("10.0.0.5:6379")


def test_importing_the_package_does_not_import_ray():
    code = "import sys, fer_utils; assert 'ray' not in sys.modules and fer_utils.course.cluster"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "FER_THREADS": "1"})


def test_ray_writes_the_records_the_local_loop_writes(ray_instance, fast, synthetic, tmp_path, monkeypatch):
    grid = tiny_grid(2)
    monkeypatch.setenv("FER_RESULTS_DIR", str(tmp_path / "local" / "results"))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "local" / "runs"))
    threads = torch.get_num_threads()
    fu.runtime.configure_threads(1)  # the Ray tasks run with --cpus-per-task 1 threads
    try:
        local = {label: fu.run_experiment(config, name=fu.course.records.record_name("test", label), data=synthetic,
                                          progress=False) for label, config in grid.items()}
    finally:
        fu.runtime.configure_threads(threads)
    local_files = stored_files(experiments_dir())

    monkeypatch.setenv("FER_RESULTS_DIR", str(tmp_path / "ray" / "results"))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "ray" / "runs"))  # no resuming from the local runs
    outcome = cluster.run_grid("test", grid, synthetic, progress=False)
    assert outcome.ok and sorted(outcome.trained) == sorted(grid) and not outcome.skipped  # in finishing order
    assert stored_files(experiments_dir()) == local_files == ["test-seed-0.json", "test-seed-1.json"]
    for label, record in outcome.records.items():
        assert record == fu.load_json(experiments_dir() / f"{record['name']}.json")
        expected = local[label]
        for key in ("name", "key", "config", "fast_mode", "device", "n_train", "n_val", "train_precision",
                    "params", "best_epoch", "epochs_run", "val", "val_predictions"):
            assert record[key] == expected[key], key
        assert record["fast_mode"] and record["epochs_run"] == 1
        for ours, theirs in zip(record["history"], expected["history"], strict=True):
            for column in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
                assert ours[column] == pytest.approx(theirs[column], rel=TOLERANCE, abs=TOLERANCE), column

    again = cluster.run_grid("test", grid, synthetic, progress=False)  # stored: nothing to train
    assert again.skipped == list(grid) and not again.trained and again.records == outcome.records


def test_a_worker_that_dies_is_retried_and_each_record_lands_once(ray_instance, fast, synthetic, tmp_path):
    grid = tiny_grid(3)
    markers = tmp_path / "markers"
    outcome = cluster.run_grid("test", grid, synthetic, task=counting(markers, crash_once="test-seed-1"),
                               progress=False)
    assert (markers / "test-seed-1.crashed").exists()  # its first worker did die
    assert outcome.ok and sorted(outcome.trained) == sorted(grid)
    assert trained_names(markers) == ["test-seed-0", "test-seed-1", "test-seed-2"]  # each trained once
    names = [fu.course.records.record_name("test", label) for label in grid]
    assert stored_files(experiments_dir()) == [f"{n}.json" for n in names]
    for label, name in zip(grid, names, strict=True):
        record = fu.load_json(experiments_dir() / f"{name}.json")
        assert record["config"] == grid[label].fast().to_dict() and record["key"] == grid[label].fast().key()


def test_a_model_saved_by_a_task_is_written_here(ray_instance, fast, synthetic, tmp_path):
    checkpoint = tmp_path / "models" / "model.pt"
    outcome = cluster.run_grid("test", tiny_grid(1), synthetic, save_checkpoint=checkpoint, progress=False)
    assert outcome.ok and fu.load_model(checkpoint).fer_spec == {"name": "plain_cnn", "kwargs": {"depth": 2, "width": 16}}
    assert outcome.records["seed 0"]["environment"]["git_commit"] == fu.storage.git_commit()


def test_a_task_the_cluster_cannot_run_is_an_error_not_a_wait(ray_instance, fast, synthetic):
    with pytest.raises(ValueError, match="needs 1 CPUs and 1 GPUs; the cluster has 2 CPUs, 0 GPUs"):
        cluster.run_grid("test", tiny_grid(1), synthetic, gpus_per_task=1, progress=False)
    assert stored_files(experiments_dir()) == []


def test_a_run_that_raises_is_reported_by_label_the_others_finish_and_the_exit_is_non_zero(
        ray_instance, fast, synthetic, capsys):
    grid = {**tiny_grid(1), "broken run": fu.ExperimentConfig(model="no_such_model")}
    args = argparse.Namespace(engine="ray", address=None, cpus_per_task=1, gpus_per_task=0, shard="0/1", only=[],
                              retrain=False, deadline=None)
    with pytest.raises(SystemExit) as exit_:
        load_script("run_study").run("test", grid, synthetic, args, time.time())
    assert exit_.value.code not in (0, None)
    assert "broken run: ValueError: unknown model 'no_such_model'" in str(exit_.value.code)
    assert "FAILED broken run (test-broken-run)" in capsys.readouterr().out
    assert stored_files(experiments_dir()) == ["test-seed-0.json"]


def test_an_interrupted_grid_run_again_trains_only_what_is_missing(ray_instance, fast, synthetic, tmp_path,
                                                                   monkeypatch):
    grid = tiny_grid(3)
    write = cluster.write_record

    def write_then_interrupt(name, record):  # Ctrl-C right after the first record is stored
        write(name, record)
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster, "write_record", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        cluster.run_grid("test", grid, synthetic, task=counting(tmp_path / "first"), progress=False)
    monkeypatch.setattr(cluster, "write_record", write)
    [first] = stored_files(experiments_dir())  # one record, whole, and no temporary file left
    assert fu.load_json(experiments_dir() / first)["name"] == first.removesuffix(".json")

    outcome = cluster.run_grid("test", grid, synthetic, task=counting(tmp_path / "second"), progress=False)
    missing = sorted(fu.course.records.record_name("test", label) for label in grid if f"{fu.course.records.record_name('test', label)}.json" != first)
    assert outcome.ok and len(outcome.skipped) == 1 and len(outcome.trained) == 2
    assert trained_names(tmp_path / "second") == missing  # only the missing runs were trained
    assert stored_files(experiments_dir()) == sorted(f"{fu.course.records.record_name('test', label)}.json" for label in grid)
