import numpy as np
import pytest

import fer_utils as fu


@pytest.fixture
def saved(tmp_path):
    model = fu.build_model("residual_cnn", widths=[8, 16], blocks=[1, 1]).eval()
    return model, fu.save_model(tmp_path / "model.pt", model)


def test_load_model_rebuilds_the_same_model_in_one_call(saved):
    model, path = saved
    loaded = fu.load_model(path)
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(
        fu.predict_proba(loaded, images, precision="fp32"), fu.predict_proba(model, images, precision="fp32"), rtol=1e-6
    )
    assert not loaded.training


def test_a_truncated_checkpoint_gets_a_clear_error(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(fu.CheckpointError, match="truncated or not a PyTorch checkpoint"):
        fu.load_model(cut)


def test_a_checkpoint_whose_weights_do_not_fit_its_architecture_gets_a_clear_error(tmp_path):
    import torch

    model = fu.build_model("residual_cnn", widths=[8, 16], blocks=[1, 1])
    ckpt = {"spec": {"name": "residual_cnn", "kwargs": {"widths": [8, 32], "blocks": [1, 1]}},
            "state_dict": model.state_dict()}
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(fu.CheckpointError, match="do not match the architecture"):
        fu.load_model(tmp_path / "mismatch.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(fu.CheckpointError, match="not a fer_utils model checkpoint"):
        fu.load_model(tmp_path / "foreign.pt")


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(fu.CheckpointError, match="python -m fer_utils train"):
        fu.load_model(tmp_path / "none.pt")


def test_atomic_write_gives_the_file_a_plain_files_permissions(tmp_path):
    """Like open(path, "w"): readable by others where the umask allows it, not private to the writer."""
    import os
    import stat

    from fer_utils.storage import atomic_write

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "annotated.png", lambda f: f.write(b"png"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from fer_utils.storage import atomic_write

    target = tmp_path / "record.json"
    target.write_text("old")

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
