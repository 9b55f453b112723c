"""Render the README's results section from the records under results/ (never typed by hand).

    python scripts/render_readme.py           # rewrite the section between the markers
    python scripts/render_readme.py --check   # exit 1 if the README is not what the records give
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_utils.checkpoints import build_from_spec, photo_checkpoint
from fer_utils.config import DEFAULT_DETECTOR
from fer_utils.course import ensemble
from fer_utils.course.ablation import seed_runs
from fer_utils.course.face_study import pipeline_findings
from fer_utils.course.final_model import (
    CPU_BUDGET_MINUTES,
    CURVE_RULE,
    FINAL_ONE_PASS_NAME,
    FINAL_TEST_NAME,
    budget_frame,
    choose_final_recipe,
    confirmation_frame,
    curve_frame,
    curve_settings,
    final_model_findings,
    recipes_frame,
    refit_follows_curve,
)
from fer_utils.course.records import SEEDS, load_study
from fer_utils.course.targets import FINAL_MODEL_ONE_PASS, FINAL_MODEL_TTA, peak_ms_per_face
from fer_utils.course.transfer import (
    LABEL_FRACTIONS,
    TRANSFER_ARMS,
    label_budget,
    label_budget_frame,
    pretraining_gains,
    transfer_comparison,
    transfer_seed_noise,
)
from fer_utils.course.verdicts import verdict
from fer_utils.experiments import twin_metrics, with_interval
from fer_utils.models import count_flops
from fer_utils.paths import PROJECT_ROOT, RESULTS_DIR
from fer_utils.stats import difference_threshold, format_interval, seed_sd
from fer_utils.storage import load_json

README = PROJECT_ROOT / "README.md"
SPLITS = [("test", "full test set"), ("PrivateTest", "PrivateTest"), ("PublicTest", "PublicTest"),
          ("deduplicated", "no exact twin in the training set")]


def _load(path: Path):
    return load_json(path) if path.exists() else None


def _pct(x) -> str:
    return f"{x:.2%}" if x is not None else "–"


def _interval(m: dict) -> str:
    """An accuracy with its 95% interval, from a subset's metrics with 'low' and 'high'."""
    return format_interval(m["accuracy"], m["low"], m["high"], digits=2)


def _f(x) -> str:
    return f"{x:.4f}" if x is not None else "–"


