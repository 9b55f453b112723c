"""Each chapter's Summary, as Markdown made from the study's records in results/.

A notebook's Summary cell displays ``chapter_NN()``; ``tests/test_notebook_summaries.py`` calls the same
function and compares its Markdown with the committed output word for word, so a record that changes
without a rerun of its notebook fails the tests, and no sentence of a Summary can go stale unchecked. The
Summaries read the committed records (``RESULTS_DIR``), also in fast mode: fast mode checks that the
notebooks run, not what they conclude.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..checkpoints import load_model, photo_checkpoint
from ..data import FER2013, load_fer2013
from ..experiments import full_validation, records_frame, twin_metrics, with_interval
from ..faces import ALIGNED_MARGIN, DEFAULT_DETECTOR, DEFAULT_FRAMING, EQUALIZE
from ..models import build_model, count_flops, count_parameters
from ..paths import RESULTS_DIR, project_relative
from ..realtime import VIDEO_DETECTION
from ..stats import (
    difference_threshold,
    format_interval,
    mcnemar_from_counts,
    seed_sd,
    seed_sd_interval,
)
from ..storage import load_json
from ..train import CLEAN_TRAIN_SAMPLE
from . import (
    ablation,
    architectures,
    distillation,
    ensemble,
    face_study,
    final_model,
    levers,
    own_faces,
    transfer,
)
from .records import PROXY, load_study, record_name
from .targets import PHOTO_PIPELINE, REAL_TIME
from .verdicts import describe_paired, judged_views, paired_finding, paired_test, verdict


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _points(difference: float) -> str:
    """A difference of accuracies, in points: '+1.2 points'."""
    return f"{100 * difference:+.1f} points"


def best_phrase(best: str, runner_up: str, verdict: str) -> str:
    """'best' where the best-vs-runner-up verdict holds, else 'tied best (with the runner-up)'."""
    return f"**{best}** is best" if verdict == "holds" else f"**{best}** is tied best with {runner_up}"


def chapter_01(directory: Path = RESULTS_DIR) -> str:
    """Notebook 01: the data audit (results/data_audit.json)."""
    a = load_json(Path(directory) / "data_audit.json")
    shares = pd.DataFrame(a["class_shares"])
    most = (shares["leaked test images"] - shares["other test images"]).idxmax()
    return _bullets([
        f"**Size:** {a['n_train']:,} training and {a['n_test']:,} test images; the class shares are nearly equal across "
        "train, PublicTest and PrivateTest.",
        f"**Imbalance:** the largest training class is {a['imbalance_ratio']:.1f}x the smallest (*happy* vs *disgust*), so "
        "accuracy alone hides how rare classes fare: we report macro and weighted F1 too.",
        f"**Duplicates:** {a['exact_images_in_groups']:,} images sit in exact-copy groups; "
        f"{a['exact_groups'].get('train and test', 0)} groups span train and test, and {a['conflicting_label_groups']} groups "
        "carry conflicting labels, a floor on the label noise.",
        f"**Blank images:** {a['near_constant_images']} near-constant images carry a label but no face.",
        f"**Leakage:** {a['test_with_train_twin']} of {a['n_test']:,} test images ({a['test_with_train_twin'] / a['n_test']:.1%}) "
        f"have an exact twin in the training set. The deduplicated test set ({a['deduplicated_test_size']:,} images) is the "
        f"honest measure; notebook 04 reports the final model on both. The leaked images over-represent *{most}* "
        f"({shares.loc[most, 'leaked test images']:.1%} of them against {shares.loc[most, 'other test images']:.1%} of the others).",
        f"**Validation leakage:** {a['val_with_fit_twin']} of the {a['val_size']:,} validation images have an exact twin in the "
        f"fitting part of the 70/30 split; the final model's recipe is chosen on the other {a['deduplicated_val_size']:,}.",
        f"**Near-duplicates:** {a['near_duplicate_groups']} more groups share a perceptual hash without being identical.",
    ])


def chapter_02(directory: Path = RESULTS_DIR) -> str:
    """Notebook 02: the augmentation ablation (its records in ``directory``/experiments)."""
    records = load_study("ablation", ablation.augmentation_ablation(), Path(directory) / "experiments")
    frame = records_frame(list(records.values()))
    table = ablation.compare_to_baseline(frame, "augment", "val_accuracy", baseline="none")
    found = ablation.ablation_findings(frame, table)
    best, runner_up, weakest = found["best"], found["runner_up"], found["weakest"]
    curves = ablation.learning_curves(records)
    gap, batch_gap = ablation.last_epoch_gap(curves), ablation.last_epoch_gap(curves, "train_accuracy")
    n_train = next(iter(records.values()))["n_train"]

    def listed(policies: dict) -> str:
        return ", ".join(f"*{p}* ({_points(v)})" for p, v in policies.items()) or "none"

    tie = not found["best_beyond_noise"]
    return _bullets([
        f"**Claim: \"augmentation (rotations, flips) had minimal impact.\"** {'Refuted' if found['helps'] else 'It holds'} at "
        f"this budget: policies that beat {table.loc['none', 'mean']:.1%} without augmentation beyond the seed noise (Welch's "
        f"p < 0.05; one run's sd {100 * found['seed_sd']:.2f} points): {listed(found['helps'])}. Policies that hurt: "
        f"{listed(found['hurts'])}.",
        f"**{'Tied best' if tie else 'Best'} policy:** *{best}*, {table.loc[best, 'mean']:.1%} validation accuracy on average, "
        f"against {table.loc[runner_up, 'mean']:.1%} for *{runner_up}* (Welch's p = {found['best_p']:.2f}: "
        f"{'a tie, so either would do' if tie else 'beyond the noise'}). The weakest is *{weakest}* "
        f"({_points(table.loc[weakest, 'difference'])} over none).",
        f"**Overfitting:** in the last epoch, accuracy on {CLEAN_TRAIN_SAMPLE:,} of the {n_train:,} training faces, scored "
        f"without augmentation, exceeds validation by {_points(gap['none'])[1:]} without augmentation and "
        f"{_points(gap[best])[1:]} with *{best}*. Scored on the augmented batches it trained on, as `fit` logs them, the "
        f"gaps read {_points(batch_gap['none'])[1:]} and {_points(batch_gap[best])[1:]}"
        f"{': the harder batches hide part of what the model memorised' if batch_gap[best] < gap[best] else ''}.",
        "**Caveat:** a proxy budget (half the data, 10 epochs); stronger policies may pay with longer training, which "
        "notebook 04's refit-scale curve checks.",
    ])


def chapter_03(data: FER2013 | None = None, directory: Path = RESULTS_DIR) -> str:
    """Notebook 03: the architecture comparison (its records, the strided variant of solution 03, and the
    latencies notebook 03 measured, results/latency.json); ``data`` gives the validation faces' labels."""
    experiments = Path(directory) / "experiments"
    grid = architectures.architecture_comparison()
    records = load_study("architectures", grid, experiments)
    accuracy = {label: r["val"]["accuracy"] for label, r in records.items()}
    params = {label: r["params"] for label, r in records.items()}
    latency = load_json(Path(directory) / "latency.json")["cpu_latency_ms"]
    noise = seed_sd(ablation.seed_runs(experiments)).sd
    labels = full_validation(data or load_fer2013(), PROXY).labels
    found = architectures.architecture_findings(accuracy, noise, records, labels)
    deeper = found["deeper_plain"]
    deeper_params = [params[f"plain CNN, depth {d}"] for d in deeper]
    flops = {label: r["flops"] for label, r in records.items()}
    ratio = {kind: flops[full] / flops[early] for kind, full, early in [
        ("plain", "plain CNN, depth 6", "plain CNN, depth 6, early downsampling"),
        ("residual", "residual CNN (report size)", "residual CNN, early downsampling")]}
    strided = load_json(experiments / f"{record_name('solutions-03', 'plain CNN 8, strided convolutions')}.json")
    strided_vs_pooling = paired_finding({"strided": strided["val"]["accuracy"], **accuracy}, "strided", "plain CNN, depth 8",
                                        found["threshold"], {"strided": strided, **records}, labels)
    final = load_json(experiments / "final_model.json")["config"]
    final_arch = next(k for k, c in grid.items() if (c.model, c.model_kwargs) == (final["model"], final["model_kwargs"]))
    best, runner_up = found["best"], found["runner_up"]
    holds = {True: "holds", False: "not reproduced"}
    claim = {"holds": "holds", "tie": "not shown (a tie)", "reversed": "reversed"}
    return (
        f"One seed per model. Two single runs are told apart beyond 2√2 × one run's seed sd ({100 * noise:.2f} points, "
        f"notebook 02) = {100 * found['threshold']:.2f} points, and, since every run is scored on the same {len(labels):,} "
        "validation faces, by McNemar's test on the faces only one of the two gets right (p < 0.05): a verdict needs both.\n"
        + _bullets([
            f"**\"An MLP on flattened pixels hits a low ceiling\":** {holds[found['mlp_below_deeper_plain']]}. The MLP reaches "
            f"{accuracy['MLP']:.1%} with {params['MLP']:,} parameters; plain CNNs of depth 4 and more reach "
            f"{min(deeper.values()):.1%} to {max(deeper.values()):.1%} with {min(deeper_params):,} to {max(deeper_params):,}.",
            f"**\"Models that downsample early got stuck at 30-40%\":** {holds[found['early_stuck']]}. Early downsampling "
            f"(48x48 to 12x12 before the first block) gives {found['early']['plain']:.1%} for the plain CNN (vs "
            f"{accuracy['plain CNN, depth 6']:.1%} without) and {found['early']['residual']:.1%} for the residual CNN (vs "
            f"{accuracy['residual CNN (report size)']:.1%}), with {ratio['plain']:.0f}x and {ratio['residual']:.0f}x fewer "
            "FLOPs. Our models have batch normalisation; the report's may not.",
            f"**\"Average vs max pooling\":** max {accuracy['plain CNN, depth 6']:.1%}, average "
            f"{accuracy['plain CNN, depth 6, avg pooling']:.1%} ({describe_paired(found['pooling'])}).",
            f"**Pooling or strided convolutions** (exercise 1's solution): strided convolutions in the plain depth-8 CNN "
            f"score {strided['val']['accuracy']:.1%} against {accuracy['plain CNN, depth 8']:.1%} with max pooling "
            f"({describe_paired(strided_vs_pooling)}).",
            f"**Depth:** plain CNNs by depth: {', '.join(f'{d}: {a:.1%}' for d, a in found['depths'].items())}.",
            f"**\"Skip connections helped most\":** {claim[found['skip']['verdict']]} at this budget: the residual CNN of the "
            f"report's size reaches {accuracy['residual CNN (report size)']:.1%}, the plain CNN of depth "
            f"{found['best_plain_depth']} {found['depths'][found['best_plain_depth']]:.1%} ({describe_paired(found['skip'])}).",
            f"**Overall,** {best_phrase(best, runner_up, found['best_over_runner_up']['verdict'])} ({accuracy[best]:.1%}, "
            f"{params[best] / 1e6:.1f}M parameters, against {accuracy[runner_up]:.1%} for {runner_up}; "
            f"{describe_paired(found['best_over_runner_up'])}).",
            f"**Cost:** {best} takes {latency[best]:.1f} ms per image on the CPU that ran this notebook, one image at a time, "
            f"and {runner_up} {latency[runner_up]:.1f} ms; "
            + ("notebook 04's final model has this architecture." if final_arch == best else
               f"the final model of notebook 04 is a {final_arch} ({latency[final_arch]:.1f} ms)."),
        ]))


