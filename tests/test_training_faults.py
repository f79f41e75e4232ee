"""examples/mnist/train.py when training goes wrong: a loss that becomes NaN stops the run with the step, a non-zero
exit and the last completed epoch's checkpoint intact; parameters that blow up on an epoch's last step are not
saved; a checkpoint that cannot be resumed from is refused naming its path."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import optim

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "examples", "mnist"))
import train  # noqa: E402

# One step per epoch. SGD at a learning rate of 1e30 (4e28 at the start of the 1cycle schedule) leaves every weight
# finite after epoch 1's step (|update| ~ 1e28) but large enough that epoch 2's first forward overflows float32 in
# the second conv layer (1e29-sized activations times 1e28-sized weights), so its loss is NaN.
ONE_STEP_EPOCHS = ["--limit", "64", "--batch-size", "64", "--test-limit", "100", "--epochs", "2", "--seed", "1"]


def test_a_nan_loss_stops_train_py_naming_the_step_and_keeps_the_last_epochs_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    result = subprocess.run([sys.executable, "examples/mnist/train.py", *ONE_STEP_EPOCHS, "--optimizer", "sgd",
                             "--lr", "1e30", "--out", out], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    checkpoint = os.path.join(out, "checkpoint.npz")
    message = re.search(r"loss became (nan|inf|-inf) at epoch (\d+), step (\d+); stopping\. The last good checkpoint "
                        r"is (\S+)", result.stderr)
    assert message, result.stderr[-2000:]
    assert message.group(2, 3) == ("2", "1") and message.group(4) == checkpoint
    assert "epoch 1: train loss" in result.stdout and "epoch 2: train loss" not in result.stdout
    state = tc.load(checkpoint)  # still the complete checkpoint of epoch 1
    assert int(state["epoch"]) == 1 and len(state["history"]["loss"]) == 1
    assert all(np.isfinite(value).all() for value in state["model"].values())
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


class BlowUpOnTheLastStep(optim.SGD):
    """SGD whose update makes one weight NaN on the `at`-th step: a blow-up the loss cannot show until the next
    step, which is in the next epoch when it is an epoch's last."""

    def __init__(self, params, at, **kwargs):
        super().__init__(params, **kwargs)
        self.at, self.steps = at, 0

    def step(self):
        super().step()
        self.steps += 1
        if self.steps == self.at:
            self.param_groups[0]["params"][0].numpy().flat[0] = np.nan


def test_parameters_that_become_nan_on_an_epochs_last_step_are_not_saved(tmp_path, monkeypatch, capsys):
    def make_optimizer(args, model):
        return BlowUpOnTheLastStep(model.parameters(), at=2, lr=0.01), 0.01
    monkeypatch.setattr(train, "make_optimizer", make_optimizer)
    out = tmp_path / "run"
    assert train.train(train.parse_args([*ONE_STEP_EPOCHS, "--epochs", "3", "--model", "lenet",
                                         "--out", str(out)])) == 1
    error = capsys.readouterr().err
    assert "the parameters became NaN or Inf in epoch 2; stopping without saving" in error
    assert int(tc.load(out / "checkpoint.npz")["epoch"]) == 1  # epoch 1's checkpoint, not a NaN one


@pytest.mark.parametrize("spoil, reason", [
    (lambda path: path.write_bytes(path.read_bytes()[:-100]), "CheckpointError"),  # truncated
    (lambda path: tc.save({"model": {"weight": np.zeros(3)}}, path), "Unexpected key"),  # another model's
    (lambda path: path.unlink(), "FileNotFoundError"),
], ids=["truncated", "other-model", "missing"])
def test_resuming_from_a_bad_checkpoint_is_refused_naming_the_path(tmp_path, capsys, spoil, reason):
    checkpoint = tmp_path / "checkpoint.npz"
    tc.save({"model": {}, "epoch": 1}, checkpoint)
    spoil(checkpoint)
    args = ["--model", "lenet", "--limit", "64", "--epochs", "2", "--out", str(tmp_path), "--resume", str(checkpoint)]
    assert train.train(train.parse_args(args)) == 2
    error = capsys.readouterr().err
    assert f"error: cannot resume from {checkpoint}: " in error and reason in error
