"""Render the README's results section from the records under results/ (never typed by hand).

    python scripts/render_readme.py           # rewrite the section between the markers
    python scripts/render_readme.py --check   # exit 1 if the README is not what the records give
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_utils.course.ablation import seed_runs
from fer_utils.course.face_study import pipeline_findings
from fer_utils.course.final_model import (
    FINAL_NAME,
    budget_frame,
    final_model_findings,
)
from fer_utils.course.summaries import tested_models, with_ci
from fer_utils.paths import PROJECT_ROOT, RESULTS_DIR
from fer_utils.stats import difference_threshold, seed_sd
from fer_utils.storage import load_json

README = PROJECT_ROOT / "README.md"


def _load(path: Path):
    return load_json(path) if path.exists() else None


def render() -> str:
    original = load_json(RESULTS_DIR / "original_report.json")["test"]
    rows = tested_models()
    if not rows:
        return "The final model has not been trained and evaluated yet (`make final-model`, then `make report`).\n"
    tta = load_json(RESULTS_DIR / "experiments" / f"{FINAL_NAME}.json")["config"]["tta"]
    lines = [f"| model | one pass: test | PrivateTest | with TTA (*{tta}*): test | PrivateTest |", "|---|---:|---:|---:|---:|",
             f"| the original report's residual CNN | {original['accuracy']:.2%} | – | – | – |"]
    lines += [f"| {label} | {with_ci(one['test'])} | {with_ci(one['PrivateTest'])} | {with_ci(m['test'])} | "
              f"{with_ci(m['PrivateTest'])} |" for label, m, one in rows]
    shipped = rows[0][1]
    experiments = RESULTS_DIR / "experiments"
    found = final_model_findings(shipped, rows[0][2], budget_frame(experiments),
                                 difference_threshold(seed_sd(seed_runs(experiments)).sd))
    met = sum(s["verdict"] == "met" for which in ("tta", "one_pass") for s in found[which]["splits"].values())
    pipeline = pipeline_findings(load_json(RESULTS_DIR / "detector_comparison.json"), load_json(RESULTS_DIR / "bench_inference.json"))
    met_pipeline = sum(t["verdict"] == "met" for t in pipeline.values())
    lines += [
        "",
        f"Accuracy on FER-2013's {shipped['test']['n']:,} test faces and on PrivateTest, its second half, with 95% Wilson "
        "intervals; *one pass* is what video, the webcam and `predict --no-tta` give. Every choice was made on training or "
        "validation faces, and each model met the test set once (notebook 04). On the "
        f"{shipped['deduplicated']['n']:,} test faces with no exact twin in the training set (notebook 01) the shipped "
        f"model scores {with_ci(shipped['deduplicated'])} with TTA: the honest figure for new faces. Targets met: "
        f"{met} of 4 for the model (notebook 04), {met_pipeline} of {len(pipeline)} for the photo and real-time pipeline "
        "(notebooks 06 and 07). Each chapter's Summary gives the rest.",
        "",
        "![Confusion matrix of the shipped model](figures/05_confusion_matrix.png)",
    ]
    return "\n".join(lines) + "\n"


def timing_lines() -> str:
    """How long the make targets take from a fresh clone (``scripts/time_build.py``'s records, one per setting)."""
    record = _load(RESULTS_DIR / "build_timings.json")
    if record is None or not record.get("runs"):
        return "Build times have not been measured yet: `python scripts/time_build.py --busy 1`.\n"
    lines = []
    for run in record["runs"]:
        machine = run["machine"]
        steps = ", ".join((s["target"] if s["target"].startswith("browser") else f"`make {s['target']}`")
                          + f" {s['seconds'] / 60:.0f} minutes"
                          + (f" (exit status {s['exit_status']})" if s["exit_status"] else "") for s in run["steps"])
        limit = (f", torch and oneDNN limited to {run['isa'].upper()} (as on a CPU without AVX-512: "
                 + ", ".join(f"`{k}={v}`" for k, v in run["isa_limits"].items()) + ")") if run.get("isa_limits") else ""
        busy = (f", with {run['busy_processes']} core{'s' if run['busy_processes'] > 1 else ''} kept busy by another process"
                if run["busy_processes"] else "")
        note = f" ({run['note']})" if run.get("note") else ""
        lines.append(f"- On a {machine['usable_cpus']}-core {machine['cpu']} "
                     f"({'native bf16' if machine['native_bf16'] else 'no native bf16: training in fp32'}){limit}{busy}{note}, "
                     f"commit {run['commit'][:7]}, one after the other: {steps}; mean load average "
                     f"{max(s['mean_load_average'] for s in run['steps']):.1f} at most.")
    return ("Measured from a fresh clone (`scripts/time_build.py`, `results/build_timings.json`); `make report` reuses "
            "the stored records: it executes the notebooks, it does not retrain (`make studies` and `make final-model` "
            "do, in hours).\n\n" + "\n".join(lines) + "\n")


SECTIONS = {"results": render, "timings": timing_lines}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the README is up to date")
    args = parser.parse_args()
    text = README.read_text()
    new = text
    for name, section in SECTIONS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if start not in new or end not in new:
            print(f"README.md lacks the markers {start} and {end}", file=sys.stderr)
            return 1
        head, rest = new.split(start, 1)
        _, tail = rest.split(end, 1)
        new = f"{head}{start}\n{section()}\n{end}{tail}"
    if args.check:
        if new != text:
            print("README.md's rendered sections are out of date: run `make readme`", file=sys.stderr)
            return 1
        print("README.md's rendered sections match results/")
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