def _tested(directory: Path, name: str) -> dict:
    """An ``evaluate_checkpoint`` record's metrics by split, each with its interval; the twins' row added."""
    metrics = load_json(Path(directory) / f"{name}.json")["metrics"]
    return {k: with_interval(v) for k, v in metrics.items()} | {"twins": twin_metrics(metrics)}


def with_ci(m: dict) -> str:
    """A subset's accuracy (``evaluate_checkpoint``'s metrics: 'accuracy', 'n') with its 95% interval:
    '66.66% [65.56%, 67.74%]'."""
    m = with_interval(m)
    return format_interval(m["accuracy"], m["low"], m["high"], 2)


def chapter_04(data: FER2013 | None = None, directory: Path = RESULTS_DIR) -> str:
    """Notebook 04: the final model's recipe, budget, refit and test (its records, the seed ensemble's and
    the original report's); ``data`` gives the validation faces' labels."""
    directory = Path(directory)
    experiments = directory / "experiments"
    record = load_json(experiments / f"{final_model.FINAL_NAME}.json")
    tta = record["config"]["tta"]
    tested, single = _tested(directory, final_model.FINAL_TEST_NAME), _tested(directory, final_model.FINAL_ONE_PASS_NAME)
    previous = load_json(directory / "previous_model_test.json")["metrics"]["test"]
    original = load_json(directory / "original_report.json")["test"]
    noise = seed_sd(ablation.seed_runs(experiments))
    threshold = float(difference_threshold(noise.sd))
    sd_low, sd_high = seed_sd_interval(noise)
    labels = full_validation(data or load_fer2013(), final_model.SELECTION).labels
    metrics = load_json(directory / f"{final_model.FINAL_TEST_NAME}.json")["metrics"]
    found = final_model.final_model_findings(metrics, load_json(directory / f"{final_model.FINAL_ONE_PASS_NAME}.json")["metrics"],
                                             final_model.budget_frame(experiments), threshold)
    chosen, _ = final_model.choose_final_recipe(experiments)
    candidates = load_study("recipes", final_model.final_recipe_candidates(), experiments)
    carried = "; ".join(f"{f['finding']}: {describe_paired(f)}" for f in final_model.carried_findings(
        final_model.recipes_frame(experiments), threshold, candidates, labels))
    confirmed = final_model.confirmation_frame(experiments)
    confirmation_records = final_model.confirmation_records(experiments)
    confirm = paired_test(*(confirmation_records[label] for label in confirmed.index[:2]), labels)
    gap = confirmed["val accuracy"].iloc[0] - confirmed["val accuracy"].iloc[1]
    confirmation = verdict(gap, threshold, confirm["p_value"])
    at_the_top = verdict(gap, float(difference_threshold(sd_high)), confirm["p_value"])
    ranked = final_model.curve_frame(experiments).sort_values("val accuracy", ascending=False)
    curve_records = load_study("curve", final_model.refit_scale_curve(), experiments)
    finalists = list(ranked.index[:2])
    paired = paired_test(curve_records[finalists[0]], curve_records[finalists[1]], labels)
    curve_gap = ranked["val accuracy"].iloc[0] - ranked["val accuracy"].iloc[1]
    follows = final_model.refit_follows_curve(record, experiments)
    now = follows["now"]
    study = ensemble.validation_record(directory)
    vs_first = study["mcnemar_vs_first"]
    ensemble_gain = study["ensemble"]["accuracy"] - study["member_accuracy"][0]
    ensemble_test, ensemble_once = (_tested(directory, name)["test"] for name in (ensemble.TEST_NAME, ensemble.ONE_PASS_NAME))
    cost = count_flops(load_model(directory / ensemble.ENSEMBLE_PATH.name)) / count_flops(load_model(directory / "final_model.pt"))

    def targets(which: str) -> str:
        result = found[which]
        return f"**{'met' if result['met'] else 'not met'}** (" + ", ".join(
            f"{split} {s['accuracy']:.2%} against {s['target']:.1%}, its interval {'reaching' if s['interval_reaches'] else 'below'} it"
            for split, s in result["splits"].items()) + ")"

    t = tested
    return _bullets([
        f"**The shipped model:** {with_ci(t['test'])} accuracy and weighted F1 {t['test']['weighted_f1']:.4f} on the full test set "
        f"with test-time augmentation *{tta}* (previous model {previous['accuracy']:.2%}, original report {original['accuracy']:.2%}); "
        f"PrivateTest {with_ci(t['PrivateTest'])}, PublicTest {with_ci(t['PublicTest'])}, deduplicated test set "
        f"({t['deduplicated']['n']:,} images) {with_ci(t['deduplicated'])}; the {t['twins']['n']:,} test images with a twin in "
        f"training: {t['twins']['accuracy']:.1%} (95% intervals). **In one pass** (what the real-time pipeline and "
        f"`predict --no-tta` give): {with_ci(single['test'])} on the full test set and {with_ci(single['PrivateTest'])} on PrivateTest.",
        f"**The targets**, from at most {final_model.CPU_BUDGET_MINUTES} CPU minutes: with TTA {targets('tta')}; in one pass "
        f"{targets('one_pass')}.",
        f"**How it was made:** *{chosen}*, {record['epochs_run']} epochs on all {record['n_train']:,} training images under "
        f"*{record['config']['augment']}*, {record['train_seconds'] / 60:.0f} minutes on {record['environment']['cpu_count']} CPU "
        f"cores ({record['train_precision']} training, fp32 evaluation); policy and epochs are the refit-scale curve's choice on "
        "validation.",
        f"**What carried over from notebooks 02 and 03** (one seed each: beyond noise means more than 2√2 seed sd = "
        f"{100 * threshold:.2f} points and McNemar's p < 0.05 on the same validation faces): {carried}. The confirmation at "
        f"{confirmed['epochs'].iloc[0]} epochs: {_points(gap)} for *{chosen}* (McNemar p = {confirm['p_value']:.2g}), "
        f"*{confirmation}*; the seed sd is itself an estimate ({100 * noise.sd:.2f} points, 95% interval "
        f"{100 * sd_low:.2f}-{100 * sd_high:.2f} from {noise.dof} degrees of freedom), and at its upper end the verdict "
        f"{'is the same' if at_the_top == confirmation else f'would be *{at_the_top}*'}.",
        f"**Budget:** the proxy curve's longest budget gains {_points(found['budget_last_gain'])} (*{found['budget_verdict']}*). At "
        f"the refit's scale, the two best runs (*{finalists[0]}* against *{finalists[1]}*) are "
        f"*{verdict(curve_gap, threshold, paired['p_value'])}* (McNemar p = {paired['p_value']:.2g}), and the rule "
        f"({final_model.CURVE_RULE}) picks *{now['augment']}, {now['epochs']} epochs* ({now['val_accuracy']:.1%}, {now['seeds']} "
        f"seed{'s' if now['seeds'] > 1 else ''}). "
        + ("The shipped model has that setting." if follows["current"] else
           "The shipped model has the setting the rule gave when it was refit; the next refit takes the new one."),
        f"**Seeds, averaged** (section 5): on validation the ensemble scores {study['ensemble']['accuracy']:.2%} against "
        f"{study['member_accuracy'][0]:.2%} for seed 0 alone ({_points(ensemble_gain)}, McNemar p = {vs_first['p_value']:.2g}: "
        f"*{verdict(ensemble_gain, p_value=vs_first['p_value'])}*); the shipped ensemble gets {with_ci(ensemble_test)} of the "
        f"full test set with TTA and {with_ci(ensemble_once)} in one pass, for {cost:.0f} times the arithmetic per face. "
        + ("`predict` uses it for photos; real time keeps the single model." if ensemble.wins(study) else
           "It is not worth its cost: `predict` keeps the single model."),
        *_distillation_lines(directory),
        *_lever_lines(directory),
        "**The test set** was used once per model: the shipped model (section 4), the ensemble (section 5)"
        + (", the distilled refit (section 6)" if len(tested_models(directory)) == 3 else "")
        + ", each after every choice was made on validation. **Next:** notebook 05 looks inside the mistakes.",
    ])


