"""The models of the course, built by name from keyword configuration.

Every model takes a batch of (B, 1, 48, 48) float images and returns (B, 7) logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .inputs import PIXEL_MEAN, PIXEL_STD

NUM_CLASSES = 7
INPUT_SHAPE = (1, 48, 48)


class MLP(nn.Module):
    """A multi-layer perceptron on the flattened 48*48 pixels."""

    def __init__(self, hidden: Sequence[int] = (1024, 512), dropout: float = 0.3, num_classes: int = NUM_CLASSES):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = INPUT_SHAPE[1] * INPUT_SHAPE[2]
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def early_downsampling_stem(width: int) -> nn.Sequential:
    """ImageNet-style stem: 7x7 stride-2 conv then 2x2 pooling, 48x48 -> 12x12 before any block."""
    return nn.Sequential(conv_bn_relu(1, width, stride=2, kernel=7), nn.MaxPool2d(2))


class PlainCNN(nn.Module):
    """A VGG-style stack of ``depth`` 3x3 conv layers without skip connections.

    Convs come in stages of ``convs_per_stage``; after each stage (up to three) the map is pooled
    2x2 (``pooling`` 'max' or 'avg') and the width doubles. ``early_downsample`` adds the
    ImageNet-style stem that shrinks 48x48 to 12x12 first.
    """

    def __init__(
        self,
        depth: int = 6,
        width: int = 32,
        pooling: str = "max",
        early_downsample: bool = False,
        convs_per_stage: int = 2,
        dropout: float = 0.3,
        num_classes: int = NUM_CLASSES,
    ):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        layers: list[nn.Module] = []
        c_in = 1
        if early_downsample:
            layers.append(early_downsampling_stem(width))
            c_in = width
        c_out, pools = width, 0
        for i in range(depth):
            layers.append(conv_bn_relu(c_in, c_out))
            c_in = c_out
            if (i + 1) % convs_per_stage == 0 and i + 1 < depth and pools < 3:
                layers.append(pool(2))
                pools += 1
                c_out *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with a skip connection (a 1x1 projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResidualCNN(nn.Module):
    """A small ResNet for 48x48 faces: a 3x3 stem at full resolution, then stages of residual blocks.

    ``widths[i]`` channels and ``blocks[i]`` blocks in stage i; each stage after the first halves
    the map (48 -> 24 -> 12 -> 6 with four stages). The defaults have about 1.2M parameters,
    the size of the original report's model.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (1, 1, 1, 1),
        dropout: float = 0.3,
        early_downsample: bool = False,
        num_classes: int = NUM_CLASSES,
    ):
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths and blocks need one entry per stage, got {widths} and {blocks}")
        stem = early_downsampling_stem(widths[0]) if early_downsample else conv_bn_relu(1, widths[0])
        layers: list[nn.Module] = [stem]
        c_in = widths[0]
        for stage, (width, n) in enumerate(zip(widths, blocks, strict=True)):
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(ResidualBlock(c_in, width, stride))
                c_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet18(num_classes: int = NUM_CLASSES, dropout: float = 0.0, pretrained: bool = False) -> nn.Module:
    """torchvision's ResNet-18, adapted to 1x48x48: a 3x3 stride-1 first conv and no max-pool.

    ``pretrained`` starts from torchvision's ImageNet weights, when they are in torch's cache
    (nothing is downloaded here): every layer but the first conv and the classifier; the first conv
    keeps its 7x7 ImageNet filters, summed over RGB (a gray image is R = G = B), at stride 1.
    """
    from torchvision.models import (
        resnet,  # imported here: torchvision.models takes seconds to import
    )

    model = resnet.resnet18(weights=None, num_classes=num_classes)
    model.maxpool = nn.Identity()
    if pretrained:
        from .pretrained import load_imagenet_resnet18_state

        state = load_imagenet_resnet18_state()
        model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=1, padding=3, bias=False)
        state["conv1.weight"] = state["conv1.weight"].sum(dim=1, keepdim=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=False)
    else:
        model.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    if dropout:
        model.fc = nn.Sequential(nn.Dropout(dropout), model.fc)
    return model


