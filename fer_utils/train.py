"""One ``fit`` for every model: in-memory data, batch augmentation, checkpoints and resume.

Model selection uses the validation split only: the best epoch is the one with the highest
validation accuracy, and early stopping watches the same number. Without a validation split
(the final refit on all the training data) the model is the one after the last epoch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.transforms.v2 import MixUp
from tqdm.auto import tqdm

from .augment import RandomCrop, make_augment
from .checkpoints import load_state, model_spec, read_checkpoint, save_torch
from .config import TrainConfig
from .data import Split
from .evaluate import predict_proba
from .inputs import to_model_input
from .models import INPUT_SHAPE, NUM_CLASSES
from .runtime import autocast, default_device, resolve_precision, set_seed

# Training images scored each epoch without augmentation, in eval mode (history column
# ``clean_train_accuracy``): the overfitting gap is this minus validation accuracy. The accuracy
# ``fit`` logs on the batches it trained on (``train_accuracy``) is lowered by the augmentation itself.
CLEAN_TRAIN_SAMPLE = 2000


@dataclass
class FitResult:
    """What ``fit`` returns: the model at its best validation epoch, and the epoch-by-epoch history."""

    model: nn.Module
    history: pd.DataFrame
    best_epoch: int
    best_val_accuracy: float | None  # None when trained without a validation split
    train_seconds: float


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum,
            weight_decay=config.weight_decay, nesterov=True,
        )
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {config.optimizer!r}")


def make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule; all but 'plateau' step once per batch."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        if total < 4:
            raise ValueError(f"the 'onecycle' schedule needs at least 4 steps, got {total}; use more data or epochs")
        # Warm up over 20% of the steps (at least two, so that very short runs still work).
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total,
                                                   pct_start=max(0.2, 2 / total))
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"schedule must be 'onecycle', 'cosine', 'plateau' or 'constant', got {config.schedule!r}")


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed for one epoch's shuffling, augmentation and dropout: resuming at any epoch
    boundary replays exactly what an uninterrupted run would have drawn."""
    return seed * 100_003 + epoch


