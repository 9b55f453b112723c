"""Run one of the course's experiment grids (fer_utils.course), reusing stored records.

    python scripts/run_study.py ablation        # notebook 02: augmentation policies x 3 seeds
    python scripts/run_study.py architectures   # notebook 03: MLP, plain CNNs, residual CNNs, ResNet-18
    python scripts/run_study.py recipes         # final-model candidates, the best confirmed at a longer
                                                # budget, the budget curve and the TTA choice: validation only
    python scripts/run_study.py curve           # the chosen family's budget curve at the refit's scale: the
                                                # whole fitting split, budgets up to two CPU hours, two policies
    python scripts/run_study.py transfer        # notebook 08: ONet pretrained on faces vs from scratch,
                                                # 3 seeds, and the label-budget curve
    python scripts/run_study.py final           # refits the chosen recipe with the curve's best policy and
                                                # epochs on all the training images, then evaluates it on
                                                # the test set once, with TTA and in one pass
    python scripts/run_study.py distill         # the ensemble's TTA probabilities taught to one model on the fitting
                                                # split, judged on validation: fer_utils.course.distillation
    python scripts/run_study.py distilled       # the shipped config on all the training images, taught by the
                                                # shipped ensemble, then tested once (after `distill`)
    python scripts/run_study.py schedule        # a lever on the shipped setting (fer_utils.course.levers): two seeds
    python scripts/run_study.py crops           # on the fitting split, each judged on validation against the
    python scripts/run_study.py ema             # distillation study's teacher of its seed. schedule: mixup over
    python scripts/run_study.py combined        # twice the epochs; crops: random 40 px crops, more epochs in the same
                                                # minutes; ema: a moving average of the weights; combined: the
                                                # distillation study's students with the moving average
    python scripts/run_study.py ensemble        # the final setting from more seeds, on the fitting split (the
                                                # ensemble judged on validation) and on all the training
                                                # images (with the shipped model, the ensemble tested once):
                                                # fer_utils.course.ensemble

Each run writes results/experiments/<name>.json; an interrupted grid resumes where it stopped.

    python scripts/run_study.py ablation --engine ray                        # one Ray task per missing run, here
    python scripts/run_study.py ablation --engine ray --address HOST:PORT    # on a cluster (`ray start --head`)
"""

from __future__ import annotations

import argparse
import sys
import time

import fer_utils as fu
from fer_utils.course import (
    ablation,
    architectures,
    cluster,
    distillation,
    ensemble,
    final_model,
    levers,
    records,
    transfer,
)
from fer_utils.experiments import split_data


def run(study: str, grid: dict, data, args, started: float, checkpoints: dict | None = None, **options) -> None:
    """Train the runs of ``grid`` that have no record: one after the other here (``--engine local``),
    or as Ray tasks (``--engine ray``: fer_utils.course.cluster), exiting non-zero after it if any run failed.
    ``checkpoints``: where each run (by label) saves its weights (the local engine's option)."""
    index, count = map(int, args.shard.split("/"))
    if args.only:
        grid = {label: config for label, config in grid.items() if any(part in label for part in args.only)}
    grid = dict(list(grid.items())[index::count])
    retrain = options.pop("retrain", args.retrain or None)  # None: $FER_RETRAIN decides
    if args.engine == "ray":
        outcome = cluster.run_grid(study, grid, data, retrain=retrain, cpus_per_task=args.cpus_per_task,
                                      gpus_per_task=args.gpus_per_task, local=args.address is None,
                                      deadline=started + args.deadline if args.deadline else None, **options)
        print(f"{study}: {len(outcome.trained)} trained, {len(outcome.skipped)} stored, "
              f"{len(outcome.failures)} failed", flush=True)
        if outcome.failures:
            failed = "\n".join(f"  {label}: {error}" for label, error in outcome.failures.items())
            sys.exit(f"{study}: {len(outcome.failures)} run(s) failed:\n{failed}")
        return
    for label, config in grid.items():
        if args.deadline and time.time() - started > args.deadline:
            print(f"deadline reached; not started: {label}")
            continue
        if checkpoints:
            options["save_checkpoint"] = checkpoints[label]
        record = fu.run_experiment(config, name=records.record_name(study, label), data=data, retrain=retrain,
                                   progress=False, **options)
        val = f"val {record['val']['accuracy']:.4f}" if record["val"] else "no validation"
        print(f"{label!s:50s} {val}  {record['wall_seconds']:7.1f} s  {record['device']}", flush=True)


