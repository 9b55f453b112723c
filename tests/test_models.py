import pytest
import torch

import fer_utils as fu

CONFIGS = [
    ("mlp", {}),
    ("plain_cnn", {"depth": 4, "pooling": "avg"}),
    ("plain_cnn", {"depth": 6, "early_downsample": True}),
    ("residual_cnn", {}),
    ("residual_cnn", {"widths": [16, 32], "blocks": [2, 1]}),
    ("resnet18", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
def test_every_model_maps_a_batch_of_faces_to_seven_logits(name, kwargs):
    model = fu.build_model(name, **kwargs).eval()
    assert model(torch.zeros(3, 1, 48, 48)).shape == (3, 7)
    assert model.fer_spec == {"name": name, "kwargs": kwargs}
    assert fu.count_parameters(model) > 0


def test_mlp_flops_match_the_hand_count():
    model = fu.build_model("mlp", hidden=[64, 32])
    # torch's counter counts 2 FLOPs per multiply-add of each linear layer.
    assert fu.count_flops(model) == 2 * (48 * 48 * 64 + 64 * 32 + 32 * 7)


def test_default_residual_cnn_has_the_original_reports_size():
    assert 1.1e6 < fu.count_parameters(fu.build_model("residual_cnn")) < 1.3e6


def test_early_downsampling_shrinks_the_map_to_12x12_before_the_first_block():
    plain = fu.build_model("plain_cnn", depth=2, early_downsample=True)
    assert plain.features[0](torch.zeros(1, 1, 48, 48)).shape[-2:] == (12, 12)
    assert fu.count_flops(plain) < fu.count_flops(fu.build_model("plain_cnn", depth=2))


def test_resnet18_keeps_full_resolution_in_its_stem():
    model = fu.build_model("resnet18")
    assert model.conv1.in_channels == 1 and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_unknown_models_and_options_get_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        fu.build_model("vgg")
    with pytest.raises(ValueError, match="bad options for model 'mlp'"):
        fu.build_model("mlp", depth=3)
    with pytest.raises(ValueError, match="pooling must be"):
        fu.build_model("plain_cnn", pooling="median")


@pytest.mark.parametrize("name, kwargs", [("plain_cnn", {"depth": 8}), ("residual_cnn", {}), ("mlp", {}), ("resnet18", {})])
def test_layer_table_accounts_for_every_parameter_and_ends_in_seven_logits(name, kwargs):
    model = fu.build_model(name, **kwargs)
    table = fu.models.layer_table(model)
    assert table["parameters"].sum() == fu.count_parameters(model)
    assert table["output shape"].iloc[-1] == "7"
    if name == "plain_cnn":  # 8 conv blocks, 3 poolings that halve the map: 48 -> 24 -> 12 -> 6
        assert (table["layer"] == "Conv2d 3x3 + BatchNorm2d + ReLU").sum() == 8
        assert list(table.loc[table["layer"] == "MaxPool2d", "output shape"]) == ["32 x 24 x 24", "64 x 12 x 12", "128 x 6 x 6"]