def _lever_lines(directory: Path) -> list[str]:
    """Notebook 04, section 7: each lever against the teachers on validation (``levers.LEVERS``, those whose record
    has both seeds), and whether any ships."""
    studies = {lever: load_json(path) for lever in levers.LEVERS.values()
               if (path := directory / f"{lever.validation_name}.json").exists()}
    studies = {lever: study for lever, study in studies.items() if study.get("seeds") == list(levers.SEEDS)}
    if not studies:
        return []

    def gain(study: dict, view: str) -> str:
        g = study[view]["mean gain"]
        why = (f": past the noise, but McNemar p {' and '.join(f'{p:.2g}' for p in g['p_values'])}"
               if g["verdict"] == "tie" and abs(g["difference"]) > study["threshold"] else "")
        return f"{view} {_points(g['difference'])} (*{g['verdict']}*{why})"

    def gains(lever: levers.Lever, study: dict) -> str:
        return f"{lever.name} ({lever.label}): " + ", ".join(
            gain(study, view) for view in sorted(judged_views(study), key=lambda v: v != "one pass"))

    threshold = next(iter(studies.values()))["threshold"]
    shipped = [lever.name for lever, study in studies.items() if lever.ships(study)]
    return [f"**Levers** (section 7, validation, mean gains over seeds {' and '.join(map(str, levers.SEEDS))} against "
            f"two-seed noise of {100 * threshold:.2f} points): " + "; ".join(gains(*item) for item in studies.items()) + ". "
            + (f"By the rules fixed before the runs, {' and '.join(shipped)} moves into the next refit." if shipped else
               "By the rules fixed before the runs (each must hold in one pass), the shipped setting stays.")]


