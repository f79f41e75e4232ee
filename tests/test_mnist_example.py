"""examples/mnist end to end: training reaches a useful accuracy on a slice of MNIST, and the scripts run,
checkpoint, resume and predict through subprocesses as a user runs them."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cnn as tc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EXAMPLE = os.path.join(ROOT, "examples", "mnist")
sys.path.insert(0, EXAMPLE)
import train  # noqa: E402


def run_script(*args, timeout=600):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_training_on_2000_images_reaches_90_percent_on_1000_test_images(tmp_path):
    args = train.parse_args(["--model", "cnn", "--limit", "2000", "--test-limit", "1000", "--epochs", "3",
                             "--out", str(tmp_path)])
    assert train.train(args) == 0
    state = tc.load(str(tmp_path / "checkpoint.npz"))
    assert state["history"]["accuracy"][-1] >= 0.90
    assert int(state["epoch"]) == 3


def test_the_scripts_train_resume_and_predict_end_to_end(tmp_path):
    out = str(tmp_path / "run")
    first = run_script("examples/mnist/train.py", "--limit", "512", "--epochs", "1", "--test-limit", "500",
                       "--out", out, "--seed", "3")
    assert "Total params: 1,199,882" in first  # the model summary is printed before training
    first_accuracy = float(re.search(r"test accuracy: (\d+\.\d\d)%", first).group(1))
    checkpoint = os.path.join(out, "checkpoint.npz")
    state = tc.load(checkpoint)
    assert int(state["epoch"]) == 1 and state["config"]["model"] == "cnn"

    second = run_script("examples/mnist/train.py", "--limit", "512", "--epochs", "2", "--test-limit", "500",
                        "--out", out, "--seed", "3", "--resume", checkpoint)
    assert "resumed from" in second and "epoch 2:" in second and "epoch 1:" not in second
    resumed = tc.load(checkpoint)
    assert int(resumed["epoch"]) == 2 and len(resumed["history"]["accuracy"]) == 2
    assert resumed["history"]["accuracy"][0] == pytest.approx(first_accuracy / 100, abs=1e-4)
    assert any(not np.array_equal(resumed["model"][k], state["model"][k]) for k in state["model"])

    prediction = run_script("examples/mnist/predict.py", checkpoint, "--index", "0")
    probabilities = [float(p) for p in re.findall(r"^\s+\d: (\d\.\d+)$", prediction, re.M)]
    assert len(probabilities) == 10 and sum(probabilities) == pytest.approx(1, abs=2e-3)
    predicted = int(re.search(r"predicted (\d)", prediction).group(1))
    assert predicted == int(np.argmax(probabilities))

    weights = os.path.join(out, "model.safetensors")  # the weights alone, written beside the checkpoint
    assert sorted(tc.load(weights)) == sorted(resumed["model"])
    assert run_script("examples/mnist/predict.py", weights, "--index", "0") == prediction
    exported = run_script("examples/mnist/export.py", weights)
    assert f"wrote {os.path.join(out, 'model.onnx')}" in exported
    difference = float(re.search(r"largest logit difference from ours (\S+),", exported).group(1))
    assert difference <= 1e-4 and "same predicted digit for 100 of 100" in exported


def test_ctrl_c_then_resume_takes_exactly_the_uninterrupted_steps(tmp_path, monkeypatch, capsys):
    common = ["--model", "lenet", "--limit", "256", "--test-limit", "200", "--epochs", "2", "--seed", "5"]
    straight = str(tmp_path / "straight")
    assert train.train(train.parse_args(common + ["--out", straight])) == 0

    interrupted = str(tmp_path / "interrupted")
    save = train.save_checkpoint

    def save_then_ctrl_c(*args):
        save(*args)
        raise KeyboardInterrupt  # the user presses Ctrl-C just after epoch 1's checkpoint

    monkeypatch.setattr(train, "save_checkpoint", save_then_ctrl_c)
    assert train.train(train.parse_args(common + ["--out", interrupted])) == 130
    assert "interrupted during epoch 1" in capsys.readouterr().err
    monkeypatch.setattr(train, "save_checkpoint", save)
    checkpoint = os.path.join(interrupted, "checkpoint.npz")
    assert int(tc.load(checkpoint)["epoch"]) == 1
    assert train.train(train.parse_args(common + ["--out", interrupted, "--resume", checkpoint])) == 0
    a = tc.load(os.path.join(straight, "checkpoint.npz"))
    b = tc.load(checkpoint)
    for key in a["model"]:
        np.testing.assert_array_equal(a["model"][key], b["model"][key])
    assert a["history"] == b["history"]


def test_missing_data_says_where_it_looked(tmp_path):
    result = subprocess.run([sys.executable, "examples/mnist/train.py", "--data-dir", str(tmp_path), "--limit", "64"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode != 0
    assert str(tmp_path) in result.stderr and "--download" in result.stderr
