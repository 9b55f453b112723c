"""The committed notebooks are the report: their Summary sections must state what results/ holds.

As ``scripts/render_readme.py --check`` does for the README, each test recomputes a notebook's key
numbers from the records under results/ and looks for them, formatted as the notebook formats them,
in the rendered output of its Summary cell. A record that changed without a rerun of its notebook fails here.
No notebook is executed: these tests read the committed .ipynb files.
"""

import re

import nbformat
import numpy as np
import pandas as pd
import pytest

import fer_utils as fu

NOTEBOOKS = fu.PROJECT_ROOT / "notebooks"
RESULTS = fu.RESULTS_DIR
EXPERIMENTS = RESULTS / "experiments"


def summary_text(stem: str) -> str:
    """The text the Summary section of ``notebooks/<stem>.ipynb`` displays (its cells' outputs and markdown)."""
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Summary"))
    parts = []
    for cell in nb.cells[start + 1:]:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            break  # the next section (Exercises)
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            parts.append(data.get("text/markdown", "") or data.get("text/plain", "") or out.get("text", ""))
    text = "\n".join(parts)
    assert text.strip(), f"{stem}: the Summary shows nothing; execute the notebook (make report)"
    return re.sub(r"\s+", " ", text)  # line breaks inside a sentence do not matter


def assert_states(stem: str, facts: list[str]) -> None:
    text = summary_text(stem)
    missing = [f for f in facts if f not in text]
    assert not missing, f"{stem}'s Summary does not state {missing}: rerun the notebook (make report)"


def test_01_summary_states_the_audit():
    a = fu.load_json(RESULTS / "data_audit.json")
    assert_states("01_data_exploration", [
        f"{a['n_train']:,} training and {a['n_test']:,} test images",
        f"{a['test_with_train_twin']} of {a['n_test']:,} test images",
        f"({a['deduplicated_test_size']:,} images)",
        f"{a['val_with_fit_twin']} of the {a['val_size']:,} validation images",
    ])


def test_02_summary_states_the_ablation():
    table = {row["augment"]: row for row in fu.load_json(RESULTS / "augmentation_ablation_summary.json")["validation"]}
    assert len(table) == len(fu.POLICIES)
    best = max(table, key=lambda p: table[p]["mean"])
    runner_up = max((p for p in table if p != best), key=lambda p: table[p]["mean"])
    records = fu.course.records.load_study("ablation", fu.course.ablation.augmentation_ablation(), EXPERIMENTS)
    runs = {p: [r["val"]["accuracy"] for r in records.values() if r["config"]["augment"] == p] for p in (best, runner_up)}
    p_value = fu.stats.welch(runs[best], runs[runner_up])
    assert all("clean_train_accuracy" in row for r in records.values() for row in r["history"]), \
        "every ablation record should score training faces without augmentation (the overfitting gap)"
    gap = fu.course.ablation.last_epoch_gap(fu.course.ablation.learning_curves(records))
    assert_states("02_augmentation_ablation", [
        f"*{best}*, {table[best]['mean']:.1%} validation accuracy on average",
        f"beat {table['none']['mean']:.1%} without augmentation",
        f"*{runner_up}* (Welch's p = {p_value:.2f}: {'beyond the noise' if p_value < fu.stats.ALPHA else 'a tie'})",
        f"exceeds validation by {gap['none']:.1%} without augmentation and {gap[best]:.1%} with *{best}*",
    ])


