"""tc.save / tc.load with a .safetensors path: exact round trips of every layer's state, files exchanged with the
`safetensors` package in both directions, refusal of values the format cannot hold, and of bad files."""
import os
import re

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save, save_file

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.serialization import CheckpointError


def every_layer(dtype=np.float32, seed=0):
    """One model holding every layer type that has parameters or buffers, its BatchNorms trained two steps so
    the running statistics and num_batches_tracked are not their initial values."""
    tc.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, groups=2, bias=False), nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2),
                          nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 6), nn.BatchNorm1d(6), nn.LeakyReLU(), nn.Dropout(0.1),
                          nn.Linear(6, 3, bias=False), nn.Tanh(), nn.Sigmoid(), nn.Identity(), nn.LayerNorm(3),
                          nn.PReLU())
    model.to(dtype)
    for _ in range(2):
        model(tc.tensor(np.random.default_rng(1).standard_normal((5, 1, 8, 8)).astype(dtype)))
    return model.eval()


def assert_same_state(loaded, expected):
    assert list(sorted(loaded)) == list(sorted(expected))
    for key, value in expected.items():
        assert isinstance(loaded[key], Tensor), key
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key].numpy(), np.asarray(value), err_msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_round_trips_exactly_and_loads_strictly(tmp_path, dtype):
    model = every_layer(dtype)
    state = model.state_dict()
    assert state["1.num_batches_tracked"].dtype == np.int64 and int(state["1.num_batches_tracked"]) == 2
    assert "2.weight" in state and "19.weight" in state  # GroupNorm's and PReLU's
    path = tmp_path / "model.safetensors"
    tc.save(state, path)
    loaded = tc.load(path)
    assert_same_state(loaded, state)
    fresh = every_layer(dtype, seed=1)
    fresh.load_state_dict(loaded, strict=True)
    x = tc.tensor(np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(dtype))
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_an_embedding_round_trips(tmp_path):
    tc.manual_seed(0)
    embedding = nn.Embedding(10, 3, padding_idx=0)
    tc.save(embedding.state_dict(), tmp_path / "e.safetensors")
    tc.manual_seed(1)
    fresh = nn.Embedding(10, 3, padding_idx=0)
    fresh.load_state_dict(tc.load(tmp_path / "e.safetensors"))
    indices = tc.tensor(np.array([[0, 4], [9, 4]]))
    np.testing.assert_array_equal(fresh(indices).numpy(), embedding(indices).numpy())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8,
                                   np.uint16, np.bool_])
def test_arrays_of_each_dtype_and_0d_round_trip_exactly(tmp_path, dtype):
    values = {"matrix": (np.arange(12) % 3).astype(dtype).reshape(3, 4), "scalar": np.array(1, dtype),
              "empty": np.zeros((0, 2), dtype), "scalar_type": np.dtype(dtype).type(1)}
    tc.save(values, tmp_path / "a.safetensors")
    loaded = tc.load(tmp_path / "a.safetensors")
    for key, value in values.items():
        value = np.asarray(value)
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key].numpy(), value)


def test_a_non_contiguous_array_is_saved_as_its_values(tmp_path):
    base = np.arange(12.0).reshape(3, 4)
    tc.save({"t": base.T, "strided": base[:, ::2]}, tmp_path / "v.safetensors")
    loaded = tc.load(tmp_path / "v.safetensors")
    np.testing.assert_array_equal(loaded["t"].numpy(), base.T)
    np.testing.assert_array_equal(loaded["strided"].numpy(), base[:, ::2])


def test_a_file_written_by_the_safetensors_package_is_read(tmp_path):
    rng = np.random.default_rng(0)
    written = {"features.0.weight": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
               "features.1.num_batches_tracked": np.array(9, np.int64), "head.bias": rng.standard_normal(3)}
    save_file(written, tmp_path / "theirs.safetensors", metadata={"format": "pt"})
    loaded = tc.load(tmp_path / "theirs.safetensors")
    assert sorted(loaded) == sorted(written)
    for key, value in written.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key].numpy(), value)


def test_our_file_is_read_by_the_safetensors_package(tmp_path):
    state = every_layer().state_dict()
    path = tmp_path / "ours.safetensors"
    tc.save(state, path)
    theirs = load_file(path)
    assert sorted(theirs) == sorted(state)
    for key, value in state.items():
        assert theirs[key].dtype == value.dtype and theirs[key].shape == value.shape
        np.testing.assert_array_equal(theirs[key], np.asarray(value))
    with safe_open(path, framework="np") as file:  # the header alone, as a lazy reader uses it
        assert sorted(file.keys()) == sorted(state)


