"""What a run and a command can be told, as plain data: the training and experiment configs, and the
names each option takes. Nothing here imports torch, so the command line parses (and answers
``--help``) at once, and a config can be built, stored and compared anywhere."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # FER-2013's folders, in label order
POLICIES = ("none", "hflip", "rotate", "shift", "erase", "hflip+shift", "all")  # fer_utils.augment
TTA_MODES = ("none", "flip", "flip+shift", "ten-crop")  # test-time augmentation (1, 2, 6, 10 views): fer_utils.evaluate
MODEL_NAMES = ("mlp", "plain_cnn", "residual_cnn", "resnet18", "onet", "ensemble")  # fer_utils.models.MODELS
DETECTORS = ("centerface", "mtcnn", "haar")  # fer_utils.detectors
DEFAULT_DETECTOR = "centerface"
BACKENDS = ("auto", "onnxruntime", "onnxruntime-int8", "torch")  # fer_utils.inference
WHOLE_MAX_SIDE = 64  # predict classifies an image this small as one face, without detection (fer_utils.predict)
FAST_FRACTION = 0.03  # the share of the training images a fast-mode (CI) run trains on


@dataclass
class TrainConfig:
    """Everything that decides a training run besides the model and the data."""

    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "adamw"  # 'adamw' or 'sgd'
    lr: float = 1e-3  # the peak rate for 'onecycle'
    weight_decay: float = 5e-4
    momentum: float = 0.9  # SGD only
    label_smoothing: float = 0.0
    schedule: str = "onecycle"  # 'onecycle', 'cosine', 'plateau' or 'constant'
    patience: int | None = None  # stop after this many epochs without a better validation accuracy
    augment: str = "hflip+shift"  # a policy name from fer_utils.augment
    seed: int = 0
    precision: str = "auto"  # 'auto' (bf16 where it pays), 'bf16', 'fp16' or 'fp32'
    channels_last: bool = True
    # Progressive resizing: the side of the training images for equal parts of the epochs, e.g.
    # (32, 40, 48) trains the first third at 32x32. Small epochs are cheap (cost ~ side squared),
    # so more of them fit in a budget; the last part should be 48, the size the model is tested at.
    train_sizes: tuple[int, ...] = ()
    # Passes over the training images per epoch (one validation per epoch): a run on a small share
    # of the data takes as many optimiser steps per epoch as one on a larger share, e.g. 25 passes
    # over 2% match one pass over 50%, without validating 25 times as often.
    passes_per_epoch: int = 1
    # Knowledge distillation: the weight of a teacher's soft targets in the loss (0: labels alone) and the
    # temperature that softens both the teacher's and the student's probabilities (fer_utils.train.distillation_loss).
    distill: float = 0.0
    temperature: float = 1.0
    # Mixup (Zhang et al., 2018): each training batch blended with itself shuffled, by a weight drawn from
    # Beta(mixup, mixup), the labels blended alike (torchvision.transforms.v2.MixUp); 0: off.
    mixup: float = 0.0
    # Random crops (cheaper images): each training image is a random ``crop`` x ``crop`` window of the 48 px face,
    # drawn per image (fer_utils.augment.RandomCrop); a step costs about (crop / 48)² of a 48 px one, so 40 px buys
    # 1.44 times the epochs in the same minutes. The model is evaluated on the whole face; 0: no crop.
    crop: int = 0
    # Weight averaging: an exponential moving average of the weights (and BatchNorm's statistics) after every step,
    # ``w_ema = ema * w_ema + (1 - ema) * w`` (torch.optim.swa_utils.AveragedModel); the average is what is validated,
    # chosen and returned, the model itself trains as without it. 0: off.
    ema: float = 0.0

    def __post_init__(self):
        self.train_sizes = tuple(self.train_sizes)  # a JSON list or a CLI list becomes the tuple
        if self.passes_per_epoch < 1:
            raise ValueError(f"passes_per_epoch must be at least 1, got {self.passes_per_epoch}")
        if not 0 <= self.distill <= 1 or self.temperature <= 0:
            raise ValueError(f"distill must be in [0, 1] and temperature positive, got {self.distill}, {self.temperature}")
        if self.mixup < 0 or (self.mixup and self.distill):
            raise ValueError(f"mixup must be 0 or positive, and is not combined with distill; got mixup={self.mixup}, "
                             f"distill={self.distill}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), the weight of the running average at each step; got {self.ema}")
        if self.crop and (not 8 <= self.crop <= 48 or self.train_sizes):  # 48: FER-2013's side
            raise ValueError(f"crop must be 0 or a side from 8 to 48, and is not combined with train_sizes; "
                             f"got crop={self.crop}, train_sizes={self.train_sizes}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON data (tuples become lists): how it is stored and compared.

        Fields added after records were first stored (``LATER_FIELDS``) appear only when they differ
        from their default: a record made before a field existed ran at its default, and keeps its key.
        """
        data = json.loads(json.dumps(dataclasses.asdict(self)))
        return {k: v for k, v in data.items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}


# Fields added after records were first stored -> their default, left out of to_dict at that default.
LATER_FIELDS = {"passes_per_epoch": 1, "distill": 0.0, "temperature": 1.0, "mixup": 0.0, "crop": 0, "ema": 0.0, "teacher": ""}


@dataclass
class ExperimentConfig(TrainConfig):
    """A whole experiment: the training settings (every field of ``TrainConfig``), plus the model,
    its options, the data it sees and how it is evaluated. One class drives ``fit``, the CLI's
    flags (``fer_utils.cli.add_config_flags``), the study grids and the stored records."""

    model: str = "residual_cnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data_fraction: float = 1.0  # stratified fraction of the train split used for training
    val_fraction: float = 0.3  # 0: train on the whole training set, without validation (the final refit)
    tta: bool | str = False  # test-time augmentation in the final metrics: fer_utils.evaluate.TTA_MODES
    dedup_val: bool = False  # drop validation images that have an exact twin in the training part
    # The checkpoint (path from the project root) whose test-time-augmented probabilities (``tta``) on the
    # training images are the soft targets when ``distill`` > 0.
    teacher: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown experiment config keys {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """As plain JSON data, the model first (a record reads top-down: what was trained, then how)."""
        data = super().to_dict()
        return {"model": data.pop("model"), "model_kwargs": data.pop("model_kwargs"), **data}

    def key(self) -> str:
        """A short hash of the config: stored in each record, it tells whether a record was made by this config."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]

    def fast(self) -> ExperimentConfig:
        """The CI version: a small stratified subset, one epoch of one pass."""
        return dataclasses.replace(self, epochs=1, passes_per_epoch=1, data_fraction=min(self.data_fraction, FAST_FRACTION))


# Fine-tuning on your own labelled faces (fer_utils.finetune, `python -m fer_utils finetune`): fixed, not tuned per folder.
FINETUNE_HELD_OUT = 0.25  # the share of the faces set aside for the before/after report, never trained on
FINETUNE_VALIDATION = 0.2  # the share of the rest that chooses the epoch (early stopping)
FINETUNE_MIN_FACES = 5  # per emotion: one held out, one to validate on, three to learn from
FINETUNE_RECIPE = TrainConfig(epochs=30, batch_size=32, lr=3e-4, schedule="constant", patience=5, label_smoothing=0.1,
                              augment="hflip+shift", precision="fp32", channels_last=False, seed=0)