def test_03_summary_states_the_architecture_comparison(real_data):
    records = fu.course.records.load_study("architectures", fu.course.architectures.architecture_comparison(), EXPERIMENTS)
    labels = fu.experiments.full_validation(real_data, fu.course.records.PROXY).labels
    accuracy = {label: r["val"]["accuracy"] for label, r in records.items()}
    found = fu.course.architectures.architecture_findings(accuracy, fu.stats.seed_sd(fu.course.ablation.seed_runs(EXPERIMENTS)).sd, records, labels)
    best, runner_up = found["best"], found["runner_up"]
    assert_states("03_architecture_comparison", [
        f"The MLP reaches {accuracy['MLP']:.1%}",
        f"**{best}** ({accuracy[best]:.1%}",
        f"{runner_up} ({accuracy[runner_up]:.1%}; {fu.course.verdicts.describe_paired(found['best_over_runner_up'])}).",
        f"({fu.course.verdicts.describe_paired(found['pooling'])}).",
        f"report's size reaches {accuracy['residual CNN (report size)']:.1%}",
        f"({fu.course.verdicts.describe_paired(found['skip'])}).",
    ])
    assert all(found[k]["mcnemar p"] is not None for k in ("pooling", "skip", "best_over_runner_up")), \
        "every architecture record should hold its validation predictions (a paired test for each verdict)"
    # Section 1 explains two results in prose ("the depth-2 CNN scores below the MLP", "the plain depth-8 CNN
    # beats the residual CNN of the same size"): both must hold in the records, on both yardsticks.
    below_mlp = fu.course.verdicts.paired_finding(accuracy, "MLP", "plain CNN, depth 2", found["threshold"], records, labels)
    assert below_mlp["verdict"] == "holds" and found["skip"]["verdict"] == "reversed"


def test_04_summary_states_the_final_model_on_the_test_set():
    m = fu.load_json(RESULTS / "final_model_test.json")["metrics"]
    record = fu.load_json(EXPERIMENTS / f"{fu.course.final_model.FINAL_NAME}.json")
    chosen, _ = fu.course.final_model.choose_final_recipe(EXPERIMENTS)
    ci = {k: fu.experiments.with_interval(v) for k, v in m.items()}
    twins = fu.experiments.twin_metrics(m)
    one = {k: fu.experiments.with_interval(v) for k, v in
           fu.load_json(RESULTS / f"{fu.course.final_model.FINAL_ONE_PASS_NAME}.json")["metrics"].items()}

    def interval(k, table=ci):
        return f"[{table[k]['low']:.1%}, {table[k]['high']:.1%}]"

    assert_states("04_final_model", [
        f"{m['test']['accuracy']:.2%} accuracy {interval('test')} and weighted F1 {m['test']['weighted_f1']:.4f} on the full test set",
        f"PrivateTest {m['PrivateTest']['accuracy']:.2%} {interval('PrivateTest')}",
        f"PublicTest {m['PublicTest']['accuracy']:.2%} {interval('PublicTest')}",
        f"({m['deduplicated']['n']:,} images) {m['deduplicated']['accuracy']:.2%} {interval('deduplicated')}",
        f"the {twins['n']:,} test images with a twin in training: {twins['accuracy']:.1%}",
        f"*{chosen}*",
        f"{record['epochs_run']} epochs on all {record['n_train']:,}",
        "**In one pass** (what the real-time pipeline and `predict --no-tta` give)",
        f"{one['test']['accuracy']:.2%} {interval('test', one)} on the full test set",
        f"{one['PrivateTest']['accuracy']:.2%} {interval('PrivateTest', one)} on PrivateTest",
    ])
    found = fu.course.final_model.final_model_findings(m, one, fu.course.final_model.budget_frame(EXPERIMENTS),
                                         fu.stats.difference_threshold(fu.stats.seed_sd(fu.course.ablation.seed_runs(EXPERIMENTS)).sd))
    for which in ("tta", "one_pass"):
        private = found[which]["splits"]["PrivateTest"]
        assert_states("04_final_model", [
            f"{'met' if found[which]['met'] else 'not met'}** (test {found[which]['splits']['test']['accuracy']:.2%} against",
            f"PrivateTest {private['accuracy']:.2%} against {private['target']:.1%}, its interval "
            f"{'reaching' if private['interval_reaches'] else 'below'} it)"])


