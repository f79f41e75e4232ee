"""tc.save / tc.load: exact round trips, the file format, atomic writes, and clean refusal of bad files."""
import os
import zipfile

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.rng import generator, get_rng_state, set_rng_state
from tinygrad_cnn.serialization import CheckpointError, load, save


def assert_same(a, b, where="top"):
    """Equal values of the same types all the way down (arrays: same dtype, shape and values)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        assert [type(k) for k in a] == [type(k) for k in b], where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}/{i}")
    elif isinstance(a, (np.ndarray, np.generic, Tensor)):
        x, y = np.asarray(a.numpy() if isinstance(a, Tensor) else a), np.asarray(b.numpy() if isinstance(b, Tensor) else b)
        assert x.dtype == y.dtype and x.shape == y.shape, where
        np.testing.assert_array_equal(x, y, err_msg=where)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def rich_state():
    return {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "0.bias": np.zeros(2, np.float64),
                  "bn.num_batches_tracked": np.array(7, np.int64), "mask": np.array([True, False]),
                  "empty": np.zeros((0, 3), np.float32)},
        "optimizer": {"state": {0: {"step": 3, "momentum_buffer": np.ones(2)}, 1: {"momentum_buffer": None}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False, "params": [0, 1]}]},
        "epoch": 12, "loss": 0.125, "best": float("inf"), "nan": float("nan"), "name": "run/α",
        "big": 2 ** 100, "negative_big": -(2 ** 80), "scalar": np.float32(1.5), "tensor": tc.tensor([1.0, 2.0]),
        "history": [{"epoch": 1, "accuracy": 0.5}, [1, "two", None]], "": "empty key",
        3: "int key", "3": "str key", "a/b%c": np.array([1, 2], np.uint8), "nothing": None,
    }


def test_round_trip_is_exact_for_every_supported_type(tmp_path):
    state = rich_state()
    save(state, tmp_path / "state.ckpt")
    assert_same(load(tmp_path / "state.ckpt"), state)


def test_top_level_array_and_list(tmp_path):
    save(np.arange(3), tmp_path / "a")
    np.testing.assert_array_equal(load(tmp_path / "a"), np.arange(3))
    save([1, 2.5], str(tmp_path / "b"))
    assert load(str(tmp_path / "b")) == [1, 2.5]


def test_writes_exactly_the_given_path_and_numpy_reads_it_without_pickle(tmp_path):
    path = tmp_path / "ckpt.pt"
    save({"model": {"features.0.weight": np.ones((2, 2), np.float32)}, "epoch": 3}, path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]  # no '.npz' appended, no temporary left behind
    with np.load(path, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["model/features.0.weight"], np.ones((2, 2)))
        assert archive["epoch"] == 3


def test_model_optimizer_and_rng_state_round_trip(tmp_path):
    tc.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    nn.functional.cross_entropy(model(tc.tensor(np.ones((5, 3), np.float32))), np.zeros(5, np.int64)).backward()
    optimizer.step()
    rng_state = get_rng_state()
    save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state}, tmp_path / "c")
    draws = generator().random(4)

    loaded = load(tmp_path / "c")
    assert_same(loaded["model"], dict(model.state_dict()))
    assert_same(loaded["optimizer"], optimizer.state_dict())
    set_rng_state(loaded["rng"])
    np.testing.assert_array_equal(generator().random(4), draws)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    fresh.load_state_dict(loaded["model"])


def test_a_second_save_replaces_the_first(tmp_path):
    save({"v": 1}, tmp_path / "c")
    save({"v": 2}, tmp_path / "c")
    assert load(tmp_path / "c") == {"v": 2}


def test_a_crash_mid_save_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "c"
    save({"weights": np.arange(5.0)}, path)
    original = path.read_bytes()
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_write_array(*args, **kwargs)
    real_write_array = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        save({"weights": np.zeros(5), "more": np.ones(3)}, path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["c"]  # the temporary file was removed


@pytest.mark.parametrize("cut", [0, 10, 100, -200, -30, -1])
def test_a_truncated_file_is_refused_naming_the_path(tmp_path, cut):
    path = tmp_path / "c"
    save({"model": {"w": np.random.default_rng(0).standard_normal((20, 20))}, "epoch": 1}, path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[:cut] if cut else b"")
    with pytest.raises(CheckpointError, match="truncated.ckpt"):
        load(truncated)


def test_a_corrupted_byte_in_the_data_is_refused(tmp_path):
    path = tmp_path / "c"
    save({"w": np.zeros(1000)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(path.name)):
        load(path)


def test_foreign_files_are_refused_naming_the_path(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a checkpoint\n")
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(3))
    plain_npz = tmp_path / "plain.npz"
    np.savez(plain_npz, a=np.arange(3))
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("data.pkl", b"\x80\x04K\x01.")
    for path, reason in ((text, "not a readable"), (npy, "single .npy array"), (plain_npz, "no '__tinygrad_cnn__'"),
                         (other_zip, "no '__tinygrad_cnn__'")):
        with pytest.raises(CheckpointError, match=f"{path.name}.*{reason}|{reason}.*{path.name}"):
            load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")


def test_a_pickled_member_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __tinygrad_cnn__=np.array('{"format": "tinygrad_cnn", "version": 1, "tree": '
                                             '{"type": "ndarray", "entry": "x"}}'), x=np.array([object()], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz"):
        load(path)


def test_unsupported_values_are_refused_when_saving(tmp_path):
    with pytest.raises(TypeError, match="object"):
        save({"a": {"b": np.array([object()])}}, tmp_path / "c")
    with pytest.raises(TypeError, match="set at a/b"):
        save({"a": {"b": {1, 2}}}, tmp_path / "c")
    with pytest.raises(TypeError, match="keys must be str or int"):
        save({(1, 2): 3}, tmp_path / "c")
    assert not os.listdir(tmp_path)