def select_recipe(data, args, started: float) -> None:
    """Candidates at the proxy budget, the best confirmed at a longer one, the budget curve, TTA."""
    run("recipes", final_model.final_recipe_candidates(), data, args, started)
    run("budget", {final_model.budget_label(r, c.epochs): c for r, c in final_model.confirmation_grid().items()}, data, args,
        started)
    label, _ = final_model.choose_final_recipe()
    print(f"chosen on validation: {label}")
    budgets = {final_model.budget_label(label, e): c for e, c in final_model.budget_grid().items() if e != final_model.BUDGET_EPOCHS[0]}
    longest_label = final_model.budget_label(label, max(final_model.BUDGET_EPOCHS))
    longest = budgets.pop(longest_label)
    checkpoint = fu.paths.runs_dir() / records.record_name("budget", longest_label) / "model.pt"
    run("budget", budgets, data, args, started)
    run("budget", {longest_label: longest}, data, args, started, save_checkpoint=checkpoint)
    if not checkpoint.exists():  # the record was stored by an earlier run without its weights
        run("budget", {longest_label: longest}, data, args, started, save_checkpoint=checkpoint, retrain=True)
    choice = final_model.choose_tta(fu.load_model(checkpoint), split_data(data, longest)[1])
    fu.save_json(final_model.tta_record_path(), {"recipe": label, "epochs": longest.epochs, **choice})
    print(f"test-time augmentation on validation: {choice}")
    print(final_model.budget_frame())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=["ablation", "architectures", "recipes", "curve", "transfer", "final", "ensemble",
                                          "distill", "distilled", *levers.LEVERS])
    parser.add_argument("--deadline", type=float, default=None, help="start no new run after this many seconds")
    parser.add_argument("--retrain", action="store_true", help="train again even where a record exists")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the runs whose label contains TEXT (repeatable)")
    parser.add_argument("--shard", default="0/1", help="run only runs i, i+n, i+2n, ... given as i/n (parallel workers)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: one run after the other in this process; ray: one Ray task per missing run")
    parser.add_argument("--address", default=None, metavar="HOST:PORT",
                        help="with --engine ray, the Ray cluster to join (`ray start --head`); default: start Ray here")
    parser.add_argument("--cpus-per-task", type=float, default=1, help="with --engine ray, CPUs (threads) per run")
    parser.add_argument("--gpus-per-task", type=float, default=0, help="with --engine ray, GPUs per run (1 on a GPU cluster)")
    args = parser.parse_args()
    if args.address and args.engine != "ray":
        parser.error("--address needs --engine ray")

    started = time.time()
    if args.engine == "ray":
        if args.study in ("final", "distilled"):
            print("the final refit is one run: it trains here, without Ray")
        elif args.study in ("ensemble", "distill", *levers.LEVERS):
            sys.exit(f"{args.study}: its runs save their weights; run it with --engine local (--shard i/n for parallel workers)")
        else:
            cluster.connect(args.address)
    data = fu.load_fer2013()
    if args.study == "final":
        train_final(data, args)
    elif args.study == "ensemble":
        train_ensemble(data, args, started)
    elif args.study == "distill":
        train_distillation(data, args, started)
    elif args.study == "distilled":
        train_distilled(data, args)
    elif args.study in levers.LEVERS:
        train_lever(levers.LEVERS[args.study], data, args, started)
    elif args.study == "recipes":
        select_recipe(data, args, started)
    else:
        grid = {
            "ablation": ablation.augmentation_ablation,
            "architectures": architectures.architecture_comparison,
            "curve": final_model.refit_scale_curve,
            "transfer": lambda: {**transfer.transfer_comparison(), **transfer.label_budget()},
        }[args.study]()
        run(args.study, grid, data, args, started)


