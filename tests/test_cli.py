"""The command line, run as a user would: ``python -m fer_utils ...`` in a subprocess."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as samples

import fer_utils as fu
from fer_utils.sample_video import moving_face_video

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


COMMANDS = ["download", "train", "evaluate", "predict", "finetune", "video", "webcam", "export", "bench", "bench-inference"]


def test_every_command_has_help(env, capsys):
    out = cli("--help", env=env)  # the entry point, as a user runs it
    assert all(command in out.stdout for command in COMMANDS)
    from fer_utils import cli as command_line

    for command in COMMANDS:  # each command's help in this process: one interpreter start (~10 s of CPU), not nine
        with pytest.raises(SystemExit) as exited:
            command_line.main([command, "--help"])
        assert exited.value.code == 0
        assert "usage: python -m fer_utils " + command in capsys.readouterr().out


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


def test_train_distils_a_teacher_and_a_missing_teacher_is_one_clear_line(env, tmp_path):
    teacher = tmp_path / "teacher.pt"
    cli("train", *TINY, "--epochs", "6", "--name", "teacher", "--output", teacher, env=env)
    cli("train", *TINY, "--epochs", "2", "--name", "student", "--distill", "0.7", "--temperature", "2",
        "--teacher", teacher, "--tta", "flip", env=env)
    record = json.loads((tmp_path / "results" / "experiments" / "student.json").read_text())
    assert record["config"]["distill"] == 0.7 and record["teacher"]["sha256"] == fu.storage.file_sha256(teacher)
    assert record["teacher"]["train_accuracy"] > 0.5 and record["teacher"]["tta"] == "flip"
    out = cli("train", *TINY, "--epochs", "1", "--distill", "0.5", "--teacher", tmp_path / "none.pt", env=env, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "teacher checkpoint" in out.stderr, out.stderr


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    fu.set_seed(0)
    return fu.save_model(tmp_path_factory.mktemp("model") / "model.pt", fu.build_model("plain_cnn", depth=2, width=8))


def test_predict_names_each_face_and_reports_every_bad_input(env, tmp_path, tiny_model):
    Image.fromarray(samples.astronaut()).save(tmp_path / "astronaut.jpg")
    Image.fromarray(samples.coffee()).save(tmp_path / "coffee.png")
    Image.fromarray(fu.crop_face(samples.astronaut(), (175, 65, 100, 100))).save(tmp_path / "fer_crop.png")  # small: whole
    (tmp_path / "empty.jpg").write_bytes(b"")
    data = (tmp_path / "astronaut.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.fromarray(samples.astronaut()).save(folder / "again.png")
    (folder / "notes.txt").write_text("not an image")
    out = cli("predict", tmp_path / "astronaut.jpg", tmp_path / "empty.jpg", tmp_path / "coffee.png",
              tmp_path / "truncated.jpg", tmp_path / "missing.png", tmp_path / "fer_crop.png", folder,
              "--checkpoint", tiny_model, "--annotate", tmp_path / "annotated", env=env, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith(f"{tmp_path / 'astronaut.jpg'}: face 1 at x=") and "%" in lines[0]
    assert lines[1] == f"{tmp_path / 'coffee.png'}: no face found (--whole classifies the whole image as one face)"
    assert lines[2].startswith(f"{tmp_path / 'fer_crop.png'}: whole image: ")
    assert lines[3].startswith(f"{folder / 'again.png'}: face 1 at x=")
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("error: ") for e in errors)
    for name, message in [("empty.jpg", "empty file"), ("truncated.jpg", "truncated or corrupt"),
                          ("missing.png", "no such file"), ("notes.txt", "not an image")]:
        assert any(name in e and message in e for e in errors), (name, errors)
    annotated = Image.open(tmp_path / "annotated" / "astronaut_emotions.png")
    assert annotated.size == (512, 512)


def test_predict_says_when_there_is_nothing_to_classify(env, tmp_path, tiny_model):
    """An empty folder is an error; a small blank or noise image is no face, not an emotion."""
    (tmp_path / "empty").mkdir()
    out = cli("predict", tmp_path / "empty", "--checkpoint", tiny_model, env=env, check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == f"error: no image found in {tmp_path / 'empty'}: give image files or folders that hold some"
    Image.new("L", (30, 30), 128).save(tmp_path / "blank.png")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    out = cli("predict", tmp_path / "blank.png", tmp_path / "noise.png", "--checkpoint", tiny_model, env=env)
    assert out.stdout.strip().splitlines() == [
        f"{tmp_path / 'blank.png'}: a blank 30x30 image (a single grey level), not a face "
        "(--whole classifies the whole image as one face)",
        f"{tmp_path / 'noise.png'}: no face in this 64x64 image (taken whole, it does not look like a face) "
        "(--whole classifies the whole image as one face)"]
    out = cli("predict", tmp_path / "noise.png", "--whole", "--checkpoint", tiny_model, env=env)
    assert out.stdout.startswith(f"{tmp_path / 'noise.png'}: whole image: ")  # asked for: classified anyway


@pytest.mark.parametrize("detector", ["centerface", "mtcnn", "haar"])
def test_predict_uses_the_detector_asked_for(env, tmp_path, tiny_model, detector):
    Image.fromarray(samples.astronaut()).save(tmp_path / "astronaut.png")
    out = cli("predict", tmp_path / "astronaut.png", "--json", "--detector", detector, "--checkpoint", tiny_model, env=env)
    [face] = json.loads(out.stdout)[0]["faces"]
    assert face["score"] >= fu.faces.DEFAULT_MIN_SCORE[detector]


def test_predict_json_parses_and_whole_skips_detection(env, tmp_path, tiny_model):
    Image.fromarray(samples.astronaut()).save(tmp_path / "astronaut.png")
    out = cli("predict", tmp_path / "astronaut.png", "--json", "--checkpoint", tiny_model, "--backend", "torch",
              env=env)
    result = json.loads(out.stdout)
    [face] = result[0]["faces"]
    assert result[0]["whole"] is False and result[0]["error"] is None and len(face["box"]) == 4
    assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    out = cli("predict", tmp_path / "astronaut.png", "--whole", "--checkpoint", tiny_model, env=env)
    assert out.stdout.startswith(f"{tmp_path / 'astronaut.png'}: whole image: ")


def test_video_writes_an_annotated_copy_and_a_csv_and_reports_fps(env, tmp_path, tiny_model):
    video = moving_face_video(tmp_path / "clip.mp4", frames=8)
    out = cli("video", video, "--out", tmp_path / "out.mp4", "--checkpoint", tiny_model, "--quiet",
              "--plot", tmp_path / "timeline.png", env=env)
    assert (tmp_path / "out.mp4").stat().st_size > 0 and "fps" in out.stdout
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 1 + 8
    assert f"emotions over time: {tmp_path / 'timeline.png'}" in out.stdout
    with Image.open(tmp_path / "timeline.png") as image:
        assert image.format == "PNG"
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    out = cli("video", tmp_path / "broken.mp4", "--checkpoint", tiny_model, env=env, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not a video OpenCV can open" in out.stderr


def test_webcam_without_a_camera_is_one_clear_line(env, tiny_model):
    out = cli("webcam", "--camera", "99", "--checkpoint", tiny_model, env=env, check=False)
    assert out.returncode == 2 and out.stderr.startswith("error: no camera at index 99") and out.stderr.count("\n") == 1


def test_export_writes_onnx_beside_the_checkpoint(env, tmp_path, tiny_model):
    out = cli("export", "--checkpoint", tiny_model, "--out", tmp_path / "model.onnx", env=env)
    assert (tmp_path / "model.onnx").exists() and "largest probability difference" in out.stdout


def test_download_without_network_is_one_clear_line(env, tmp_path):
    env = {**env, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "KAGGLEHUB_CACHE": str(tmp_path / "cache")}
    out = cli("download", "--dest", tmp_path / "fer2013", env=env, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: could not download msambare/fer2013") and out.stderr.count("\n") == 1


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


def test_bench_inference_writes_latency_and_fps_to_a_record(env, tmp_path, tiny_model):
    out = cli("bench-inference", "--checkpoint", tiny_model, "--repeats", "3", "--frames", "6", env=env)
    record = json.loads((tmp_path / "results" / "bench_inference.json").read_text())
    assert {"torch fp32, batch 1", "ONNX Runtime fp32, batch 1", "ONNX Runtime int8, batch 1"} <= set(record["latency_ms_per_face"])
    assert all(ms > 0 for ms in record["latency_ms_per_face"].values())
    for name, ms in record["latency_ms_per_face"].items():  # every median with its interquartile range
        q1, q3 = record["latency_quartiles_ms_per_face"][name]
        assert 0 < q1 <= ms <= q3, name
    for run in record["pipeline"].values():
        q1, q3 = run["ms_per_frame_quartiles"]
        assert 0 < q1 <= q3 and run["ms_per_frame"] > 0
    assert 0 <= record["int8"]["accuracy_int8"] <= 1 and record["int8"]["n"] == 56
    assert all(run["fps"] > 0 and run["frames"] == 6 for run in record["pipeline"].values())
    assert "fps" in out.stdout and "interquartile range" in out.stdout and "record written to" in out.stdout


def test_train_flags_come_from_the_experiment_config_with_its_defaults():
    """No flag restates a default: parsing no options gives ExperimentConfig(), and every field has a flag."""
    import dataclasses
    import json

    from fer_utils.cli import build_parser, config_flag_names
    from fer_utils.config import ExperimentConfig

    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    assert set(config_flag_names()) == fields - {"model", "model_kwargs"}
    args = build_parser().parse_args(["train"])
    config = ExperimentConfig(model=args.model, model_kwargs=json.loads(args.model_kwargs),
                              **{name: getattr(args, name) for name in config_flag_names()})
    assert config == ExperimentConfig()
    args = build_parser().parse_args(["train", "plain_cnn", "--tta", "flip+shift", "--train-sizes", "32", "48",
                                      "--dedup-val", "--patience", "3", "--lr", "2e-3"])
    assert (args.tta, args.train_sizes, args.dedup_val, args.patience, args.lr) == ("flip+shift", [32, 48], True, 3, 2e-3)
