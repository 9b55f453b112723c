"""Time `make install`, `make report` and `make test` from a fresh clone, as a new user runs them.

    python scripts/time_build.py                 # clone HEAD into a temporary folder, time the three targets
    python scripts/time_build.py --busy 1        # ... with one core kept busy by another process
    python scripts/time_build.py --keep DIR      # clone into DIR and keep it (to look at what the report made)
    python scripts/time_build.py --isa avx2      # as on an AVX2-only CPU: torch and oneDNN may use no AVX-512,
                                                 # so no native bf16 either (training in fp32)
    python scripts/time_build.py --browser-runs 3  # then the browser tests three more times, one after the other

The timings, the machine (CPU model, usable CPUs, native bf16, the ISA limit) and the load average seen
during each target are written to results/build_timings.json, one entry per setting (native or limited ISA,
busy cores), which the README's timings section renders. The
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
# What torch (ATen) and oneDNN are allowed to use, to measure the build as on a CPU without AVX-512.
ISA_LIMITS = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
BROWSER_TESTS = ("tests/test_browser.py", "tests/test_camera_browser.py")


def _spin() -> None:
    while True:
        pass


def run_target(clone: Path, target: str, log: Path, env: dict, command: list[str] | None = None) -> dict:
    """Run ``make TARGET`` (or ``command``) in ``clone``; its wall time, exit status and the load average during it."""
    loads, done = [], threading.Event()

    def sample():
        while not done.wait(10):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    with log.open("w") as out:
        status = subprocess.call(command or ["make", target], cwd=clone, stdout=out, stderr=subprocess.STDOUT, env=env)
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
    parser.add_argument("--isa", choices=sorted(ISA_LIMITS), default="native",
                        help="limit torch and oneDNN to this instruction set (avx2: as on a CPU without AVX-512)")
    parser.add_argument("--browser-runs", type=int, default=0, help="then run the browser tests this many more times")
    args = parser.parse_args()

    commit = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, text=True).strip()
    base = args.keep or Path(tempfile.mkdtemp(prefix="fer-build-"))
    clone = base / "fer-course"
    subprocess.check_call(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)])
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        env = {**os.environ, **ISA_LIMITS[args.isa]}
        steps = []
        for target in args.targets:
            step = run_target(clone, target, base / f"make-{target}.log", env)
            steps.append(step)
            print(f"make {target}: {step['seconds'] / 60:.1f} min, exit status {step['exit_status']}, "
                  f"load average {step['mean_load_average']:.1f}", flush=True)
        browser = [".venv/bin/python", "-m", "pytest", "-q", *BROWSER_TESTS]
        for i in range(args.browser_runs):
            step = run_target(clone, f"browser tests, run {i + 1}", base / f"browser-{i + 1}.log",
                              {**env, "FER_FAST": "1"}, browser)
            steps.append(step)
            print(f"{step['target']}: {step['seconds'] / 60:.1f} min, exit status {step['exit_status']}", flush=True)
    finally:
        for p in spinners:
            p.terminate()
    native_bf16 = subprocess.check_output([sys.executable, "-c", "import fer_utils as fu; print(fu.runtime.cpu_has_bf16())"],
                                          env=env, text=True).strip() == "True"
    run = {
        "setting": f"{args.isa}, {args.busy} busy", "commit": commit, "date": datetime.date.today().isoformat(),
        "busy_processes": args.busy, "note": args.note, "isa": args.isa, "isa_limits": ISA_LIMITS[args.isa],
        "machine": {"cpu": fu.runtime.cpu_model(), "usable_cpus": fu.runtime.usable_cpus(), "native_bf16": native_bf16},
        "steps": steps,
    }
    path = fu.paths.RESULTS_DIR / "build_timings.json"
    runs = [r for r in (fu.load_json(path).get("runs", []) if path.exists() else []) if r["setting"] != run["setting"]]
    fu.save_json(path, {"what": "wall time of each make target from a fresh clone of the commit, run one after the other",
                        "runs": [*runs, run]})
    print(f"logs in {base}; results/build_timings.json written")
    failed = [s["exit_status"] for s in steps if s["exit_status"]]
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main())