def test_04_summary_judges_the_single_seed_choices_on_both_yardsticks(real_data):
    labels = fu.experiments.full_validation(real_data, fu.course.final_model.SELECTION).labels
    threshold = fu.stats.difference_threshold(fu.stats.seed_sd(fu.course.ablation.seed_runs(EXPERIMENTS)).sd)
    candidates = fu.course.records.load_study("recipes", fu.course.final_model.final_recipe_candidates(), EXPERIMENTS)
    findings = fu.course.final_model.carried_findings(fu.course.final_model.recipes_frame(EXPERIMENTS), threshold, candidates, labels)
    confirmed = fu.course.final_model.confirmation_frame(EXPERIMENTS)
    records = fu.course.final_model.confirmation_records(EXPERIMENTS)
    test = fu.course.verdicts.paired_test(*(records[label] for label in confirmed.index[:2]), labels)
    gap = confirmed["val accuracy"].iloc[0] - confirmed["val accuracy"].iloc[1]
    assert_states("04_final_model", [
        f"{f['finding']}: {fu.course.verdicts.describe_paired(f)}" for f in findings
    ] + [f"{100 * gap:+.2f} points for *{confirmed.index[0]}* (McNemar p = {test['p_value']:.2g}), "
         f"*{fu.course.verdicts.verdict(gap, threshold, test['p_value'])}*"])


def test_04_summary_states_the_seed_ensemble_and_whether_predict_uses_it():
    study = fu.course.ensemble.validation_record(RESULTS)
    tested = {name: fu.experiments.with_interval(fu.load_json(RESULTS / f"{name}.json")["metrics"]["test"])
              for name in (fu.course.ensemble.TEST_NAME, fu.course.ensemble.ONE_PASS_NAME)}
    tta, one = (fu.stats.format_interval(t["accuracy"], t["low"], t["high"], 2) for t in tested.values())
    gain = study["ensemble"]["accuracy"] - study["member_accuracy"][0]
    p = study["mcnemar_vs_first"]["p_value"]
    assert_states("04_final_model", [
        f"the ensemble scores {study['ensemble']['accuracy']:.2%} against {study['member_accuracy'][0]:.2%} for seed 0 alone",
        f"({100 * gain:+.2f} points, McNemar p = {p:.2g}: *{fu.course.verdicts.verdict(gain, p_value=p)}*)",
        f"gets {tta} of the full test set with TTA and {one} in one pass (95% intervals)",
        "`predict` uses it for photos" if fu.course.ensemble.wins(study) else "`predict` keeps the single model",
    ])


def test_05_summary_states_what_the_model_gets_wrong():
    analysis = fu.load_json(RESULTS / "analysis_final_model.json")
    audit = fu.load_json(RESULTS / "explorer_audit.json")["splits"]["test"]
    top = analysis["most_confused"][0]
    assert_states("05_what_the_model_gets_wrong", [
        f"ECE {analysis['ece']:.3f}",
        f"*{top['true']}* taken for *{top['predicted']}* ({top['count']} faces",
        f"the audit flags {audit['flagged, all mistakes']:.1%} of the {int(audit['mistakes']):,}",
    ])


def test_06_summary_states_the_pipeline_measurements():
    detectors = fu.load_json(RESULTS / "detector_comparison.json")["detectors"]
    real, photo = detectors[fu.faces.DEFAULT_DETECTOR]["real_photos"], detectors[fu.faces.DEFAULT_DETECTOR]["photo"]
    low, high = photo["end_to_end_interval"]
    bench = fu.load_json(RESULTS / "bench_inference.json")
    latency = bench["latency_ms_per_face"]
    targets = fu.course.face_study.pipeline_findings(fu.load_json(RESULTS / "detector_comparison.json"), bench)
    met = sum(t["verdict"] == "met" for t in targets.values())
    assert_states("06_from_photo_to_real_time", [
        f"**Targets:** {met} of {len(targets)} met",
        f"finds {real['found']} of the {real['faces']} hand-drawn faces",
        f"finds {photo['detection_rate']:.1%} [",
        f"right on {photo['end_to_end_accuracy']:.1%} [{low:.1%}, {high:.1%}] (photo)",
        f"{latency['ONNX Runtime fp32, batch 1']:.2f} ms through ONNX Runtime",
        f"({fu.load_json(RESULTS / 'photo_classifier.json')['real_photos']['clear_named_right']} with the model `predict` "
        f"uses, {fu.paths.project_relative(fu.checkpoints.photo_checkpoint())})",
    ])


