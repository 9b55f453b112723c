"""Training throughput: this project's pipeline against the usual torchvision one, same model.

The usual pipeline: ``ImageFolder`` over JPEG files, per-image PIL transforms
(flip, shift/scale, to tensor, normalise, erasing), a ``DataLoader`` with worker processes,
fp32 in the default memory layout. Ours: the dataset in memory as one uint8 tensor, the same
augmentations on whole batches, ``channels_last``, and bf16 autocast where the CPU has it.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.transforms import v2

from .augment import make_augment
from .data import load_fer2013
from .inputs import PIXEL_MEAN, PIXEL_STD, to_model_input
from .models import build_model
from .paths import find_dataset
from .runtime import autocast, default_device, resolve_precision, set_seed, usable_cpus

POLICY = "hflip+shift+erase"


def usual_transform() -> v2.Compose:
    """The per-image PIL pipeline equivalent to POLICY."""
    return v2.Compose([
        v2.Grayscale(1),
        v2.RandomHorizontalFlip(),
        v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([PIXEL_MEAN], [PIXEL_STD]),
        v2.RandomErasing(p=0.5, scale=(0.02, 0.2)),
    ])


def _image_folder(location: Path, n: int, workdir: Path) -> Path:
    """A folder of ``n`` training JPEGs (train/<class>/...), extracted from the archive if needed."""
    if location.is_dir():
        return location / "train" if (location / "train").is_dir() else location
    with zipfile.ZipFile(location) as archive:
        members = [m for m in archive.namelist() if m.startswith("train/") and not m.endswith("/")]
        step = max(1, len(members) // n)
        archive.extractall(workdir, members[::step][:n])
    return workdir / "train"


def _time_steps(model, batches, step) -> float:
    """Images per second over ``batches`` (an iterator of (x, y)), after two warm-up steps."""
    seen, start = 0, None
    for i, (x, y) in enumerate(batches):
        if i == 2:
            start, seen = time.perf_counter(), 0
        step(x, y)
        seen += len(y)
    return seen / (time.perf_counter() - start)


def compare_pipelines(model_name: str = "residual_cnn", batches: int = 30, batch_size: int = 128,
                      data_path=None, workers: int | None = None) -> dict:
    """Train ``batches`` steps with each pipeline and return both images/s and their ratio."""
    set_seed(0)
    device = default_device()
    workers = workers if workers is not None else min(2, usable_cpus())
    loss_fn = nn.CrossEntropyLoss()
    results = {"model": model_name, "batch_size": batch_size, "timed_batches": batches - 2, "device": str(device)}

    def make_step(model, dtype, channels_last):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step(x, y):
            x, y = x.to(device), y.to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, dtype):
                loss = loss_fn(model(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    with tempfile.TemporaryDirectory() as tmp:
        folder = _image_folder(find_dataset(data_path), batches * batch_size, Path(tmp))
        dataset = torchvision.datasets.ImageFolder(str(folder), transform=usual_transform())
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                             num_workers=workers, drop_last=True, persistent_workers=False)
        model = build_model(model_name).to(device)
        results["usual_images_per_s"] = _time_steps(model, iter(loader), make_step(model, None, False))

    data = load_fer2013(data_path).train
    images, labels = torch.from_numpy(data.images), torch.from_numpy(data.labels)
    augment = make_augment(POLICY)
    dtype = resolve_precision("auto", device)

    def ours():
        order = torch.randperm(len(images))
        for b in range(batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            yield augment(to_model_input(images[idx])), labels[idx]

    model = build_model(model_name).to(device).to(memory_format=torch.channels_last)
    results["ours_images_per_s"] = _time_steps(model, ours(), make_step(model, dtype, True))
    results["ours_precision"] = str(dtype or torch.float32)
    results["ratio"] = results["ours_images_per_s"] / results["usual_images_per_s"]
    return results
