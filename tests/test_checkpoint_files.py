"""Checkpoint files under failure: a process killed in the middle of saving, a write that fails half-way, and
files that are truncated, bit-flipped, of another model, or would need pickle. The previous checkpoint always
survives, and a bad file is refused with a message naming it (never a wrong value, never another exception)."""
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import nn
from tinygrad_cnn.serialization import CheckpointError

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

SAVER = """
import sys
import numpy as np
import tinygrad_cnn as tc
path, size = sys.argv[1], int(sys.argv[2])
base = np.arange(size, dtype=np.float64)
step = 0
while True:
    step += 1
    tc.save({"step": step, "weights": base + step, "more": {"bias": np.full(1000, step)}}, path)
    print(step, flush=True)
"""


def assert_consistent(state):
    """Every part of a loaded checkpoint comes from the same save."""
    step = state["step"]
    assert state["weights"][0] == step and state["weights"][-1] == len(state["weights"]) - 1 + step
    assert (state["more"]["bias"] == step).all()
    return step


def test_sigkill_in_the_middle_of_saving_leaves_the_previous_checkpoint_loadable(tmp_path):
    """A process saves a 32 MB checkpoint over and over and is killed with SIGKILL at a random moment while its
    temporary file is being written, several times. Each time the checkpoint holds one complete save, at least as
    recent as the last one reported done."""
    path = tmp_path / "checkpoint.npz"
    generator = random.Random(0)
    interrupted = 0
    for trial in range(3):
        process = subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(4_000_000)], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True)
        try:
            completed = int(process.stdout.readline())  # one save is done; wait for the next one to start writing
            deadline = time.monotonic() + 60
            while not any(name.endswith(".tmp") for name in os.listdir(tmp_path)) and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(generator.uniform(0, 0.02))
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=60)
        temporaries = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
        interrupted += bool(temporaries)
        assert assert_consistent(tc.load(path)) >= completed
        for name in temporaries:  # a killed save cannot clean up after itself (see the README)
            os.remove(tmp_path / name)
    assert interrupted >= 2, "the kills did not land in the middle of writing: the test did not test anything"


@pytest.fixture
def previous(tmp_path):
    path = tmp_path / "checkpoint.npz"
    tc.save({"step": 1, "weights": np.arange(5.0) + 1, "more": {"bias": np.full(1000, 1)}}, path)
    return path, path.read_bytes()


@pytest.mark.parametrize("failing, error", [
    ("numpy.lib.format.write_array", OSError("No space left on device")),   # half-way through the members
    ("os.fsync", OSError("Input/output error")),                             # all written, not yet on disk
    ("os.replace", PermissionError("Permission denied")),                    # the final rename
    ("numpy.lib.format.write_array", KeyboardInterrupt()),                   # Ctrl-C while writing
], ids=["disk-full", "fsync", "rename", "ctrl-c"])
def test_a_save_that_fails_part_way_leaves_the_previous_file_and_no_temporary(previous, monkeypatch, failing, error):
    path, original = previous
    module_name, name = failing.rsplit(".", 1)
    module = sys.modules[module_name]
    real, calls = getattr(module, name), []

    def fail_on_second_call(*args, **kwargs):
        calls.append(name)
        if len(calls) == 2 or name != "write_array":
            raise error
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, fail_on_second_call)
    with pytest.raises(type(error)):
        tc.save({"step": 2, "weights": np.arange(5.0) + 2, "more": {"bias": np.full(1000, 2)}}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original and assert_consistent(tc.load(path)) == 1
    assert os.listdir(path.parent) == [path.name]


def model_checkpoint(tmp_path):
    tc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    path = tmp_path / "model.ckpt"
    tc.save({"model": model.state_dict(), "epoch": 4}, path)
    return model, path


def test_every_truncation_is_refused_naming_the_file(tmp_path):
    _, path = model_checkpoint(tmp_path)
    data = path.read_bytes()
    cut_file = tmp_path / "cut.ckpt"
    for cut in sorted(set(np.linspace(0, len(data) - 1, 60).astype(int)) | {len(data) - 1, len(data) - 22}):
        cut_file.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"load: {cut_file} "):
            tc.load(cut_file)


