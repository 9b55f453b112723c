"""Predictions and metrics: accuracy, F1, the per-class table and the confusion matrix.

The metrics are computed from the confusion matrix here (the tests check them against
scikit-learn), so that a notebook can show how each number is made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchvision.transforms.v2.functional import ten_crop

from .config import CLASSES, TTA_MODES
from .inputs import to_model_input
from .runtime import autocast, resolve_precision

# Test-time augmentation: the views whose probabilities are averaged. 'flip' adds the mirror
# image; 'flip+shift' adds, for the image and its mirror, shifts of SHIFT_PX pixels in each direction;
# 'ten-crop' averages the four corner and the centre TEN_CROP_PX windows and their mirrors (torchvision's ten_crop).
SHIFT_PX = 2
TEN_CROP_PX = 40


def tta_mode(tta: bool | str) -> str:
    """The TTA mode for ``tta``: a mode name, or a bool as stored by older records (True = 'flip')."""
    mode = {True: "flip", False: "none"}.get(tta, tta) if isinstance(tta, bool) else tta
    if mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES} (or a bool), got {tta!r}")
    return mode


def shifted(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """(B, C, H, W) moved ``dx`` pixels right and ``dy`` down; uncovered pixels repeat the border."""
    h, w = x.shape[-2:]
    pad = max(abs(dx), abs(dy))
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def tta_views(x: torch.Tensor, tta: bool | str) -> list[torch.Tensor]:
    """The batches a model sees for one input batch under ``tta``: the input itself first, except for 'ten-crop'
    (windows of the input, the mirrored ones last)."""
    mode = tta_mode(tta)
    if mode == "ten-crop":
        return list(ten_crop(x, [TEN_CROP_PX, TEN_CROP_PX]))
    views = [x] if mode == "none" else [x, x.flip(-1)]
    if mode == "flip+shift":
        moves = [(SHIFT_PX, 0), (-SHIFT_PX, 0), (0, SHIFT_PX), (0, -SHIFT_PX)]
        views += [shifted(v, dx, dy) for v in views for dx, dy in moves]
    return views


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    batch_size: int = 512,
    tta: bool | str = False,
    precision: str = "fp32",
) -> np.ndarray:
    """Class probabilities, (N, 48, 48) uint8 -> (N, 7) float32, in eval mode.

    With ``tta`` ('flip', 'flip+shift', 'ten-crop'; True means 'flip') the probabilities are averaged over
    the views of ``tta_views``. Evaluation is fp32 unless ``precision`` says otherwise, so that
    every machine reports the same numbers.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dtype = resolve_precision(precision, device)
    if device.type == "cuda" and dtype is None:  # fp32 means fp32 on a GPU too, not TensorFloat-32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    images = torch.as_tensor(images)
    out = []
    for start in range(0, len(images), batch_size):
        x = to_model_input(images[start : start + batch_size].to(device))
        views = [v.contiguous(memory_format=torch.channels_last) for v in tta_views(x, tta)]
        with autocast(device, dtype):
            probs = sum(torch.softmax(model(v).float(), dim=1) for v in views) / len(views)
        out.append(probs.cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, len(CLASSES)), np.float32)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int = len(CLASSES)) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def per_class_table(y_true, y_pred, classes: Sequence[str] = CLASSES) -> pd.DataFrame:
    """The original report's table: precision, recall, F1 and support per class, then
    accuracy, macro avg and weighted avg rows (the layout of scikit-learn's classification_report)."""
    cm = confusion_matrix(y_true, y_pred, len(classes))
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    precision = _safe_divide(tp, cm.sum(axis=0))
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    table = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1-score": f1, "support": support}, index=list(classes)
    )
    total = support.sum()
    accuracy = tp.sum() / total if total else 0.0
    weights = support / total if total else np.zeros_like(support, dtype=float)
    table.loc["accuracy"] = [np.nan, np.nan, accuracy, total]
    table.loc["macro avg"] = [precision.mean(), recall.mean(), f1.mean(), total]
    table.loc["weighted avg"] = [precision @ weights, recall @ weights, f1 @ weights, total]
    table["support"] = table["support"].astype(int)
    return table


def metrics(y_true, y_pred, classes: Sequence[str] = CLASSES) -> dict[str, float]:
    """Accuracy, macro F1 and weighted F1, plus F1 per class, as a flat dict for records."""
    table = per_class_table(y_true, y_pred, classes)
    out = {
        "accuracy": float(table.loc["accuracy", "f1-score"]),
        "macro_f1": float(table.loc["macro avg", "f1-score"]),
        "weighted_f1": float(table.loc["weighted avg", "f1-score"]),
        "n": int(table.loc["accuracy", "support"]),
    }
    out.update({f"f1_{c}": float(table.loc[c, "f1-score"]) for c in classes})
    return out


def format_table(table: pd.DataFrame) -> str:
    """The per-class table as text, two decimals, the way the original report printed it."""
    return table.to_string(float_format=lambda v: f"{v:.2f}", na_rep="")