def _distillation_lines(directory: Path) -> list[str]:
    """Notebook 04, section 6: the students against their teachers on validation (``distill_validation.json``,
    once both seeds are in), and whether the distilled refit ships."""
    path = directory / f"{distillation.VALIDATION_NAME}.json"
    study = load_json(path) if path.exists() else {}
    if study.get("seeds") != list(distillation.SEEDS):
        return []
    one, tta = study["one pass"], study[next(mode for mode in study if mode.startswith("TTA"))]

    def gain(mode: dict) -> str:
        g = mode["mean gain"]
        return (f"{_points(g['difference'])} (McNemar p {' and '.join(f'{p:.2g}' for p in g['p_values'])} for the two "
                f"seeds; two-seed noise {100 * study['threshold']:.2f} points): *{g['verdict']}*")

    students = [f"{m['accuracy']:.2%}" for name, m in one["accuracy"].items() if name.startswith("student")]
    teachers = [f"{m['accuracy']:.2%}" for name, m in one["accuracy"].items() if name.startswith("teacher,")]
    return [f"**Distillation** (section 6, validation): in one pass the students score {' and '.join(students)} against "
            f"{' and '.join(teachers)} for the teachers of their seeds, a mean gain of {gain(one)}; with TTA {gain(tta)}. "
            + ("By the rule fixed before the second seed, the distilled refit replaces the shipped single model."
               if distillation.ships(study) else
               "By the rule fixed before the second seed (it must hold in one pass), the shipped model stays the one "
               "trained on labels.")
            + _distilled_test(directory)]


