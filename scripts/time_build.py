"""Time `make install`, `make report` and `make test` from a fresh clone, as a new user runs them.

    python scripts/time_build.py                 # clone HEAD into a temporary folder, time the three targets
    python scripts/time_build.py --busy 1        # ... with one core kept busy by another process
    python scripts/time_build.py --keep DIR      # clone into DIR and keep it (to look at what the report made)

The timings, the machine (CPU model, usable CPUs, native bf16) and the load average seen during each
target are written to results/build_timings.json, which the README's results section renders. The
dataset comes from $FER2013_PATH (or the clone's data/ folder). Each target runs even if one before it
failed; the exit status is that of the first failure.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import fer_utils as fu
from fer_utils.paths import PROJECT_ROOT

TARGETS = ("install", "report", "test")


def _spin() -> None:
    while True:
        pass


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def run_target(clone: Path, target: str, log: Path) -> dict:
    """Run ``make TARGET`` in ``clone``; its wall time, exit status and the load average during it."""
    loads, done = [], threading.Event()

    def sample():
        while not done.wait(10):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    with log.open("w") as out:
        status = subprocess.call(["make", target], cwd=clone, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - began
    done.set()
    return {"target": target, "seconds": seconds, "exit_status": status,
            "mean_load_average": sum(loads) / len(loads) if loads else os.getloadavg()[0], "log": log.name}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=0, help="keep this many cores busy with spinning processes")
    parser.add_argument("--keep", type=Path, default=None, help="clone into this folder and keep it")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--note", default="", help="what else ran on the machine, stored with the timings")
    args = parser.parse_args()

    commit = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, text=True).strip()
    base = args.keep or Path(tempfile.mkdtemp(prefix="fer-build-"))
    clone = base / "fer-course"
    subprocess.check_call(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)])
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        steps = []
        for target in args.targets:
            step = run_target(clone, target, base / f"make-{target}.log")
            steps.append(step)
            print(f"make {target}: {step['seconds'] / 60:.1f} min, exit status {step['exit_status']}, "
                  f"load average {step['mean_load_average']:.1f}", flush=True)
    finally:
        for p in spinners:
            p.terminate()
    record = {
        "what": "wall time of each make target from a fresh clone of the commit, run one after the other",
        "commit": commit, "date": datetime.date.today().isoformat(), "busy_processes": args.busy, "note": args.note,
        "machine": {"cpu": cpu_model(), "usable_cpus": fu.runtime.usable_cpus(),
                    "native_bf16": fu.runtime.cpu_has_bf16()},
        "steps": steps,
    }
    fu.save_json(fu.paths.RESULTS_DIR / "build_timings.json", record)
    print(f"logs in {base}; results/build_timings.json written")
    failed = [s["exit_status"] for s in steps if s["exit_status"]]
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main())