def epoch_sizes(train_sizes, epochs: int) -> list[int]:
    """The training image side for each of ``epochs`` epochs (48 throughout without ``train_sizes``)."""
    if not train_sizes:
        return [INPUT_SHAPE[-1]] * epochs
    return [train_sizes[len(train_sizes) * e // epochs] for e in range(epochs)]


def distillation_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_probs: torch.Tensor | None = None,
                      weight: float = 0.0, temperature: float = 1.0, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy with the labels, mixed with a teacher's soft targets (Hinton et al., 2015):
    ``(1 - weight) * CE + weight * T² * KL(teacher_T || student_T)``, where a distribution at temperature T is
    ``p^(1/T)`` renormalised (the softmax of logits / T). ``logits`` (B, 7), ``labels`` (B,) classes or (B, 7)
    probabilities (mixup's blended labels), ``teacher_probs`` (B, 7); the T² keeps the soft term's gradients on
    the scale of the hard one's."""
    hard = nn.functional.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    if teacher_probs is None or weight == 0:
        return hard
    teacher = torch.softmax(torch.log(teacher_probs.clamp_min(1e-8)) / temperature, dim=1)
    soft = nn.functional.kl_div(torch.log_softmax(logits / temperature, dim=1), teacher, reduction="batchmean")
    return (1 - weight) * hard + weight * temperature**2 * soft


def _train_one_epoch(model, images, labels, augment, optimizer, scheduler, loss_fn, config, device, dtype, size, bar,
                     average=None):
    """One epoch (``config.passes_per_epoch`` shuffled passes over the training data) at ``size`` x ``size``
    (resized, or random windows where ``config.crop`` is set), each batch blended by mixup where ``config.mixup`` > 0; returns (mean loss, accuracy on the unblended
    labels, images per second). ``average``: the weights' moving average, updated after each step."""
    mix = MixUp(alpha=config.mixup, num_classes=NUM_CLASSES) if config.mixup else None
    crop = RandomCrop(config.crop) if config.crop else None
    model.train()
    order = torch.cat([torch.randperm(len(images)) for _ in range(config.passes_per_epoch)])
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for begin in range(0, len(order), config.batch_size):
        idx = order[begin : begin + config.batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a single image
            continue
        x = augment(to_model_input(images[idx].to(device, non_blocking=True)))
        if crop is not None:
            x = crop(x)
        elif x.shape[-1] != size:
            x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        y = labels[idx].to(device, non_blocking=True)
        target = y
        if mix is not None:
            x, target = mix(x, y)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, dtype):
            logits = model(x)
            loss = loss_fn(logits.float(), target, idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if average is not None:
            average.update_parameters(model)
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step()
        total_loss += loss.item() * len(idx)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(idx)
        bar.update(1)
    seconds = time.perf_counter() - start
    return total_loss / seen, correct / seen, seen / seconds


def clean_train_sample(train: Split, size: int | None = None) -> Split:
    """A fixed random sample of ``size`` (default ``CLEAN_TRAIN_SAMPLE``) training images, all of them
    if fewer, drawn with its own generator so that the training run's random streams are untouched."""
    size = CLEAN_TRAIN_SAMPLE if size is None else size
    index = np.random.default_rng(0).choice(len(train), size=min(size, len(train)), replace=False)
    return train.subset(np.sort(index))


def _checkpoint_state(model, optimizer, scheduler, config, epoch, history, best, average=None) -> dict[str, Any]:
    return {
        "spec": model_spec(model),
        "state_dict": model.state_dict(),
        **({"average": average.state_dict()} if average is not None else {}),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": config.to_dict(),
        "epoch": epoch,
        "history": history,
        "best": best,
    }


def fit(
    model: nn.Module,
    train: Split,
    val: Split | None,
    config: TrainConfig | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    soft_targets: np.ndarray | None = None,
) -> FitResult:
    """Train ``model`` on ``train``, choosing the best epoch by accuracy on ``val`` (the last
    epoch when ``val`` is None). Validation runs in fp32 whatever the training precision.
    With ``config.distill`` > 0, ``soft_targets`` (N, 7: a teacher's probabilities for each training image)
    join the labels in the loss (``distillation_loss``). With ``config.ema`` > 0 the moving average of the weights
    is what is validated, chosen and returned.

    With ``run_dir``, a checkpoint (``last.pt``) is written atomically after every epoch, and
    ``resume=True`` continues from it; the final weights equal those of an uninterrupted run.
    """
    config = config or TrainConfig()
    if val is None and (config.patience or config.schedule == "plateau"):
        raise ValueError("early stopping and the 'plateau' schedule need a validation split")
    device = torch.device(device) if device is not None else default_device()
    dtype = resolve_precision(config.precision, device)
    set_seed(config.seed)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    images = torch.from_numpy(train.images)
    labels = torch.from_numpy(train.labels)
    if device.type == "cuda":
        images, labels = images.to(device), labels.to(device)
    seen_per_epoch = len(images) * config.passes_per_epoch
    steps_per_epoch = sum(1 for b in range(0, seen_per_epoch, config.batch_size) if seen_per_epoch - b >= 2)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    if config.distill and (soft_targets is None or soft_targets.shape != (len(train), NUM_CLASSES)):
        raise ValueError(f"distill={config.distill} needs soft targets of shape ({len(train)}, {NUM_CLASSES}), one row "
                         "per training image: a teacher's probabilities")
    soft = torch.from_numpy(np.asarray(soft_targets, np.float32)) if config.distill else None

    def loss_fn(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        teacher = soft[idx].to(logits.device) if soft is not None else None
        return distillation_loss(logits, y, teacher, config.distill, config.temperature, config.label_smoothing)

    augment = make_augment(config.augment)
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True) if config.ema else None
    scored = average.module if average is not None else model  # what is validated, chosen and returned
    sizes = [config.crop] * config.epochs if config.crop else epoch_sizes(config.train_sizes, config.epochs)
    clean_train = clean_train_sample(train)

    history: list[dict[str, Any]] = []
    best = {"epoch": 0, "val_accuracy": -1.0, "state_dict": None, "epochs_without_gain": 0}
    start_epoch = 1
    checkpoint = Path(run_dir) / "last.pt" if run_dir is not None else None
    if resume and checkpoint is not None and checkpoint.exists():
        ckpt = read_checkpoint(checkpoint)
        if ckpt["config"] != config.to_dict() or ckpt["spec"] != model_spec(model):
            raise ValueError(
                f"{checkpoint} was written by another configuration or model; resume with the same "
                "settings, or start afresh without --resume (or in another run folder)"
            )
        load_state(model, ckpt["state_dict"], checkpoint)
        if average is not None:
            average.load_state_dict(ckpt["average"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history, best, start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"] + 1

    epochs = tqdm(range(start_epoch, config.epochs + 1), desc="epochs", disable=not progress,
                  initial=start_epoch - 1, total=config.epochs)
    for epoch in epochs:
        if best["epochs_without_gain"] >= (config.patience or float("inf")):
            break
        torch.manual_seed(epoch_seed(config.seed, epoch))
        with tqdm(total=steps_per_epoch, desc=f"epoch {epoch}", leave=False, disable=not progress) as bar:
            loss, acc, speed = _train_one_epoch(
                model, images, labels, augment, optimizer, scheduler, loss_fn, config, device, dtype,
                sizes[epoch - 1], bar, average,
            )
        t0 = time.perf_counter()
        row = {"epoch": epoch, "train_size": sizes[epoch - 1], "train_loss": loss, "train_accuracy": acc,
               "clean_train_accuracy": float((predict_proba(scored, clean_train.images).argmax(1)
                                              == clean_train.labels).mean())}
        if val is not None:
            val_probs = predict_proba(scored, val.images)
            row["val_loss"] = float(nn.functional.nll_loss(torch.log(torch.from_numpy(val_probs) + 1e-12),
                                                           torch.from_numpy(val.labels)))
            row["val_accuracy"] = float((val_probs.argmax(1) == val.labels).mean())
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(row["val_accuracy"])
        row.update({"lr": optimizer.param_groups[0]["lr"], "images_per_s": speed,
                    "seconds": seen_per_epoch / speed + time.perf_counter() - t0})
        history.append(row)
        val_acc = row.get("val_accuracy")
        if val_acc is None or val_acc > best["val_accuracy"]:
            state = {k: v.detach().cpu().clone() for k, v in scored.state_dict().items()}
            best = {"epoch": epoch, "val_accuracy": -1.0 if val_acc is None else val_acc,
                    "state_dict": state, "epochs_without_gain": 0}
        else:
            best["epochs_without_gain"] += 1
        epochs.set_postfix(loss=f"{loss:.3f}", val_acc="-" if val_acc is None else f"{val_acc:.4f}",
                           img_s=f"{speed:.0f}")
        if checkpoint is not None:
            save_torch(checkpoint, _checkpoint_state(model, optimizer, scheduler, config, epoch, history, best, average))

    if best["state_dict"] is not None:
        load_state(model, best["state_dict"], "the best epoch")
    frame = pd.DataFrame(history)
    seconds = float(frame["seconds"].sum()) if len(frame) else 0.0
    best_val = best["val_accuracy"] if val is not None else None
    return FitResult(model.eval(), frame, best["epoch"], best_val, seconds)


def estimate_minutes(model: nn.Module, config: TrainConfig, n_images: int, batches: int = 6,
                     device: str | torch.device | None = None) -> float:
    """The expected training time of ``config`` on ``n_images`` images on this machine, in minutes,
    from timing a few training steps of ``model`` on random images (the model is left unchanged)."""
    import copy

    device = torch.device(device) if device is not None else default_device()
    dtype = resolve_precision(config.precision, device)
    model = copy.deepcopy(model).to(device).train()
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    augment = make_augment(config.augment)
    x = torch.randn(config.batch_size, *INPUT_SHAPE, device=device)
    y = torch.randint(0, 7, (config.batch_size,), device=device)
    seconds = []
    for _ in range(batches + 3):  # the first three steps warm up
        start = time.perf_counter()
        with autocast(device, dtype):
            v = RandomCrop(config.crop)(augment(x)) if config.crop else augment(x)
            loss = nn.functional.cross_entropy(model(v.contiguous(memory_format=torch.channels_last)).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    per_image = sorted(seconds[3:])[len(seconds[3:]) // 2] / config.batch_size
    return per_image * n_images * config.epochs / 60