def _distilled_test(directory: Path) -> str:
    """The distilled refit on the test set, once, where it was tested: one pass and with TTA, test and PrivateTest."""
    names = (distillation.ONE_PASS_NAME, distillation.TEST_NAME)
    if not all((directory / f"{name}.json").exists() for name in names):
        return " The distilled refit on all the training images is not tested yet."
    one, tta = (_tested(directory, name) for name in names)
    return (f" The distilled refit, tested once: {with_ci(one['test'])} in one pass ({with_ci(one['PrivateTest'])} on "
            f"PrivateTest), {with_ci(tta['test'])} with TTA ({with_ci(tta['PrivateTest'])}).")


def _distilled_label(directory: Path) -> str:
    """The distilled refit's row: what it is, what it cost (its teacher's probabilities apart) and whether it ships."""
    path = directory / "experiments" / f"{distillation.REFIT_NAME}.json"
    record = load_json(path) if path.exists() else None
    validation = directory / f"{distillation.VALIDATION_NAME}.json"
    shipped = validation.exists() and distillation.ships(load_json(validation))
    cost = (f", {record['train_seconds'] / 60:.0f} CPU minutes and {record['teacher']['seconds'] / 60:.0f} for its "
            "teacher's probabilities" if record else "")
    return (f"the shipped model's config distilled from that ensemble (`results/{distillation.REFIT_NAME}.pt`{cost}; "
            + ("shipped)" if shipped else "not shipped: a tie on validation)"))


def tested_models(directory: Path = RESULTS_DIR) -> list[tuple[str, dict, dict]]:
    """(label, metrics with the TTA, metrics in one pass) of each model the course tested once (notebook 04): the
    shipped model, its seed ensemble and the distilled model, where their ``evaluate_checkpoint`` records exist."""
    directory = Path(directory)
    final = load_json(directory / "experiments" / f"{final_model.FINAL_NAME}.json")
    chosen, _ = final_model.choose_final_recipe(directory / "experiments")
    photos = "; `predict` on photos" if photo_checkpoint() == ensemble.ENSEMBLE_PATH else ""
    rows = [(f"the shipped model, {chosen} (`results/final_model.pt`, {final['params'] / 1e6:.1f}M parameters, "
             f"{final['train_seconds'] / 60:.0f} CPU minutes)", final_model.FINAL_TEST_NAME, final_model.FINAL_ONE_PASS_NAME),
            (f"its ensemble with a second seed (`results/final_ensemble.pt`{photos})", ensemble.TEST_NAME, ensemble.ONE_PASS_NAME),
            (_distilled_label(directory), distillation.TEST_NAME, distillation.ONE_PASS_NAME)]
    return [(label, load_json(directory / f"{tta}.json")["metrics"], load_json(directory / f"{one}.json")["metrics"])
            for label, tta, one in rows if (directory / f"{tta}.json").exists() and (directory / f"{one}.json").exists()]


