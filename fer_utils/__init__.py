"""fer_utils: facial emotion recognition on FER-2013, the library the fer-course notebooks import.

``import fer_utils as fu``: every module is reachable as ``fu.<module>`` (``fu.train``, ``fu.faces``, ...)
and the most used names directly (``fu.load_fer2013``, ``fu.fit``, ...). Nothing is imported until it
is first used (PEP 562), so ``import fer_utils`` and ``python -m fer_utils --help`` are instant, and a
command imports only what it runs.

``fu.course`` is the course's study and report layer (the experiment grids, targets, verdicts and
measurements behind the notebooks' conclusions); the library never imports it.
"""

import importlib
import os

# OpenMP's worker threads (torch's CPU pool) sleep when idle instead of spinning: on a machine busy
# with other work, spinning workers steal the cores the work needs (a training test took 5x longer
# beside one busy process). OpenMP reads this once, when torch loads: import fer_utils before torch,
# or export it (the Makefile does). An explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MODULES = (
    "audit", "augment", "bench", "bench_inference", "calibration", "camera", "checkpoints", "cli", "config", "course", "data",
    "detectors", "download", "evaluate", "experiments", "explorer", "export", "faces", "figures", "finetune", "inference",
    "inputs", "models", "paths", "predict", "pretrained", "real_photos", "realtime", "runtime", "saliency", "sample_video", "stats",
    "storage", "timeline", "train",
)
# The most used names, by the module that defines them.
NAMES = {
    "audit": ["deduplicated_test_mask"],
    "augment": ["make_augment"],
    "checkpoints": ["CheckpointError", "load_model", "save_model"],
    "config": ["CLASSES", "POLICIES", "ExperimentConfig", "TrainConfig"],
    "data": ["FER2013", "DatasetFormatError", "Split", "load_fer2013", "stratified_subset", "train_val_split"],
    "evaluate": ["confusion_matrix", "format_table", "metrics", "per_class_table", "predict_proba"],
    "experiments": ["evaluate_checkpoint", "history_frame", "records_frame", "run_experiment"],
    "faces": ["Face", "crop_face", "detect_faces", "read_image"],
    "figures": ["save_fig"],
    "inference": ["load_classifier"],
    "inputs": ["to_model_input"],
    "models": ["MODELS", "build_model", "count_flops", "count_parameters"],
    "paths": ["FIGURES_DIR", "PROJECT_ROOT", "RESULTS_DIR", "DatasetNotFoundError", "find_dataset"],
    "runtime": ["fast_mode", "set_seed"],
    "storage": ["load_json", "records_dir", "save_json", "save_record"],
    "train": ["FitResult", "fit"],
}
_HOME = {name: module for module, names in NAMES.items() for name in names}
LIGHT = ("cli", "config", "paths")  # what the command line's parser needs: no torch, no OpenCV

__all__ = [*MODULES, *_HOME]


def __getattr__(name: str):
    """Import a module (``fu.train``) or a name's module (``fu.fit``) on first use; the first module that
    may use torch or OpenCV sizes their thread pools first (``runtime.configure_threads``, run on import)."""
    module = name if name in MODULES else _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module not in LIGHT:
        importlib.import_module(".runtime", __name__)
    loaded = importlib.import_module(f".{module}", __name__)
    if name == module:
        return loaded
    globals()[name] = value = getattr(loaded, name)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