def test_07_summary_states_the_transfer_comparison():
    arms = {row["arm"]: row for row in fu.load_json(RESULTS / "transfer_summary.json")["comparison"]}
    assert set(arms) == set(fu.course.transfer.TRANSFER_ARMS)
    table = pd.DataFrame(list(arms.values())).set_index("arm")
    records = fu.course.records.load_study("transfer", fu.course.transfer.label_budget(), EXPERIMENTS)
    assert len(records) == len(fu.course.transfer.label_budget()), "the label-budget curve is incomplete: run_study.py transfer"
    noise = fu.course.transfer.transfer_seed_noise(fu.course.records.load_study("transfer", fu.course.transfer.transfer_comparison(), EXPERIMENTS)).sd
    dof = table["runs"] - 1  # notebook 07's table: the arms' variances, pooled
    assert noise == pytest.approx(np.sqrt((table["std"] ** 2 * dof).sum() / dof.sum()))
    gains = fu.course.transfer.pretraining_gains(fu.course.transfer.label_budget_frame(records), noise)
    plain = fu.load_json(EXPERIMENTS / f"{fu.course.records.record_name('recipes', 'plain CNN 8, hflip+shift')}.json")
    found = fu.course.transfer.transfer_findings(table, gains, noise, plain["val"]["accuracy"])
    fine, small = arms["fine-tune all layers"], gains.iloc[0]
    assert_states("07_transfer_learning", [
        f"Against training ONet from scratch** ({arms['from scratch']['mean']:.1%}",
        f"fine-tune all layers {fine['mean']:.1%} ({100 * fine['difference']:+.1f} points, Welch's p = {fine['p_value']:.2g}: "
        f"*{found['verdicts']['fine-tune all layers']}*)",
        f"Beyond the seed noise: {', '.join(found['beat_scratch']) or 'none'}.",
        f"fine-tuning gains {100 * small['gain']:+.1f} points with {small.name:.0%} of the labels "
        f"({small['training faces']:,} faces, {small['seeds']} seeds: *{small['verdict']}*)",
        f"({100 * found['plain_gap']:+.1f} points against {100 * found['plain_threshold']:.1f} of noise: *{found['plain_verdict']}*)",
    ])


SOLUTIONS = fu.PROJECT_ROOT / "solutions"
COMMITTED = (sorted(NOTEBOOKS.glob("*.ipynb")) + sorted(SOLUTIONS.glob("*.ipynb"))
             + sorted(p for p in RESULTS.rglob("*.json") if p.relative_to(RESULTS).parts[0] != "fast"))


@pytest.mark.parametrize("path", COMMITTED,
                         ids=lambda p: str(p.relative_to(fu.PROJECT_ROOT)))
def test_committed_outputs_name_no_path_of_the_machine_and_their_commit(path):
    text = path.read_text()
    leaks = re.findall(r"(?:/work/|/tmp/|/root/|/home/|/Users/|[A-Z]:\\\\Users|PosixPath\()[^\s\"']*", text)
    assert not leaks, f"{path.name} shows absolute paths {leaks[:3]}: print paths relative to the project"
    assert '"git_commit": "HEAD"' not in text  # a record names the commit that made it, or null outside git


SOLUTION_RECORDS = sorted((RESULTS / "experiments").glob("solutions-*.json"))


def test_there_are_solution_records():
    assert {p.name.split("-")[1] for p in SOLUTION_RECORDS} == {"02", "03", "07"}


@pytest.mark.parametrize("path", SOLUTION_RECORDS, ids=lambda p: p.stem)
def test_solutions_show_their_records(path):
    """A worked solution that trains shows the validation accuracy its stored record holds."""
    record = fu.load_json(path)
    [notebook] = SOLUTIONS.glob(f"{path.stem.split('-')[1]}_*_solutions.ipynb")
    nb = nbformat.read(notebook, as_version=4)
    text = " ".join(str(out.get("data", {}).get(kind, "")) for cell in nb.cells for out in cell.get("outputs", [])
                    for kind in ("text/markdown", "text/html"))
    assert f"{record['val']['accuracy']:.2%}" in text, f"{notebook.name} does not show {path.name}: rerun it (make solutions)"