def chapter_05(directory: Path = RESULTS_DIR) -> str:
    """Notebook 05: what the shipped model gets wrong (results/analysis_final_model.json and explorer_audit.json)."""
    analysis = load_json(Path(directory) / "analysis_final_model.json")
    audit = load_json(Path(directory) / "explorer_audit.json")["splits"]["test"]
    hardest = ", ".join(f"*{row['class']}* (F1 {row['f1']:.2f})" for row in analysis["hardest"])
    top = analysis["most_confused"][0]
    return _bullets([
        f"**Hardest classes** on the {analysis['hardest_on']}: {hardest}; the most frequent confusion is *{top['true']}* taken "
        f"for *{top['predicted']}* ({top['count']} faces, {top['share of true class']:.0%} of the {top['true']} faces).",
        f"**Calibration:** ECE {analysis['ece']:.3f} over 15 bins (checked by hand in section 2).",
        f"**Label noise among the mistakes:** the audit flags {audit['flagged, all mistakes']:.1%} of the "
        f"{int(audit['mistakes']):,} test mistakes and {audit['flagged, 100 most confident']:.1%} of the 100 most confident "
        "ones; the rest of the noise has no copy to give it away, and the galleries show it.",
        "**Grad-CAM** maps a 6x6 last stage onto the face: it can tell the eyes from the mouth, not finer detail.",
        "**Next:** notebook 06 takes the model outside the dataset, to faces found in photos; notebook 07 to video and the webcam.",
    ])


def _targets(findings: dict, names) -> str:
    """'N of M met', and what was missed: the targets ``names`` of ``face_study.pipeline_findings``."""
    def shown(name: str, value: float) -> str:
        return f"{value:.0f} fps" if "fps" in name else f"{value:.2f}" if "false faces" in name else f"{value:.1%}"

    judged = {name: findings[name] for name in names}
    missed = [f"{name} {shown(name, t['value'])} against {shown(name, t['target'])}" for name, t in judged.items()
              if t["verdict"] != "met"]
    return (f"**Targets:** {sum(t['verdict'] == 'met' for t in judged.values())} of {len(judged)} met"
            + (f"; missed: {'; '.join(missed)}." if missed else "."))


def chapter_06(directory: Path = RESULTS_DIR) -> str:
    """Notebook 06: from a photo to a face (its records: the crop, the thresholds and the contrast chosen on
    training faces, the detectors measured once on test faces, and the model ``predict`` uses for photos)."""
    directory = Path(directory)
    comparison = load_json(directory / "detector_comparison.json")
    findings = face_study.pipeline_findings(comparison, load_json(directory / "bench_inference.json"))
    result, haar = comparison["detectors"][DEFAULT_DETECTOR], comparison["detectors"]["haar"]["real_photos"]
    real, photo = result["real_photos"], result["photo"]
    photo_run = load_json(directory / "photo_classifier.json")["real_photos"]
    tilted = load_json(directory / "face_framing.json")["tilts"]["20"]
    aligned = f"eyes level, box margin {ALIGNED_MARGIN}" if DEFAULT_FRAMING == "box" else "eyes level, framed by the eyes"
    square = f"box, margin {ALIGNED_MARGIN}"
    framing = mcnemar_from_counts(tilted["discordant"][f"{aligned} | {square}"], tilted["discordant"][f"{square} | {aligned}"],
                                  n=tilted["detected"])
    thresholds = {d: face_study.choose_threshold(load_json(directory / f"face_thresholds_{d}.json")["trade"])
                  for d in comparison["detectors"]}
    contrast = face_study.equalize_tests(load_json(directory / "face_contrast.json"))
    return _bullets([
        f"**Finding faces.** In the real-photo set, {DEFAULT_DETECTOR} finds {real['found']} of the {real['faces']} hand-drawn "
        f"faces, with {real['false_faces_on_face_free_photos']} false faces on {real['face_free_photos']} face-free photos and "
        f"{real['false_faces_on_photos_with_faces']} on the photos with faces (Haar: {haar['found']} found, "
        f"{haar['false_faces_on_face_free_photos']} false on the face-free photos), and names {real['clear_named_right']} of the "
        f"{real['clear_expressions']} clear expressions as a person would ({photo_run['clear_named_right']} with the model "
        f"`predict` uses, `{project_relative(photo_checkpoint())}`).",
        f"**Pasted test faces** ({photo['faces']:,}, the photo setting): {DEFAULT_DETECTOR} finds "
        f"{format_interval(photo['detection_rate'], *photo['detection_interval'])}, and the pipeline is right end to end, a miss counting "
        f"as an error, on {format_interval(photo['end_to_end_accuracy'], *photo['end_to_end_interval'])}, against "
        f"{photo['direct_accuracy']:.1%} for FER-2013's own crops of the same faces.",
        f"**Chosen on training faces:** the crop levels the eyes (on faces tilted by up to 20 degrees, "
        f"{tilted['correct'][aligned] / tilted['detected']:.1%} against {tilted['correct'][square] / tilted['detected']:.1%} "
        f"for the plain square, {_points(framing['difference'])}, McNemar p = {framing['p_value']:.2g}: "
        f"*{verdict(framing['difference'], p_value=framing['p_value'])}*); the score thresholds, each inside its grid, are "
        + ", ".join(f"{d} {t:g}" for d, t in thresholds.items())
        + f"; equalising {_points(contrast['shifted like real crops']['difference'])} on faces shifted like real crops "
        f"(*{contrast['shifted like real crops']['verdict']}*) and {_points(contrast['as they are']['difference'])} on the "
        f"dataset's own (*{contrast['as they are']['verdict']}*), so the pipeline {'equalises' if EQUALIZE else 'does not equalise'}.",
        _targets(findings, PHOTO_PIPELINE),
    ])


