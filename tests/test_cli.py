"""The command line, run as a user would: ``python -m fer_utils ...`` in a subprocess."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

TINY = ["plain_cnn", "--model-kwargs", '{"depth": 2, "width": 16}', "--batch-size", "32", "--lr", "0.01",
        "--augment", "shift", "--precision", "fp32", "--quiet"]


@pytest.fixture
def env(synthetic_zip, tmp_path):
    return {**os.environ, "FER2013_PATH": str(synthetic_zip), "FER_RESULTS_DIR": str(tmp_path / "results"),
            "FER_RUNS_DIR": str(tmp_path / "runs"), "PYTHONUNBUFFERED": "1"}


def cli(*args, env, check=True):
    out = subprocess.run([sys.executable, "-m", "fer_utils", *map(str, args)], env=env,
                         capture_output=True, text=True, timeout=600)
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.mark.parametrize("command", ["download", "train", "evaluate", "predict", "bench"])
def test_every_command_has_help(command, env):
    out = cli(command, "--help", env=env)
    assert "usage: python -m fer_utils " + command in out.stdout


def test_train_then_evaluate_prints_the_per_class_table(env, tmp_path):
    model = tmp_path / "model.pt"
    out = cli("train", *TINY, "--epochs", "8", "--name", "tiny", "--output", model, env=env)
    record = json.loads((tmp_path / "results" / "experiments" / "tiny.json").read_text())
    assert record["config"]["model"] == "plain_cnn" and record["epochs_run"] == 8
    assert record["val"]["accuracy"] > 0.5 and "git_commit" in record["environment"]
    assert f"model saved to {model}" in out.stdout

    out = cli("evaluate", model, env=env)
    for heading in ("== test (56 images) ==", "== PublicTest (28 images) ==", "== PrivateTest (28 images) ==",
                    "== deduplicated (56 images) =="):
        assert heading in out.stdout
    for row in ("angry", "surprise", "accuracy", "macro avg", "weighted avg"):
        assert row in out.stdout
    saved = json.loads((tmp_path / "results" / "evaluation_model.json").read_text())
    assert saved["metrics"]["test"]["n"] == 56


def test_predict_reads_any_image_and_reports_files_that_are_not_images(env, tmp_path):
    model = tmp_path / "model.pt"
    cli("train", *TINY, "--epochs", "1", "--output", model, env=env)
    Image.new("RGB", (120, 90), (200, 120, 40)).save(tmp_path / "colour.png")
    Image.new("L", (48, 48), 128).save(tmp_path / "gray.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    out = cli("predict", tmp_path / "colour.png", tmp_path / "notes.txt", tmp_path / "gray.jpg",
              "--checkpoint", model, env=env, check=False)
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / "colour.png")) and "%" in lines[0]
    assert "notes.txt is not an image" in out.stderr


def test_a_missing_dataset_is_a_clear_error_not_a_traceback(env, tmp_path):
    env = {**env, "FER2013_PATH": str(tmp_path / "missing.zip")}
    out = cli("train", *TINY, "--epochs", "1", env=env, check=False)
    assert out.returncode == 2
    assert "FER-2013 was not found" in out.stderr and "Traceback" not in out.stderr


def test_training_killed_with_sigkill_resumes_to_the_same_weights(env, tmp_path):
    args = ["train", *TINY, "--epochs", "25", "--augment", "all"]
    cli(*args, "--name", "whole", "--output", tmp_path / "whole.pt", env=env)

    proc = subprocess.Popen([sys.executable, "-m", "fer_utils", *args, "--name", "cut"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "runs" / "cut" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=False)["epoch"] >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(checkpoint, weights_only=False)["epoch"]
    assert killed_at < 25

    cli(*args, "--name", "cut", "--resume", "--output", tmp_path / "resumed.pt", env=env)
    whole = torch.load(tmp_path / "whole.pt", weights_only=False)["state_dict"]
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=False)["state_dict"]
    for key in whole:
        torch.testing.assert_close(whole[key], resumed[key], rtol=0, atol=0, msg=key)


def test_bench_compares_both_pipelines_and_writes_a_record(env, tmp_path):
    out = cli("bench", "--model", "mlp", "--batches", "4", "--batch-size", "8", env=env)
    record = json.loads((tmp_path / "results" / "bench_mlp.json").read_text())
    assert record["usual_images_per_s"] > 0 and record["ours_images_per_s"] > 0
    assert record["ratio"] == pytest.approx(record["ours_images_per_s"] / record["usual_images_per_s"])
    assert '"ratio"' in out.stdout