def test_the_suffix_chooses_the_format_and_npz_keeps_working(tmp_path):
    state = {"w": np.ones(3, np.float32)}
    tc.save(state, tmp_path / "m.SafeTensors")
    assert load_file(tmp_path / "m.SafeTensors")["w"].tolist() == [1, 1, 1]
    tc.save({"model": state, "epoch": 2}, tmp_path / "m.npz")
    assert tc.load(tmp_path / "m.npz")["epoch"] == 2
    assert sorted(os.listdir(tmp_path)) == ["m.SafeTensors", "m.npz"]


@pytest.mark.parametrize("state, message", [
    ({"model": {"0.weight": np.ones(2)}, "epoch": 3}, "'model' holds a nested dict"),
    ({"w": np.ones(2), "epoch": 3}, "'epoch' holds a int"),
    ({"name": "run"}, "'name' holds a str"),
    ({"w": np.array([{}], dtype=object)}, "'w' has dtype object"),
    ({"c": np.ones(2, np.complex64)}, "'c' has dtype complex64"),
    ({3: np.ones(2)}, "names in a .safetensors file are strings, got int 3"),
    ([np.ones(2)], "holds a dict of name → tensor"),
], ids=["nested", "int", "str", "object", "complex", "int-key", "list"])
def test_a_value_safetensors_cannot_hold_is_refused_naming_the_key(tmp_path, state, message):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match=message):
        tc.save(state, path)
    assert not os.listdir(tmp_path)


def test_a_failing_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    tc.save({"w": np.ones(2)}, path)
    original = path.read_bytes()

    def failing_fsync(descriptor):
        raise OSError("Input/output error")
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        tc.save({"w": np.zeros(2)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original and os.listdir(tmp_path) == [path.name]


def good_file():
    return save({"a": np.arange(6, dtype=np.float32), "b": np.array(3, np.int64)})


def with_header(header: bytes, data: bytes = bytes(32)) -> bytes:
    return len(header).to_bytes(8, "little") + header + data


@pytest.mark.parametrize("content, message", [
    (b"", "too short"),
    (good_file()[:5], "too short"),
    ((10**15).to_bytes(8, "little") + b"{}", "header claims 1000000000000000 bytes"),
    (with_header(b'{"a": {"dtype": "F32", "shape": [250000000000], "data_offsets": [0, 1000000000000]}}'),
     "claims bytes 0..1000000000000 but the file holds 32 bytes"),
    (with_header(b'{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}'), "does not fill its 16 bytes"),
    (with_header(b'{"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}'), "dtype Q9, which NumPy has no"),
    (with_header(b'{"a": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}}'), "malformed header entry"),
    (with_header(b'{"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}'), "malformed header entry"),
    (with_header(b'{"a": [1, 2]}'), "malformed header entry"),
    (with_header(b'{"a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}'), "dtype BF16, which NumPy"),
    (with_header(b"[1, 2, 3]"), "not an object of tensors"),
    (with_header(b"\xff\xfe{"), "header is not JSON"),
    (with_header(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', bytes(8)) + bytes(4),
     "not a readable safetensors file"),  # bytes after the last tensor: the package refuses them
], ids=["empty", "cut-in-length", "huge-header", "huge-tensor", "wrong-size", "dtype", "dtype-type", "negative",
        "not-entry",
        "bf16", "array", "binary", "trailing"])
def test_a_bad_file_is_refused_naming_the_file_and_the_fault(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"load: {re.escape(str(path))}") as error:
        tc.load(path)
    assert message in str(error.value)


def test_every_truncation_of_a_real_file_is_refused(tmp_path):
    data = good_file()
    path = tmp_path / "cut.safetensors"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"load: {re.escape(str(path))}"):
            tc.load(path)


def test_an_npz_checkpoint_named_safetensors_and_a_missing_file_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    tc.save({"w": np.ones(2)}, tmp_path / "model.npz")
    os.replace(tmp_path / "model.npz", path)
    with pytest.raises(CheckpointError, match=f"load: {path} is a zip archive"):
        tc.load(path)
    with pytest.raises(CheckpointError, match="missing.safetensors"):
        tc.load(tmp_path / "missing.safetensors")
