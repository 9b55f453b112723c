"""A study grid on Ray: one task per missing run, on this machine or on any Ray cluster.

``connect()`` starts Ray here (with ``cpu_threads()`` CPUs) or joins a cluster by address, and ships
this package to the workers (Ray's runtime environment). ``run_grid()`` puts the dataset into the
object store once, submits one task per run whose record is missing (every run with ``retrain``),
and writes each record from the driver as it arrives, atomically, under the name the sequential
loop uses (``records.record_name``): a worker computes a record and returns it, and writes nothing
under results/. A task whose worker dies is retried (``max_retries``); a run that raises is
reported with its label while the others go on. An interrupted grid, run again, trains only the
runs it is missing. Ray is imported inside the functions: ``import fer_utils`` does not need it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from ..config import ExperimentConfig
from ..experiments import stored_record, train_record, write_record
from ..paths import RUNS_DIR, RUNS_ENV
from ..pretrained import WEIGHTS_ENV, weights_dir
from ..runtime import FAST_ENV, configure_threads, cpu_threads, fast_mode
from ..storage import atomic_write, git_commit, retrain_requested
from .records import record_name

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # fer_utils, shipped to the workers
MAX_RETRIES = 2  # a task whose worker dies runs again, at most this many times
POLL_SECONDS = 2.0  # how often the progress bar's running times refresh


# Ray reads this when it is imported: at "0" a node takes the loopback address as its own, so that a Ray on
# one machine (``connect()`` with no address, or a head started with ``--node-ip-address 127.0.0.1``) listens
# and is reached on 127.0.0.1 only, never on the machine's network address.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def on_loopback(address: str | None) -> bool:
    """Whether ``address`` ('HOST:PORT', or None for a Ray started here) is a Ray on this machine alone."""
    return address is None or address.rsplit(":", 1)[0] in LOOPBACK_HOSTS


def connect(address: str | None = None, num_cpus: int | None = None):
    """Start Ray on this machine (``num_cpus``, default ``cpu_threads()``), on 127.0.0.1 only, or, with
    ``address`` ('HOST:PORT' of ``ray start --head``), join that cluster (a loopback address stays on
    loopback). Already connected: nothing to do. Returns Ray's context (what ``ray.init`` returns), or
    None when Ray was already initialised."""
    import logging

    if on_loopback(address):
        os.environ[LOOPBACK_ENV] = "0"  # for Ray's own processes, started from this one
    import ray
    from ray._private import ray_constants

    if ray.is_initialized():
        return None
    if on_loopback(address):
        ray_constants.ENABLE_RAY_CLUSTER = False  # in case Ray was imported before the variable was set
    runtime_env = {"py_modules": [str(PACKAGE_DIR)], "excludes": ["__pycache__", "*.pyc"]}
    common = {"runtime_env": runtime_env, "log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        return ray.init(address=address, **common)
    # "local": a Ray of its own, even where another one already runs on this machine (ray.init() would join it)
    return ray.init(address="local", num_cpus=num_cpus or cpu_threads(), include_dashboard=False, **common)


@dataclass
class GridRun:
    """What ``run_grid`` did: the records by label (stored before or trained now), the labels it
    skipped because their record existed, and the error of each run that failed, by label."""

    records: dict[str, dict] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def train_task(config: ExperimentConfig, name: str, data, threads: int, env: dict[str, str],
               options: dict[str, Any]) -> tuple[dict, bytes | None]:
    """What a worker runs: train ``config`` in the driver's mode (``env``: fast mode, the runs folder)
    with ``threads`` CPU threads, and return (its record, the saved model's bytes if asked for)."""
    configure_threads(threads)
    options = dict(options)
    wants_checkpoint = bool(options.pop("save_checkpoint", None))
    with tempfile.TemporaryDirectory() as tmp:
        # Without the driver's runs folder (a cluster's worker): checkpoints of its own, dropped after the run.
        with mock.patch.dict(os.environ, {RUNS_ENV: tmp, **env}):  # restored after the task
            checkpoint = Path(tmp) / "model.pt" if wants_checkpoint else None
            record = train_record(config, name, data, save_checkpoint=checkpoint, progress=False, **options)
            return record, checkpoint.read_bytes() if checkpoint else None


def _task_env(local: bool) -> dict[str, str]:
    """The driver's mode for its workers: fast mode always; on this machine, also its folders (the
    runs folder, so that checkpoints are where the sequential loop keeps them and an interrupted run
    resumes, and the pretrained weights), which a worker running Ray's copy of the package would
    otherwise look for beside that copy."""
    env = {FAST_ENV: "1" if fast_mode() else "0"}
    if local:
        env[RUNS_ENV] = os.environ.get(RUNS_ENV) or str(RUNS_DIR)
        env[WEIGHTS_ENV] = str(weights_dir())
    return env


def _capacity(cpus_per_task: float, gpus_per_task: float) -> int:
    """How many tasks the cluster runs at once (tasks are submitted as slots free up); an error
    when it cannot run even one (e.g. a GPU per task on a cluster without GPUs)."""
    import ray

    resources = ray.cluster_resources()
    needs = {"CPU": cpus_per_task, "GPU": gpus_per_task}
    slots = [int(resources.get(kind, 0) // n) for kind, n in needs.items() if n]
    if slots and min(slots) < 1:
        have = ", ".join(f"{resources.get(kind, 0):g} {kind}s" for kind in needs)
        raise ValueError(f"a task needs {cpus_per_task:g} CPUs and {gpus_per_task:g} GPUs; the cluster has {have}")
    return min(slots) if slots else 1


def _error(err: BaseException) -> str:
    cause = getattr(err, "cause", None)  # RayTaskError wraps the task's own exception
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


def run_grid(
    study: str,
    grid: dict[str, ExperimentConfig],
    data,
    retrain: bool | None = None,
    cpus_per_task: float = 1,
    gpus_per_task: float = 0,
    max_retries: int = MAX_RETRIES,
    deadline: float | None = None,
    local: bool = True,
    task=train_task,
    progress: bool = True,
    **options: Any,
) -> GridRun:
    """Train the runs of ``grid`` that have no record (all with ``retrain`` or ``$FER_RETRAIN=1``)
    as Ray tasks on the connected cluster (``connect()``; started here if it is not), and write
    their records from this process as they arrive. Fast mode shrinks each config as
    ``run_experiment`` does. ``deadline`` (a ``time.time()``) starts no task after it. ``options``
    go to ``train_record`` (``save_checkpoint``: a path here, written from the returned bytes;
    ``evaluate_test``; ``resume``). ``task`` is what each worker runs (``train_task``'s signature).
    A run that fails is in ``failures``; nothing half-written is ever left in results/."""
    import ray
    from tqdm.auto import tqdm

    connect()
    retrain = retrain_requested() if retrain is None else retrain
    outcome = GridRun()
    todo = []
    for label, config in grid.items():
        config, name = (config.fast() if fast_mode() else config), record_name(study, label)
        if not retrain and (record := stored_record(config, name)) is not None:
            outcome.records[label] = record
            outcome.skipped.append(label)
        else:
            todo.append((label, config, name))
    if not todo:
        return outcome

    slots = _capacity(cpus_per_task, gpus_per_task)
    save_checkpoint = options.get("save_checkpoint")
    remote = ray.remote(task).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries)
    data_ref = ray.put(data)  # once into the object store; every task gets it as an argument
    threads, env = max(1, int(cpus_per_task)), _task_env(local)
    commit = git_commit()
    running = {}  # ref -> (label, name, submitted at)
    bar = tqdm(total=len(todo), desc=f"{study} on Ray", unit="run", disable=not progress)
    try:
        while todo or running:
            while todo and len(running) < slots and not (deadline and time.time() > deadline):
                label, config, name = todo.pop(0)
                running[remote.remote(config, name, data_ref, threads, env, options)] = (label, name, time.time())
            if not running:
                for label, _, _ in todo:
                    bar.write(f"deadline reached; not started: {label}")
                break
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
            for ref in done:
                label, name, _ = running.pop(ref)
                try:
                    record, model_bytes = ray.get(ref)
                except ray.exceptions.RayError as err:
                    outcome.failures[label] = _error(err)
                    bar.write(f"FAILED {label} ({name}): {outcome.failures[label]}")
                else:
                    if model_bytes is not None and save_checkpoint:
                        atomic_write(save_checkpoint, lambda f, b=model_bytes: f.write(b))
                    # The code that ran is this checkout's (Ray's copy of it has no git history).
                    record["environment"]["git_commit"] = commit
                    outcome.records[label] = write_record(name, record)
                    outcome.trained.append(label)
                    val = record["val"]["accuracy"] if record.get("val") else float("nan")
                    bar.write(f"{label!s:50s} val {val:.4f}  {record['wall_seconds']:7.1f} s  {record['device']}")
                bar.update(1)
            if running:
                label, _, since = min(running.values(), key=lambda item: item[2])
                bar.set_postfix_str(f"slowest: {label} ({time.time() - since:.0f} s)", refresh=True)
            else:
                bar.set_postfix_str("")
    except BaseException:  # interrupted (Ctrl-C): stop the tasks; the records written so far stay
        for ref in running:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return outcome
