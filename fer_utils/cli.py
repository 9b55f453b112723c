"""The command line: ``python -m fer_utils {download,train,evaluate,predict,bench} --help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import paths


def _download(args) -> int:
    from .download import download

    print(download(args.dest))
    return 0


def _train(args) -> int:
    from .experiments import ExperimentConfig, run_experiment

    if args.config:
        config = ExperimentConfig.from_dict(json.loads(Path(args.config).read_text()))
    else:
        config = ExperimentConfig(
            model=args.model, model_kwargs=json.loads(args.model_kwargs), epochs=args.epochs,
            batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing, schedule=args.schedule, patience=args.patience,
            augment=args.augment, seed=args.seed, precision=args.precision, data_fraction=args.data_fraction,
            val_fraction=args.val_fraction, tta=args.tta,
        )
    record = run_experiment(
        config, name=args.name, data_path=args.data, resume=args.resume, retrain=True,
        save_checkpoint=args.output, progress=not args.quiet,
    )
    print(json.dumps({k: record[k] for k in ("name", "best_epoch", "train_seconds", "val")}, indent=2))
    if args.output:
        print(f"model saved to {args.output}")
    return 0


def _evaluate(args) -> int:
    from .checkpoints import load_model
    from .evaluate import format_table
    from .experiments import evaluate_checkpoint

    model = load_model(args.checkpoint)
    report = evaluate_checkpoint(model, args.checkpoint, data_path=args.data, tta=args.tta, record_name=args.name)
    for split, table in report["tables"].items():
        print(f"\n== {split} ({report['metrics'][split]['n']} images) ==")
        print(format_table(table))
    print(f"\nrecord written to {report['record_path']}")
    return 0


def _predict(args) -> int:
    from .checkpoints import load_model
    from .predict import predict_files

    model = load_model(args.checkpoint)
    predictions, errors = predict_files(model, args.images, tta=not args.no_tta)
    for p in predictions:
        top = ", ".join(f"{c} {prob:.1%}" for c, prob in p.top(args.top))
        print(f"{p.path}: {top}")
    for err in errors.values():
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


def _bench(args) -> int:
    from .bench import compare_pipelines
    from .storage import save_record

    result = compare_pipelines(args.model, batches=args.batches, batch_size=args.batch_size, data_path=args.data)
    print(json.dumps(result, indent=2))
    print(f"record written to {save_record(f'bench_{args.model}', result)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .augment import POLICIES
    from .models import MODELS

    parser = argparse.ArgumentParser(prog="python -m fer_utils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_help = f"the dataset (zip or folder); default ${paths.DATASET_ENV}, then data/fer2013.zip or data/fer2013/"

    p = sub.add_parser("download", help="download FER-2013 from Kaggle (msambare/fer2013) into data/")
    p.add_argument("--dest", type=Path, default=paths.DATA_DIR / "fer2013", help="where to put it (default data/fer2013)")
    p.set_defaults(func=_download)

    p = sub.add_parser("train", help="train a model and save its record under results/")
    p.add_argument("model", nargs="?", default="residual_cnn", choices=sorted(MODELS))
    p.add_argument("--config", help="a JSON file with an experiment config (overrides the options below)")
    p.add_argument("--model-kwargs", default="{}", help='model options as JSON, e.g. \'{"depth": 4}\'')
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--schedule", choices=["onecycle", "cosine", "plateau", "constant"], default="onecycle")
    p.add_argument("--patience", type=int, default=None, help="early stopping on validation accuracy")
    p.add_argument("--augment", default="hflip+shift", help=f"augmentation policy: {', '.join(POLICIES)} or parts joined by '+'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], default="auto")
    p.add_argument("--data-fraction", type=float, default=1.0, help="train on this stratified fraction of the train split")
    p.add_argument("--val-fraction", type=float, default=0.3)
    p.add_argument("--tta", action="store_true", help="horizontal-flip test-time augmentation in the metrics")
    p.add_argument("--name", help="record name under results/ (default: derived from the config)")
    p.add_argument("--output", type=Path, help="also save the trained model here (a .pt checkpoint)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same config")
    p.add_argument("--data", help=data_help)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="print the per-class table of a checkpoint on the test set and write its record")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--tta", action="store_true", help="horizontal-flip test-time augmentation")
    p.add_argument("--name", help="record name under results/ (default: evaluation_<checkpoint name>)")
    p.add_argument("--data", help=data_help)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="predict the emotion in image files (any size or colour)")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model results/final_model.pt")
    p.add_argument("--top", type=int, default=3, help="how many emotions to print per image")
    p.add_argument("--no-tta", action="store_true", help="no horizontal-flip test-time augmentation")
    p.set_defaults(func=_predict)

    p = sub.add_parser("bench", help="training images/s: this pipeline against ImageFolder + PIL + DataLoader")
    p.add_argument("--model", default="residual_cnn", choices=sorted(MODELS))
    p.add_argument("--batches", type=int, default=30, help="timed training batches per pipeline")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data", help=data_help)
    p.set_defaults(func=_bench)
    return parser


def main(argv=None) -> int:
    from .checkpoints import CheckpointError
    from .data import DatasetFormatError
    from .paths import DatasetNotFoundError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DatasetNotFoundError, DatasetFormatError, CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