def chapter_07(directory: Path = RESULTS_DIR) -> str:
    """Notebook 07: emotions in real time (the search size chosen on training faces, the video setting on
    notebook 06's test faces, and the benchmark record)."""
    directory = Path(directory)
    sides = load_json(directory / "face_video_sides.json")
    tests = face_study.video_side_tests(sides)
    chosen, largest = face_study.choose_video_side(sides), max(map(int, tests))
    smaller = [s for s in sorted(map(int, tests)) if s < chosen]
    comparison, bench = load_json(directory / "detector_comparison.json"), load_json(directory / "bench_inference.json")
    findings = face_study.pipeline_findings(comparison, bench)
    video = comparison["detectors"][DEFAULT_DETECTOR]["video"]
    latency, quartiles = bench["latency_ms_per_face"], bench["latency_quartiles_ms_per_face"]
    int8 = bench["int8"]

    def compared(side: int) -> str:
        t = tests[str(side)]
        return f"{side} px {_points(t['difference'])} (McNemar p = {t['p']:.2g}: *{t['verdict']}*)"

    return _bullets([
        f"**The search size**, chosen on {sides['settings']['faces']:,} pasted training faces against the largest tried "
        f"({largest} px): {compared(chosen)}"
        + (f", the next smaller {compared(smaller[-1])}" if smaller else "")
        + f"; the package searches video frames at {VIDEO_DETECTION['max_side']} px.",
        f"**The video setting on notebook 06's pasted test faces:** found {format_interval(video['detection_rate'], *video['detection_interval'])}, "
        f"right end to end on {format_interval(video['end_to_end_accuracy'], *video['end_to_end_interval'])}.",
        f"**Speed** (`results/bench_inference.json`, one thread of a 2-core {bench['cpu']}): the classifier takes "
        f"{latency['ONNX Runtime fp32, batch 1']:.2f} ms a face through ONNX Runtime in fp32 (interquartile range "
        f"{quartiles['ONNX Runtime fp32, batch 1'][0]:.2f}-{quartiles['ONNX Runtime fp32, batch 1'][1]:.2f}) and "
        f"{latency['ONNX Runtime int8, batch 1']:.2f} ms in int8, at {int8['accuracy_int8']:.2%} test accuracy against "
        f"{int8['accuracy_fp32']:.2%} in fp32 (one pass); the whole pipeline runs at "
        f"{findings['fps, detecting every frame (video setting)']['value']:.0f} fps detecting on every frame and "
        f"{findings['fps, detecting every third frame and tracking']['value']:.0f} fps detecting on every third frame and "
        "tracking in between.",
        _targets(findings, REAL_TIME),
    ])