def train_final(data, args) -> None:
    """Refit the chosen recipe on all the training images, then evaluate it on the test set once,
    with the chosen test-time augmentation and in one pass (what the real-time pipeline and `predict --no-tta` do)."""
    label, config = final_model.final_config()
    choice = final_model.curve_choice()
    minutes = fu.train.estimate_minutes(fu.build_model(config.model, **config.model_kwargs), config, len(data.train))
    print(f"chosen on validation: {label}, under {config.augment} for {config.epochs} epochs (the refit-scale curve's best, "
          f"{choice['val_accuracy']:.2%}); refit on all {len(data.train):,} training images, TTA {config.tta!r}; "
          f"expected training time on this machine: about {minutes:.0f} minutes")
    checkpoint = fu.records_dir() / fu.checkpoints.DEFAULT_MODEL.name  # results/fast/ in fast mode
    record = fu.run_experiment(config, name=final_model.FINAL_NAME, data=data, retrain=args.retrain,
                               save_checkpoint=checkpoint)
    model = fu.load_model(checkpoint)
    report = fu.evaluate_checkpoint(model, checkpoint, data=data, tta=config.tta, record_name=final_model.FINAL_TEST_NAME)
    one_pass = fu.evaluate_checkpoint(model, checkpoint, data=data, tta="none", record_name=final_model.FINAL_ONE_PASS_NAME)
    record["test"], record["choice"] = report["metrics"], choice
    fu.save_json(fu.experiments.record_path(final_model.FINAL_NAME), record)
    print(f"final model: {record['train_seconds'] / 60:.1f} min of training on {record['n_train']:,} images")
    for name, metrics in ((f"TTA {config.tta}", report["metrics"]), ("one pass", one_pass["metrics"])):
        test, private = (fu.experiments.with_interval(metrics[k]) for k in ("test", "PrivateTest"))
        print(f"{name}: test accuracy {fu.stats.format_interval(test['accuracy'], test['low'], test['high'], 2)}, "
              f"PrivateTest {fu.stats.format_interval(private['accuracy'], private['low'], private['high'], 2)}")


def train_ensemble(data, args, started: float) -> None:
    """Train the members that have no record (saving their weights); then, unless this is one shard of
    several, judge the ensemble on validation, build the shipped one (again where a member was just
    trained or the output is missing), fix in results/shipped_models.json which model `predict` serves
    photos with, and evaluate the ensemble on the test set once."""
    grid = ensemble.member_grid()
    checkpoints = {label: records.weights_path(ensemble.STUDY, label) for label in grid}
    as_run = {label: config.fast() if fu.fast_mode() else config for label, config in grid.items()}
    stored = {} if args.retrain else records.load_study("ensemble", as_run)
    untrained = {label: config for label, config in grid.items() if label not in stored}
    run("ensemble", untrained, data, args, started, checkpoints=checkpoints, retrain=True)
    if args.shard != "0/1":
        print("one shard of several: run the same command without --shard once every shard is done")
        return
    trained = {part for part in ensemble.PARTS if ensemble.part_labels(untrained, part)}
    validation = fu.records_dir() / f"{ensemble.VALIDATION_NAME}.json"
    fitting = ensemble.part_labels(grid, "fitting")
    stale = ("fitting" in trained or not validation.exists()
             or fu.load_json(validation)["members"] != len(fitting))
    study = ensemble.validation_study(data, grid) if stale else ensemble.validation_record(validation.parent)
    print(f"validation: members {', '.join(f'{a:.2%}' for a in study['member_accuracy'])}; ensemble of "
          f"{study['members']}: {study['ensemble']['accuracy']:.2%} (McNemar against the first member: "
          f"p = {study['mcnemar_vs_first']['p_value']:.2g})")
    path = fu.records_dir() / ensemble.ENSEMBLE_PATH.name
    if "refit" in trained or not path.exists():
        ensemble.build(grid, path)
    manifest = ensemble.ship(study, fu.records_dir() / fu.checkpoints.SHIPPED_MANIFEST.name)
    print(f"predict serves photos with {fu.load_json(manifest)['photos']} ({manifest.name})")
    model, tta = fu.load_model(path), next(iter(grid.values())).tta
    for name, mode in ((ensemble.TEST_NAME, tta), (ensemble.ONE_PASS_NAME, "none")):
        metrics = fu.evaluate_checkpoint(model, path, data=data, tta=mode, record_name=name)["metrics"]
        full, private = (fu.experiments.with_interval(metrics[k]) for k in ("test", "PrivateTest"))
        print(f"shipped ensemble, TTA {mode}: test accuracy "
              f"{fu.stats.format_interval(full['accuracy'], full['low'], full['high'], 2)}, PrivateTest "
              f"{fu.stats.format_interval(private['accuracy'], private['low'], private['high'], 2)}")