class ONet(nn.Module):
    """MTCNN's output network (the last stage of a face detector), with a 7-emotion head.

    Pretrained (``pretrained=True``) on faces by MTCNN's authors to tell faces from non-faces, refine
    the box and place five landmarks, from 48x48 RGB crops, exactly FER-2013's size. The gray face
    feeds its three input channels, scaled as MTCNN does: (pixel - 127.5) / 128. ``train`` picks what
    learns: 'all' (fine-tune everything), 'last' (conv4 and the dense layers; conv1-3 frozen) or
    'head' (a linear probe on its frozen 256-d features). ``landmarks`` keeps MTCNN's own three heads
    (face probability, box, landmarks) for ``mtcnn_outputs``. Layer names are facenet-pytorch's.
    """

    _EARLY = ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3")
    FROZEN = {"all": (), "last": _EARLY, "head": (*_EARLY, "conv4", "prelu4", "dense5", "prelu5")}

    def __init__(self, pretrained: bool = False, train: str = "all", num_classes: int = NUM_CLASSES,
                 landmarks: bool = False):
        super().__init__()
        if train not in self.FROZEN:
            raise ValueError(f"train must be one of {sorted(self.FROZEN)}, got {train!r}")
        if train != "all" and not pretrained:
            raise ValueError("freezing layers (train='last' or 'head') only makes sense with pretrained=True")
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, kernel_size=3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, kernel_size=3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, kernel_size=3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, kernel_size=2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.head = nn.Linear(256, num_classes)
        if landmarks:
            self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)
        if pretrained:
            from .pretrained import load_onet_state

            state = load_onet_state()
            if not landmarks:
                state = {k: v for k, v in state.items() if not k.startswith("dense6")}
            missing, unexpected = self.load_state_dict(state, strict=False)
            assert not unexpected and set(missing) == {"head.weight", "head.bias"}, (missing, unexpected)
        for name in self.FROZEN[train]:
            getattr(self, name).requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) normalised gray faces (``inputs.to_model_input``) -> (B, 256) features."""
        x = ((x * PIXEL_STD + PIXEL_MEAN) * 255 - 127.5) / 128  # back to pixels, then MTCNN's scaling
        x = x.expand(-1, 3, -1, -1)
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(len(x), -1)  # facenet-pytorch flattens in Caffe's (W, H, C) order
        return self.prelu5(self.dense5(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def mtcnn_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MTCNN's own answers for (B, 1, 48, 48) normalised faces: the probability that each is a
        face, (B,), and its five landmarks (eyes, nose, mouth corners) in pixels, (B, 5, 2) as (x, y)."""
        if not hasattr(self, "dense6_3"):
            raise ValueError("build ONet with landmarks=True (and pretrained=True) to get MTCNN's outputs")
        z = self.features(x)
        face = torch.softmax(self.dense6_1(z), dim=1)[:, 1]
        points = self.dense6_3(z)  # 5 x's then 5 y's, as fractions of the crop
        size = x.shape[-1]
        return face, torch.stack([points[:, :5], points[:, 5:]], dim=2) * size


class Ensemble(nn.Module):
    """Models trained alike from different seeds, as one model: the mean of their class probabilities,
    returned as its log (logits whose softmax is that mean). (B, 1, 48, 48) -> (B, 7).

    ``members``: each member's spec, ``{'name', 'kwargs'}`` as ``build_model`` takes them
    (``ensemble_of`` builds one from trained models).
    """

    def __init__(self, members: Sequence[dict]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(build_model(m["name"], **m.get("kwargs", {})) for m in members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members]).mean(0)
        return probs.log()


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "plain_cnn": PlainCNN,
    "residual_cnn": ResidualCNN,
    "resnet18": resnet18,
    "onet": ONet,
    "ensemble": Ensemble,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name, e.g. ``build_model('plain_cnn', depth=4, pooling='avg')``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    try:
        model = MODELS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad options for model {name!r}: {err}") from err
    model.fer_spec = {"name": name, "kwargs": dict(kwargs)}
    return model


def ensemble_of(models: Sequence[nn.Module]) -> nn.Module:
    """One ``Ensemble`` of trained ``models`` (each made by ``build_model``), their weights copied in."""
    ensemble = build_model("ensemble", members=[model.fer_spec for model in models])
    for member, model in zip(ensemble.members, models, strict=True):
        member.load_state_dict(model.state_dict())
    return ensemble.eval()


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters (frozen ones are left out)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _describe(module: nn.Module) -> str:
    """A short name for a layer: its class, or its parts joined by '+' for a small Sequential."""
    if isinstance(module, nn.Conv2d):
        return f"Conv2d {module.kernel_size[0]}x{module.kernel_size[1]}" + (f" /{module.stride[0]}" if module.stride[0] > 1 else "")
    if isinstance(module, nn.Sequential) and len(module) <= 4:
        return " + ".join(_describe(m) for m in module)
    return type(module).__name__


def layer_table(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE):
    """The model as a table, one row per block (the children of each top-level Sequential, else
    the top-level modules): what it is, its output shape for one image, and its parameters.
    Shapes and counts come from torchinfo."""
    import pandas as pd
    from torchinfo import summary

    stats = summary(model, input_size=(1, *input_shape), depth=3, verbose=0, device="cpu")
    info = {}
    for layer in stats.summary_list:
        info.setdefault(id(layer.module), layer)
    blocks = [m for child in model.children() for m in (child.children() if isinstance(child, nn.Sequential) else [child])]
    rows = [{"layer": _describe(m), "output shape": " x ".join(map(str, info[id(m)].output_size[1:])),
             "parameters": sum(p.numel() for p in m.parameters())} for m in blocks if id(m) in info]
    return pd.DataFrame(rows)


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> int:
    """Forward-pass FLOPs for one image, by torch's own flop counter (a multiply-add counts 2)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    return counter.get_total_flops()