def chapter_08(directory: Path = RESULTS_DIR) -> str:
    """Notebook 08: transfer learning (results/transfer_summary.json and the transfer study's records)."""
    experiments = Path(directory) / "experiments"
    arms = pd.DataFrame(load_json(Path(directory) / "transfer_summary.json")["comparison"]).set_index("arm")
    noise = transfer.transfer_seed_noise(load_study("transfer", transfer.transfer_comparison(), experiments)).sd
    gains = transfer.pretraining_gains(transfer.label_budget_frame(load_study("transfer", transfer.label_budget(), experiments)),
                                       noise)
    mlp = load_json(experiments / f"{record_name('architectures', 'MLP')}.json")
    plain_label = "plain CNN 8, hflip+shift"
    plain = load_json(experiments / f"{record_name('recipes', plain_label)}.json")
    found = transfer.transfer_findings(arms, gains, noise, plain["val"]["accuracy"])
    onet_params = count_parameters(build_model("onet"))

    def versus_scratch(arm: str) -> str:
        row = arms.loc[arm]
        return f"{row['mean']:.1%} ({_points(row['difference'])}, Welch's p = {row['p_value']:.2g}: *{found['verdicts'][arm]}*)"

    lines = [f"**Against training ONet from scratch** ({arms.loc['from scratch', 'mean']:.1%}, three seeds per arm, Welch's "
             "test over seeds): " + "; ".join(f"{arm} {versus_scratch(arm)}" for arm in found["verdicts"])
             + f". Beyond the seed noise: {', '.join(found['beat_scratch']) or 'none'}."]
    if "linear probe (frozen features)" in found["below_scratch"]:
        lines.append(f"**The frozen features alone fall short:** the linear probe is "
                     f"{-100 * arms.loc['linear probe (frozen features)', 'difference']:.0f} points below training from scratch "
                     f"(the MLP on raw pixels: {mlp['val']['accuracy']:.1%}, one run in notebook 03, full validation split). "
                     "What ONet learnt for finding faces has to be retrained to tell emotions apart.")
    if len(gains):
        small = gains.iloc[0]
        lines.append(f"**When does pretraining pay?** At the same optimiser steps, fine-tuning gains {_points(small['gain'])} "
                     f"with {small.name:.0%} of the labels ({small['training faces']:,} faces, {small['seeds']} seeds: "
                     f"*{small['verdict']}*); the largest gain is at {found['gain_most_at']:.0%}, and it holds at "
                     f"{', '.join(f'{s:.0%}' for s in found['gain_holds_at']) or 'no share'}.")
    lines.append(f"**The final model's family against ONet's best** (*{plain_label}*, one run, same budget and split): "
                 f"{plain['val']['accuracy']:.1%} against {arms.loc[found['best'], 'mean']:.1%} for *{found['best']}* "
                 f"({_points(found['plain_gap'])} against {100 * found['plain_threshold']:.1f} points of noise: "
                 f"*{found['plain_verdict']}*), with {plain['params'] / onet_params:.0f} times ONet's {onet_params / 1e3:.0f}k "
                 "parameters. " + ("The shipped model stays notebook 04's plain CNN." if found["plain_verdict"] == "holds"
                                   else "At this budget the two are a tie."))
    return _bullets(lines)


def _seeded(row: dict) -> str:
    """One k of notebook 09's curve: 'k = 20: 55.1% (+3.2 points; McNemar p at most 0.004 over the 3 seeds, their sd
    0.6 points: *holds*)'."""
    spread = f", their sd {100 * row['sd']:.1f} points" if row["seeds"] > 1 else ""
    return (f"k = {row['k']}: {row['mean']:.1%} ({_points(row['gain'])}; McNemar p at most {max(row['p_values']):.2g} over "
            f"the {row['seeds']} seed{'s' if row['seeds'] > 1 else ''}{spread}: *{row['verdict']}*)")


def chapter_09(directory: Path = RESULTS_DIR) -> str:
    """Notebook 09: your own faces (results/own_faces.json): the stand-in camera's shift, what k labelled faces per
    class buy when the model is fine-tuned on them, and what that costs on clean faces."""
    record = own_faces.load_record(directory)
    s, shift, base = record["settings"], record["shift"], record["runs"][0]
    camera = own_faces.Camera(**s["camera"])
    drops = sorted(shift["recall"].items(), key=lambda item: item[1]["shifted"] - item[1]["clean"])
    biggest = " and ".join(f"*{c}* ({r['clean']:.0%} to {r['shifted']:.0%})" for c, r in drops[:2])
    rises = [f"*{c}* ({r['clean']:.0%} to {r['shifted']:.0%})" for c, r in drops[::-1] if r["shifted"] > r["clean"]]
    holds = [row["k"] for row in record["curve"] if row["verdict"] == "holds"]
    forgetting = "; ".join(f"k = {row['k']} {_points(row['gain'])} (*{row['verdict']}*)" for row in record["forgetting"])
    test = shift["mcnemar"]
    return _bullets([
        "**No real labelled faces to be had:** no registry package ships emotion-labelled face photos this course may "
        "use (EmoPy's CK+ frames are research-only and may not be redistributed), so the chapter measures on a stand-in: "
        f"the {shift['clean']['n']:,} deduplicated validation faces of the fitting split through another camera "
        f"({camera.describe()}), with the fitting-split teachers' ensemble (`{s['model']}`), which never saw them.",
        f"**Domain shift:** {with_ci(shift['clean'])} on the clean faces, {with_ci(shift['shifted'])} through the camera "
        f"({_points(-test['difference'])}, McNemar p = {test['p_value']:.2g} on the same faces: the loss "
        f"*{shift['verdict']}*); recall falls most for {biggest}"
        + (f", and rises for {' and '.join(rises)}: the darker, smoother faces pull the answers there." if rises else "."),
        f"**What k labelled faces per class buy**, fine-tuned with the fixed recipe of `python -m fer_utils finetune` and "
        f"scored on {base['shifted']['n']:,} other shifted faces (k = 0, the model as it is: {with_ci(base['shifted'])}): "
        + "; ".join(_seeded(row) for row in record["curve"])
        + f". Beyond the noise at {', '.join(f'k = {k}' for k in holds) if holds else 'no k'} (every seed's p < 0.05 and "
        "the mean past 2 seed sd / √seeds).",
        f"**Forgetting**, on the clean versions of the same faces (k = 0: {with_ci(base['clean'])}): {forgetting}.",
        "**The shipped model is unchanged:** it is trained on FER-2013 alone; fine-tuning is for your own faces "
        "(`python -m fer_utils finetune`), and the study's fine-tuned models are not kept.",
    ])