def render() -> str:
    original = load_json(RESULTS_DIR / "original_report.json")
    final = _load(RESULTS_DIR / "experiments" / "final_model.json")
    evaluation = _load(RESULTS_DIR / f"{FINAL_TEST_NAME}.json")
    one_pass = _load(RESULTS_DIR / f"{FINAL_ONE_PASS_NAME}.json")
    previous = _load(RESULTS_DIR / "previous_model_test.json")
    gpu = _load(RESULTS_DIR / "experiments" / "final_model_gpu.json")
    if final is None or evaluation is None or one_pass is None:
        return "The final model has not been trained and evaluated yet (`make final-model`, then `make report`).\n"
    experiments = RESULTS_DIR / "experiments"
    chosen, _ = choose_final_recipe(experiments)
    metrics, single = evaluation["metrics"], one_pass["metrics"]
    tta = final["config"]["tta"]
    lines = [
        f"The shipped model (`results/final_model.pt`) is *{chosen}* ({final['params'] / 1e6:.1f}M parameters), trained "
        f"for {final['epochs_run']} epochs under *{final['config']['augment']}* on all {final['n_train']:,} training images in "
        f"**{final['train_seconds'] / 60:.0f} minutes on a 2-core CPU**; its recipe, policy, epoch count (the refit-scale "
        f"curve's best, {_pct(final['choice']['val_accuracy'])} on validation) and test-time augmentation (*{tta}*) were "
        "chosen on the deduplicated validation split. Test accuracy is given with that augmentation and in one pass, which is "
        "what the real-time pipeline and `predict --no-tta` give.",
        "",
        f"| test split | images | accuracy, TTA *{tta}* [95% interval] | one pass [95% interval] | weighted F1 (TTA) | "
        "previous model (TTA) | original report: accuracy | weighted F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in SPLITS:
        if key not in metrics:
            continue
        m = with_interval(metrics[key])
        ref = original["test"] if key == "test" else {}
        before = previous["metrics"][key]["accuracy"] if previous else None
        lines.append(f"| {label} | {m['n']:,} | {_interval(m)} | {_interval(with_interval(single[key]))} | "
                     f"{_f(m['weighted_f1'])} | {_pct(before)} | {_pct(ref.get('accuracy'))} | {_f(ref.get('weighted_f1'))} |")
    twins = twin_metrics(metrics)
    lines.append(f"| with an exact twin in the training set | {twins['n']:,} | {_interval(twins)} | "
                 f"{_interval(twin_metrics(single))} | – | "
                 f"{_pct(twin_metrics(previous['metrics'])['accuracy']) if previous else '–'} | – | – |")
    dedup = metrics["deduplicated"]
    lines += [
        "",
        f"The model gets {_pct(twins['accuracy'])} of the {twins['n']} test images that have an exact pixel twin in the "
        f"training set (notebook 01's audit) right, against {_pct(dedup['accuracy'])} of the other {dedup['n']:,}"
        + (": it answers them from memory as much as from the face" if twins["low"] > with_interval(dedup)["high"] else "")
        + f", and disgust's F1 falls from {_f(metrics['test']['f1_disgust'])} to "
        f"{_f(dedup['f1_disgust'])} without them. The deduplicated row is the honest estimate of accuracy on new faces; "
        "intervals are 95% Wilson intervals (`fu.stats`).",
    ]
    recipes, confirmed, curve = recipes_frame(experiments), confirmation_frame(experiments), budget_frame(experiments)
    threshold = difference_threshold(seed_sd(seed_runs(experiments)).sd)
    found = final_model_findings(metrics, single, curve, threshold)
    met, one_met = found["tta"]["met"], found["one_pass"]["met"]
    gap = confirmed["val accuracy"].iloc[0] - confirmed["val accuracy"].iloc[1]
    confirmation = (f"one seed each: {100 * gap:+.2f} points for the chosen one, "
                    + ("beyond" if verdict(gap, threshold) == "holds" else "within")
                    + f" two runs' noise of {100 * threshold:.2f} points")
    lines += [
        "",
        f"The target of {FINAL_MODEL_TTA['test'].value:.1%} on the full test set and {FINAL_MODEL_TTA['PrivateTest'].value:.1%} on "
        f"PrivateTest with TTA, {FINAL_MODEL_ONE_PASS['test'].value:.1%} and {FINAL_MODEL_ONE_PASS['PrivateTest'].value:.1%} in one pass, from at most "
        f"{CPU_BUDGET_MINUTES} minutes of CPU training is **{'met' if met else 'not met'}** with TTA and "
        f"**{'met' if one_met else 'not met'}** in one pass. {len(recipes)} candidates carrying "
        f"the findings of notebooks 02 and 03 scored {_pct(recipes['val accuracy'].min())} to "
        f"{_pct(recipes['val accuracy'].max())} on validation at the proxy budget; the best {len(confirmed)} were trained again "
        f"for {confirmed['epochs'].iloc[0]} epochs ({confirmation}); the budget curve of the chosen one at the proxy's scale "
        f"({', '.join(f'{e} epochs: {_pct(a)}' for e, a in curve['val accuracy'].items())}, one seed per point) fixed the "
        "previous model's epochs, and the curve at the refit's scale below fixes the shipped model's (notebook 04 shows them "
        f"all). The previous model is {previous['description'] if previous else 'not recorded'}.",
    ]
    refit_curve = curve_frame(experiments)
    if len(refit_curve):
        follows = refit_follows_curve(final, experiments)
        settings = curve_settings(refit_curve)
        chosen = follows["now"]
        lines += [
            "",
            "The budget curve at the refit's scale (the whole fitting part; notebook 04), mean validation accuracy over seeds: "
            + "; ".join(f"*{policy}* " + ", ".join(
                f"{r['epochs']} epochs {_pct(r['val_accuracy'])} ({r['minutes']:.0f} min"
                + (f", {r['seeds']} seeds)" if r["seeds"] > 1 else ")") for _, r in runs.iterrows())
                for policy, runs in settings.groupby("augment", sort=False))
            + f". The rule, {CURVE_RULE} (seed sd {100 * chosen['seed_sd']:.2f} points), picks *{chosen['augment']}, "
            f"{chosen['epochs']} epochs* (the best mean: *{chosen['best_mean']['augment']}, {chosen['best_mean']['epochs']} epochs*). "
            + ("The shipped model has that setting." if follows["current"] else
               "The shipped model has the setting the curve gave when it was refit; the next refit (`make final-model`) takes the new one."),
        ]
    if gpu is not None:
        lines += [
            "",
            f"An earlier record, not shipped as the default: the same code on a GPU ({gpu['environment'].get('cuda_device')}), "
            f"a {gpu['params'] / 1e6:.1f}M-parameter residual CNN for {gpu['epochs_run']} epochs on 70% of the training images "
            f"in {gpu['train_seconds'] / 60:.1f} minutes: {_interval(with_interval(gpu['test']['test']))} on the full test set, "
            f"{_interval(with_interval(gpu['test']['PrivateTest']))} on PrivateTest (checkpoint `results/final_model_gpu.pt`).",
        ]
    lines += ensemble_lines(tta)
    lines += ["", "![Confusion matrix of the final model](figures/05_confusion_matrix.png)",
              "![Validation accuracy against CPU minutes at the refit's scale](figures/04_refit_scale_curve.png)", ""]
    lines += realtime_lines() + transfer_lines()
    return "\n".join(lines)


def ensemble_lines(tta: str) -> list[str]:
    """Notebook 04's seed ensemble: judged on validation, tested once, and whether ``predict`` uses it."""
    study = _load(RESULTS_DIR / f"{ensemble.VALIDATION_NAME}.json")
    tested, one_pass = (_load(RESULTS_DIR / f"{name}.json") for name in (ensemble.TEST_NAME, ensemble.ONE_PASS_NAME))
    if study is None or tested is None or one_pass is None:
        return []
    first, vs_first = study["member_accuracy"][0], study["mcnemar_vs_first"]
    gain = study["ensemble"]["accuracy"] - first
    k = study["members"]

    def seeds(numbers) -> str:
        numbers = [str(n) for n in numbers]
        return f"seed{'s' if len(numbers) > 1 else ''} " + (" and ".join([", ".join(numbers[:-1]), numbers[-1]])
                                                          if len(numbers) > 1 else numbers[0])
    use = ("`predict` uses it for photos; `video` and `webcam` keep the single model." if photo_checkpoint() == ensemble.ENSEMBLE_PATH
           else "It does not pay on validation, so `predict` keeps the single model.")
    return ["", f"**Seeds, averaged** (notebook 04, `{ensemble.ENSEMBLE_PATH.relative_to(PROJECT_ROOT)}`): on the "
            f"validation split, {k} members trained on the fitting split from {seeds(range(k))} "
            f"score {_pct(study['ensemble']['accuracy'])} averaged against {_pct(first)} for seed 0 alone "
            f"({100 * gain:+.2f} points, McNemar p = {vs_first['p_value']:.2g}: {verdict(gain, p_value=vs_first['p_value'])}). "
            f"The shipped ensemble, the shipped model (seed 0) with its config refit from {seeds(range(1, k))}, gets {_interval(with_interval(tested['metrics']['test']))} of the full test set with TTA "
            f"*{tta}* ({_interval(with_interval(tested['metrics']['PrivateTest']))} on PrivateTest) and "
            f"{_interval(with_interval(one_pass['metrics']['test']))} in one pass, for {k} times the arithmetic "
            f"per face. {use}"]


def realtime_lines() -> list[str]:
    """Notebook 06's answers: the detectors compared, and the benchmark record, each speed beside its accuracy."""
    bench, comparison = _load(RESULTS_DIR / "bench_inference.json"), _load(RESULTS_DIR / "detector_comparison.json")
    if bench is None or comparison is None:
        return []
    detectors = comparison["detectors"]
    ours, haar = detectors[DEFAULT_DETECTOR], detectors["haar"]
    real, photo, video = ours["real_photos"], ours["photo"], ours["video"]

    def pct_interval(value: float, ci: list) -> str:
        return format_interval(value, *ci, digits=2)

    faces = (f"**Faces first** (notebook 06): the default detector, {DEFAULT_DETECTOR}, finds {real['found']} of the "
             f"{real['faces']} faces drawn by hand in the course's real-photo set (the Haar cascade: {haar['real_photos']['found']}), "
             f"with {real['false_faces_on_face_free_photos']} false faces on {real['face_free_photos']} face-free photos "
             f"(Haar: {haar['real_photos']['false_faces_on_face_free_photos']}), and the pipeline names "
             f"{real['clear_named_right']} of its {real['clear_expressions']} clear expressions as a person would. On "
             f"{photo['faces']:,} test faces pasted into photos it finds {pct_interval(photo['detection_rate'], photo['detection_interval'])} "
             f"(Haar {pct_interval(haar['photo']['detection_rate'], haar['photo']['detection_interval'])}), and the pipeline "
             "is right end to end on "
             f"{pct_interval(photo['end_to_end_accuracy'], photo['end_to_end_interval'])}, a missed face counting as an error, "
             f"against {_pct(photo['direct_accuracy'])} for FER-2013's own crops of the same faces (95% intervals).")
    photo_run = _load(RESULTS_DIR / "photo_classifier.json")
    if photo_run is not None:
        faces += (f" Through the model `predict` uses (`{photo_checkpoint().relative_to(PROJECT_ROOT)}`), "
                  f"{photo_run['real_photos']['clear_named_right']} of the {photo_run['real_photos']['clear_expressions']} "
                  "clear expressions are named as a person would, and the pasted faces are right end to end on "
                  f"{pct_interval(photo_run['photo']['end_to_end_accuracy'], photo_run['photo']['end_to_end_interval'])}.")
    ms = bench["latency_ms_per_face"]
    tracked = bench["pipeline"]["detect every 3rd frame, 320x240, track between"]
    every = bench["pipeline"]["detect every frame, 320x240"]
    int8 = bench.get("int8")
    load = f"{bench['cpu']}, load average {bench['load_average_before'][0]:.1f} on {bench['environment']['cpu_count']} cores"
    quartiles = bench["latency_quartiles_ms_per_face"]

    def latency(name: str) -> str:
        return f"{ms[name]:.2f} ms [{quartiles[name][0]:.2f}, {quartiles[name][1]:.2f}]"

    found = pipeline_findings(comparison, bench)  # frame rates over the whole video, not one frame
    flops = count_flops(build_from_spec(bench["model"]))
    fastest, slowest = peak_ms_per_face(flops)

    def fps(run: dict, target: str) -> str:
        q1, q3 = run["ms_per_frame_quartiles"]
        return (f"{run['fps']:.0f} frames per second ({run['ms_per_frame']:.1f} ms per frame on average, single frames "
                f"[{q1:.1f}, {q3:.1f}]; target {found[target]['target']:.0f} fps: {found[target]['verdict']})")

    text = (f"**Real time** (notebook 06, `results/bench_inference.json`, one CPU thread, {load}; medians with their "
            "interquartile range in brackets): the classifier takes "
            f"{latency('ONNX Runtime fp32, batch 1')} per face through ONNX Runtime in fp32 "
            f"(torch: {latency('torch fp32, batch 1')}; no per-face target: its {flops / 1e6:.0f} MFLOPs a face take "
            f"{fastest:.1f}-{slowest:.1f} ms even at one core's fp32 peak, so real time is judged on the whole pipeline's "
            "frame rate, `fu.course.targets`)")
    if int8:
        text += (f" and {latency('ONNX Runtime int8, batch 1')} quantized to int8, at a test accuracy of "
                 f"{_interval(with_interval({'accuracy': int8['accuracy_int8'], 'n': int8['n']}))} against "
                 f"{_interval(with_interval({'accuracy': int8['accuracy_fp32'], 'n': int8['n']}))} in fp32 (no TTA; "
                 "`--backend onnxruntime-int8` in `predict`, `video` and `webcam`)")
    text += (f". On a 640x480 video with one face, detecting on every frame shrunk to 320x240 (the video setting, which finds "
             f"{pct_interval(video['detection_rate'], video['detection_interval'])} of the pasted test faces and is right end "
             f"to end on {pct_interval(video['end_to_end_accuracy'], video['end_to_end_interval'])}), the whole pipeline runs at {fps(every, 'fps, detecting every frame (video setting)')}; detecting "
             f"every 3rd frame and tracking in between, at {fps(tracked, 'fps, detecting every third frame and tracking')}, with at best the same accuracy.")
    return [faces, "", text, ""]


def transfer_lines() -> list[str]:
    """Notebook 07's answers, from the transfer-learning records (validation accuracy only)."""
    import numpy as np

    experiments = RESULTS_DIR / "experiments"
    comparison = load_study("transfer", transfer_comparison(), experiments)
    curve = load_study("transfer", label_budget(), experiments)
    if len(comparison) < len(transfer_comparison()) or len(curve) < len(label_budget()):
        return []
    mean = {arm: np.mean([comparison[f"{arm}, seed {s}"]["val"]["accuracy"] for s in SEEDS]) for arm in TRANSFER_ARMS}
    gains = pretraining_gains(label_budget_frame(curve), transfer_seed_noise(comparison).sd)
    small, large = gains.loc[LABEL_FRACTIONS[0]], gains.loc[LABEL_FRACTIONS[-1]]

    def judged(g) -> str:
        test = f"{g['seeds']} seeds, Welch's p = {g['p_value']:.2g}" if g["test"] == "Welch" else "one seed"
        return f"{test}: {g['verdict']}"

    return [f"**Transfer learning** (notebook 07, validation accuracy, mean of {len(SEEDS)} seeds): MTCNN's ONet, a face "
            f"detector's network pretrained on faces, fine-tuned reaches {_pct(mean['fine-tune all layers'])} against "
            f"{_pct(mean['from scratch'])} from scratch at the course's proxy budget; a linear probe on its frozen features "
            f"only {_pct(mean['linear probe (frozen features)'])}. Pretraining pays most when labels are few: "
            f"{(100 * small['gain']):+.1f} points with {small.name:.0%} of the labels ({small['training faces']:,} faces; "
            f"{judged(small)}), {(100 * large['gain']):+.1f} with all of them ({judged(large)}), every share of the labels "
            "trained for the proxy's optimiser steps or more.", ""]


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