def train_distillation(data, args, started: float) -> None:
    """The teachers (the ensemble's fitting members), their ensemble, the distilled student, each trained where
    its record or weights are missing; then the student against the first teacher on validation."""
    runs = distillation.grid()
    as_run = {label: config.fast() if fu.fast_mode() else config for label, config in runs.items()}
    stored = {} if args.retrain else records.load_study(distillation.STUDY, as_run)
    missing = {label: config for label, config in runs.items()
               if label not in stored or not records.weights_path(distillation.STUDY, label).exists()}
    teachers = {label: config for label, config in missing.items() if label.startswith("teacher")}
    checkpoints = {label: records.weights_path(distillation.STUDY, label) for label in runs}
    run(distillation.STUDY, teachers, data, args, started, checkpoints=checkpoints, retrain=True)
    teacher = fu.records_dir() / distillation.FITTING_TEACHER.name
    if teachers or not teacher.exists():
        distillation.build_teacher(runs, teacher)
    student = {label: config for label, config in missing.items() if not label.startswith("teacher")}
    run(distillation.STUDY, student, data, args, started, checkpoints=checkpoints, retrain=True)
    if args.shard != "0/1":
        return
    noise = fu.stats.seed_sd(ablation.seed_runs(fu.RESULTS_DIR / "experiments")).sd
    study = distillation.validation_study(data, runs, noise)
    print_gains(study, "student - teacher")


def train_lever(lever, data, args, started: float) -> None:
    """The runs of ``lever`` (``fu.course.levers.Lever``) that have no record or weights, saving their weights; then,
    unless this is one shard of several, each against the shipped setting of its seed on validation."""
    runs = lever.grid()
    as_run = {label: config.fast() if fu.fast_mode() else config for label, config in runs.items()}
    stored = {} if args.retrain else records.load_study(lever.study, as_run)
    missing = {label: config for label, config in runs.items()
               if label not in stored or not records.weights_path(lever.study, label).exists()}
    checkpoints = {label: records.weights_path(lever.study, label) for label in runs}
    run(lever.study, missing, data, args, started, checkpoints=checkpoints, retrain=True)
    if args.shard != "0/1":
        return
    noise = fu.stats.seed_sd(ablation.seed_runs(fu.RESULTS_DIR / "experiments")).sd
    print_gains(lever.validation_study(data, noise), f"{lever.name} - shipped setting")


def print_gains(study: dict, change: str) -> None:
    """A seeded comparison on validation (``fu.course.verdicts.seeded_gain``) in each of its views (one pass, the
    TTA, ...): each seed's gain in points and McNemar p, the mean gain and its verdict."""
    print(f"{change} on validation (two-seed noise {100 * study['threshold']:.2f} points):")
    print(fu.course.verdicts.gains_frame({change: study}).to_string())


def train_distilled(data, args) -> None:
    """The shipped model's config on all the training images, taught by the shipped ensemble (its soft
    targets cached beside the run's checkpoints), then evaluated on the test set once, with the TTA and in
    one pass."""
    config = distillation.refit_config()
    path = fu.records_dir() / f"{distillation.REFIT_NAME}.pt"  # results/fast/ in fast mode
    print(f"the shipped config taught by {config.teacher} (weight {config.distill}, temperature {config.temperature}) "
          f"on all {len(data.train):,} training images for {config.epochs} epochs", flush=True)
    record = fu.run_experiment(config, name=distillation.REFIT_NAME, data=data, retrain=args.retrain, save_checkpoint=path)
    if not path.exists():  # the record was stored by an earlier run without its weights
        record = fu.run_experiment(config, name=distillation.REFIT_NAME, data=data, retrain=True, save_checkpoint=path)
    model = fu.load_model(path)
    print(f"trained in {record['train_seconds'] / 60:.1f} min; the teacher's probabilities took "
          f"{record['teacher']['seconds'] / 60:.1f} min", flush=True)
    validation = fu.records_dir() / f"{distillation.VALIDATION_NAME}.json"
    judged = fu.load_json(validation) if validation.exists() else {}
    if judged.get("seeds") != list(distillation.SEEDS) or judged["one pass"]["mean gain"]["verdict"] == "reversed":
        sys.exit(f"not tested: distillation is not yet judged on validation with seeds {distillation.SEEDS} "
                 f"({validation.name}), or it lost there; run `python scripts/run_study.py distill` first")
    for name, mode in ((distillation.TEST_NAME, config.tta), (distillation.ONE_PASS_NAME, "none")):
        metrics = fu.evaluate_checkpoint(model, path, data=data, tta=mode, record_name=name)["metrics"]
        full, private = (fu.experiments.with_interval(metrics[k]) for k in ("test", "PrivateTest"))
        print(f"distilled model, TTA {mode}: test accuracy "
              f"{fu.stats.format_interval(full['accuracy'], full['low'], full['high'], 2)}, PrivateTest "
              f"{fu.stats.format_interval(private['accuracy'], private['low'], private['high'], 2)}", flush=True)

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: the records written so far are kept; the same command finishes the rest",
              file=sys.stderr)
        sys.exit(130)
