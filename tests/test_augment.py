import pytest
import torch
from torchvision.transforms.v2 import functional as TF

import fer_utils as fu
from fer_utils.augment import RandomCrop, RandomErase, RandomHFlip, affine


def batch(n=64):
    torch.manual_seed(0)
    return torch.rand(n, 1, 48, 48)


def test_hflip_flips_each_image_on_its_own_draw():
    x = batch()
    y = RandomHFlip(0.5)(x)
    flipped = torch.tensor([torch.equal(a, TF.horizontal_flip(b)) for a, b in zip(y, x, strict=True)])
    kept = torch.tensor([torch.equal(a, b) for a, b in zip(y, x, strict=True)])
    assert torch.all(flipped | kept)
    assert 10 < flipped.sum() < 54  # per image, not all-or-nothing as a v2 transform on a batch


def test_affine_matches_torchvisions_rotate_and_translate():
    x = batch(4)
    zero, one = torch.zeros(4), torch.ones(4)
    rotated = affine(x, torch.full((4,), 90.0), torch.zeros(4, 2), one)
    torch.testing.assert_close(rotated, TF.rotate(x, 90.0), atol=1e-5, rtol=0)
    rotated30 = affine(x, torch.full((4,), 30.0), torch.zeros(4, 2), one)
    reference = TF.rotate(x, 30.0, interpolation=TF.InterpolationMode.BILINEAR)
    torch.testing.assert_close(rotated30[..., 14:34, 14:34], reference[..., 14:34, 14:34], atol=1e-5, rtol=0)
    shifted = affine(x, zero, torch.tensor([[5 / 48, 3 / 48]] * 4), one)
    reference = TF.affine(x, angle=0.0, translate=[5, 3], scale=1.0, shear=[0.0, 0.0])
    # torchvision fills uncovered pixels with 0; ours repeats the border: compare the covered part
    torch.testing.assert_close(shifted[..., 3:, 5:], reference[..., 3:, 5:], atol=1e-5, rtol=0)


def test_random_crop_takes_a_window_of_each_image_at_its_own_corner():
    x = batch()
    torch.manual_seed(3)
    y = RandomCrop(40)(x)
    assert y.shape == (64, 1, 40, 40)
    corners = []
    for a, b in zip(y, x, strict=True):  # each window is torchvision's crop of its image at one of the 9 x 9 corners
        found = [(top, left) for top in range(9) for left in range(9) if torch.equal(a, TF.crop(b, top, left, 40, 40))]
        assert len(found) == 1
        corners += found
    assert len(set(corners)) > 30  # drawn per image, not one corner for the batch


def test_erase_blanks_a_rectangle_of_the_asked_area():
    x = batch() + 1  # no zeros before erasing
    y = RandomErase(p=1.0, area=(0.05, 0.2))(x)
    erased = (y == 0).flatten(1).float().mean(1)
    assert torch.all(erased > 0.03) and torch.all(erased < 0.22)


@pytest.mark.parametrize("policy", fu.POLICIES)
def test_every_policy_keeps_the_shape_and_is_seeded(policy):
    x = batch(8)
    aug = fu.make_augment(policy)
    torch.manual_seed(1)
    a = aug(x)
    torch.manual_seed(1)
    b = aug(x)
    assert a.shape == x.shape and torch.equal(a, b)
    if policy == "none":
        assert torch.equal(a, x)
    else:
        assert not torch.equal(a, x)


def test_unknown_policy_part_is_an_error():
    with pytest.raises(ValueError, match="unknown augmentation"):
        fu.make_augment("hflip+mixup")
