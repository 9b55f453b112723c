"""`python -m fer_utils finetune FOLDER --out MODEL.pt`: a folder of labelled faces written by the test, end to end,
and every bad input a new user tries answered with one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import accuracy_score

import fer_utils as fu
from fer_utils import cli
from fer_utils.finetune import run_folder

SWAP = {"happy": "sad", "sad": "happy"}  # labels the shipped model gets wrong: fine-tuning has to learn them


def write_faces(real_data, folder, per_class: int, names=SWAP) -> list:
    """``per_class`` real FER-2013 training faces of each class in ``names``, written into the folder of the
    name it maps to (happy faces into sad/ and back: a labelling the shipped model does not know)."""
    rng, written = np.random.default_rng(0), []
    for cls, label in names.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in rng.choice(np.flatnonzero(real_data.train.labels == fu.CLASSES.index(cls)), per_class, replace=False):
            Image.fromarray(real_data.train.images[i]).save(folder / label / f"{i}.png")
            written.append(folder / label / f"{i}.png")
    return written


def run_cli(*args, capsys):
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_finetune_learns_reports_on_held_out_faces_and_serves_predict(real_data, tmp_path):
    folder = tmp_path / "faces"
    write_faces(real_data, folder, 40)
    (folder / "happy" / "notes.txt").write_text("not a photo")
    (folder / "sad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    Image.fromarray(np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (200, 1))).save(folder / "sad" / "wall.png")
    (folder / ".frames").mkdir()  # the camera's collect mode keeps whole frames here: not an emotion, ignored
    out = tmp_path / "mine.pt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "fer_utils", "finetune", folder, "--out", out, "--quiet"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 3 + done.stderr.count("does not look like a face"), done.stderr
    assert any("notes.txt" in line for line in skipped) and any("broken.png" in line for line in skipped)
    assert any("wall.png: no face found" in line for line in skipped)

    report = json.loads(out.with_suffix(".json").read_text())
    base = fu.checkpoints.DEFAULT_MODEL
    assert report["finetuned_from"] == {"checkpoint": str(base), "sha256": fu.storage.file_sha256(base)}
    assert sum(report["parts"].values()) == sum(report["faces"].values()) <= 80
    held = [fu.faces.whole_image(fu.faces.read_image(p)) for p in report["held_out_files"]]
    labels = np.array([fu.CLASSES.index(os.path.basename(os.path.dirname(p))) for p in report["held_out_files"]])
    assert len(held) == report["parts"]["held out"] and set(labels) == {fu.CLASSES.index("happy"), fu.CLASSES.index("sad")}
    for name, model in (("before", fu.load_model(base)), ("after", fu.load_model(out))):
        predicted = fu.predict_proba(model, np.stack(held), tta="flip").argmax(1)
        assert [fu.CLASSES[i] for i in predicted] == report["held_out_predictions"][name]
        assert report["held_out"][name]["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert report["held_out"]["after"]["accuracy"] > report["held_out"]["before"]["accuracy"] + 0.3
    assert report["held_out"]["mcnemar"]["p_value"] < 0.05 and "mine.pt" in done.stdout
    assert torch.load(out, weights_only=False)["finetuned"]["faces"] == report["faces"]
    assert not run_folder(out).exists()

    first = report["held_out_files"][0]
    answer = subprocess.run([sys.executable, "-m", "fer_utils", "predict", first, "--checkpoint", out, "--json",
                             "--backend", "torch"], env=env, capture_output=True, text=True, timeout=600)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)[0]["faces"][0]["emotion"] == report["held_out_predictions"]["after"][0]
    assert cli.main(["export", "--checkpoint", str(out)]) == 0 and out.with_suffix(".onnx").exists()


@pytest.mark.parametrize("make, says", [
    (lambda root: None, "has no emotion folder"),
    (lambda root: [(root / "happy").mkdir(), (root / "joy").mkdir()], "joy is not an emotion; name each folder after one of angry, disgust"),
    (lambda root: (root / "sad").mkdir(), "has only sad/: fine-tuning needs photos of at least two emotions"),
])
def test_a_folder_that_is_not_laid_out_by_emotion_gets_one_line(tmp_path, capsys, make, says):
    (tmp_path / "faces").mkdir()
    make(tmp_path / "faces")
    code, out, err = run_cli("finetune", tmp_path / "faces", "--out", tmp_path / "m.pt", capsys=capsys)
    assert code == 2 and err.startswith("error: ") and says in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_too_few_faces_and_photos_without_faces_are_said(real_data, tmp_path, capsys):
    folder = tmp_path / "faces"
    write_faces(real_data, folder, 2, {"happy": "happy"})
    (folder / "sad").mkdir()
    for i in range(6):
        Image.fromarray(np.full((120, 160, 3), 40 * i, np.uint8)).save(folder / "sad" / f"wall{i}.jpg")
    code, out, err = run_cli("finetune", folder, "--out", tmp_path / "m.pt", "--quiet", capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("error: too few usable faces (happy 2, sad 0)")
    assert sum(line.startswith("skipped ") and "no face found" in line for line in lines) == 6
    assert not (tmp_path / "m.pt").exists()


def test_an_interrupted_finetuning_keeps_its_epochs_and_resumes(real_data, tmp_path, capsys, monkeypatch):
    folder, out = tmp_path / "faces", tmp_path / "m.pt"
    write_faces(real_data, folder, 12)
    real_epoch, calls = fu.train._train_one_epoch, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(fu.train, "_train_one_epoch", interrupted)
    code, _, err = run_cli("finetune", folder, "--out", out, "--quiet", capsys=capsys)
    assert code == 130 and "--resume" in err and not out.exists()
    assert torch.load(run_folder(out) / "last.pt", weights_only=False)["epoch"] == 1

    code, _, err = run_cli("finetune", folder, "--out", out, "--quiet", capsys=capsys)
    assert code == 2 and "add --resume to continue it, or delete that folder" in err and not out.exists()

    code, stdout, err = run_cli("finetune", folder, "--out", out, "--quiet", "--resume", capsys=capsys)
    assert code == 0, err
    assert out.exists() and not run_folder(out).exists() and "held-out accuracy after" in stdout
