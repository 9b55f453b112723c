"""fer_utils: the shared code of the fer-course notebooks (FER-2013 facial emotion recognition).

Notebooks use it through one namespace: ``import fer_utils as fu``; every module is reachable
as ``fu.<module>`` (``fu.studies``, ``fu.saliency``, ...) and the most used names directly.
The command-line-only modules (``cli``, ``bench``, ``download``) are imported when used, and so are
the notebook widgets' (``camera``: anywidget; ``saliency``: grad-cam), on first use of ``fu.camera``
or ``fu.saliency``: training and the command line need torch and the data stack alone.
"""

import importlib
import os

# OpenMP's worker threads (torch's CPU pool) sleep when idle instead of spinning: on a machine busy
# with other work, spinning workers steal the cores the work needs (a training test took 5x longer
# beside one busy process). OpenMP reads this once, when torch loads: import fer_utils before torch,
# or export it (the Makefile does). An explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import (
    audit,
    augment,
    bench_inference,
    calibration,
    checkpoints,
    cluster,
    data,
    detectors,
    ensemble,
    evaluate,
    experiments,
    explorer,
    export,
    face_study,
    faces,
    figures,
    inference,
    inputs,
    models,
    paths,
    predict,
    pretrained,
    real_photos,
    realtime,
    runtime,
    scenes,
    stats,
    storage,
    studies,
    timeline,
    train,
)
from .audit import deduplicated_test_mask
from .augment import POLICIES, make_augment
from .checkpoints import CheckpointError, load_model, save_model
from .data import (
    CLASSES,
    FER2013,
    DatasetFormatError,
    Split,
    load_fer2013,
    stratified_subset,
    train_val_split,
)
from .evaluate import confusion_matrix, format_table, metrics, per_class_table, predict_proba
from .experiments import (
    ExperimentConfig,
    evaluate_checkpoint,
    history_frame,
    records_frame,
    run_experiment,
)
from .faces import Face, crop_face, detect_faces, read_image
from .figures import save_fig
from .inference import load_classifier
from .inputs import to_model_input
from .models import MODELS, build_model, count_flops, count_parameters
from .paths import FIGURES_DIR, PROJECT_ROOT, RESULTS_DIR, DatasetNotFoundError, find_dataset
from .runtime import fast_mode, set_seed
from .storage import load_json, records_dir, save_json, save_record
from .train import FitResult, TrainConfig, fit

LAZY_MODULES = ("camera", "saliency")

__all__ = [name for name in dir() if not name.startswith("_")] + list(LAZY_MODULES)


def __getattr__(name: str):
    """Import a lazy module (``LAZY_MODULES``) on first use of ``fu.<name>``."""
    if name in LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
