"""Run one of the course's experiment grids (fer_utils.studies), reusing stored records.

    python scripts/run_study.py ablation        # notebook 02: augmentation policies x 3 seeds
    python scripts/run_study.py architectures   # notebook 03: MLP, plain CNNs, residual CNNs, ResNet-18
    python scripts/run_study.py recipes         # final-model candidates, compared on validation only
    python scripts/run_study.py final           # trains the best recipe (by validation) as the shipped model

Each run writes results/experiments/<name>.json; an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import argparse
import time

import fer_utils as fu
from fer_utils import studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=["ablation", "architectures", "recipes", "final"])
    parser.add_argument("--deadline", type=float, default=None, help="start no new run after this many seconds")
    parser.add_argument("--retrain", action="store_true", help="train again even where a record exists")
    parser.add_argument("--shard", default="0/1", help="run only runs i, i+n, i+2n, ... given as i/n (parallel workers)")
    args = parser.parse_args()

    started = time.time()
    data = fu.load_fer2013()
    if args.study == "final":
        label, config = studies.choose_final_recipe()
        print(f"chosen on validation: {label}")
        record = fu.run_experiment(config, name=studies.FINAL_NAME, data=data, retrain=args.retrain,
                                   save_checkpoint=fu.checkpoints.DEFAULT_MODEL)
        print(f"final model: val accuracy {record['val']['accuracy']:.4f}, {record['train_seconds'] / 60:.1f} min")
        return
    grid = {
        "ablation": lambda: {f"{c.augment} seed {c.seed}": c for c in studies.augmentation_ablation()},
        "architectures": studies.architecture_comparison,
        "recipes": studies.final_recipe_candidates,
    }[args.study]()
    index, count = map(int, args.shard.split("/"))
    for label, config in list(grid.items())[index::count]:
        if args.deadline and time.time() - started > args.deadline:
            print(f"deadline reached; not started: {label}")
            continue
        name = studies.record_name(args.study, config)
        record = fu.run_experiment(config, name=name, data=data, retrain=args.retrain, progress=False,
                                   evaluate_test=args.study != "recipes")
        print(f"{label:45s} val {record['val']['accuracy']:.4f}  {record['wall_seconds']:7.1f} s  {record['device']}",
              flush=True)


if __name__ == "__main__":
    main()