def test_a_flipped_byte_is_refused_or_harmless_never_a_silently_different_checkpoint(tmp_path):
    model, path = model_checkpoint(tmp_path)
    data = path.read_bytes()
    expected = tc.load(path)
    flipped_file = tmp_path / "flipped.ckpt"
    refused = 0
    for position in random.Random(1).sample(range(len(data)), 150):
        flipped = bytearray(data)
        flipped[position] ^= 0x5A
        flipped_file.write_bytes(bytes(flipped))
        try:
            state = tc.load(flipped_file)
        except CheckpointError as error:
            assert f"load: {flipped_file} " in str(error)
            refused += 1
            continue
        assert state["epoch"] == expected["epoch"] and list(state["model"]) == list(expected["model"])
        for key, value in expected["model"].items():  # a byte outside the data (a timestamp, say) changed
            np.testing.assert_array_equal(state["model"][key], value)
            assert state["model"][key].dtype == value.dtype
        model.load_state_dict(state["model"])
    assert refused >= 100  # the CRC of every member catches a flip in the data and in the manifest


def test_a_file_that_would_need_pickle_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "pickled.npz"
    manifest = {"format": "tinygrad_cnn", "version": 1, "tree": {"type": "dict", "items": [
        ["str", "weights", {"type": "ndarray", "entry": "weights"}]]}}
    np.savez(path, __tinygrad_cnn__=np.array(json.dumps(manifest)),
             weights=np.array([{"looks": "harmless"}, print], dtype=object))
    with pytest.raises(CheckpointError, match=f"load: {path} holds an array of Python objects, which only pickle"):
        tc.load(path)


@pytest.mark.parametrize("tree", [5, [], {"type": "dict"}, {"type": "dict", "items": [["str", "w", 3]]},
                                  {"type": "ndarray", "entry": "missing"}, {"type": "strange", "entry": "w"},
                                  {"type": "list", "items": None}],
                         ids=["number", "list", "no-items", "bad-item", "missing-entry", "unknown-type", "null"])
def test_a_malformed_manifest_is_refused_naming_the_file(tmp_path, tree):
    path = tmp_path / "odd.npz"
    np.savez(path, __tinygrad_cnn__=np.array(json.dumps({"format": "tinygrad_cnn", "version": 1, "tree": tree})),
             w=np.zeros(2))
    with pytest.raises(CheckpointError, match=f"load: {path} "):
        tc.load(path)


def test_a_checkpoint_of_another_model_is_refused_by_a_strict_load_naming_keys_and_shapes(tmp_path):
    model, path = model_checkpoint(tmp_path)
    state = tc.load(path)["model"]
    wider = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 4))
    with pytest.raises(RuntimeError, match=r"size mismatch for 3\.weight: .*\(3, 8\).*\(4, 8\)"):
        wider.load_state_dict(state)
    extra = dict(state, **{"4.weight": np.zeros(2)})
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: '4\.weight'"):
        model.load_state_dict(extra)
    missing = {k: v for k, v in state.items() if k != "1.running_var"}
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: '1\.running_var'"):
        model.load_state_dict(missing)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError):
        model.load_state_dict(dict(extra, **{"0.weight": np.ones((2, 1, 3, 3))}))
    for key, value in model.state_dict().items():  # a refused load changes nothing, not even the keys that fit
        np.testing.assert_array_equal(value, before[key])


def test_a_member_claiming_a_huge_shape_is_refused_not_a_memory_error(tmp_path):
    """A member whose header claims 4e12 float64 values but which holds 32 bytes."""
    path = tmp_path / "liar.npz"
    tc.save({"w": np.zeros(4)}, path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    liar = io.BytesIO()
    np.lib.format.write_array_header_1_0(liar, {"descr": "<f8", "fortran_order": False, "shape": (4 * 10**12,)})
    members["w.npy"] = liar.getvalue() + bytes(32)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(CheckpointError, match=f"load: {path} "):
        tc.load(path)
