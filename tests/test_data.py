"""Tests for tinygrad_cnn.data: IDX reading, MNIST loading and verification, download; MNIST through a DataLoader."""
import gzip
import hashlib
import http.server
import os
import struct
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import rng
from tinygrad_cnn.data import MNIST, MNIST_FILES, download_mnist, load_mnist, read_idx
from tinygrad_cnn.utils.data import DataLoader, TensorDataset

MNIST_DIR = Path(__file__).resolve().parent.parent / "examples" / "mnist" / "data"
TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array`, written independently of the reader under test."""
    code = TYPE_CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, content: bytes, gzipped: bool) -> Path:
    path.write_bytes(gzip.compress(content) if gzipped else content)
    return path


def random_array(dtype, shape, seed):
    generator = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        return generator.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return generator.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


# ---------------------------------------------------------------- read_idx

@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("dtype, shape", [
    (np.uint8, (7,)), (np.int8, (3, 5)), (np.int16, (2, 3, 4)), (np.int32, (4, 1, 2, 3)),
    (np.float32, (5, 6)), (np.float64, (3, 2, 2)), (np.uint8, (0, 28, 28)),
])
def test_read_idx_round_trip(tmp_path, gzipped, dtype, shape):
    array = random_array(dtype, shape, seed=len(shape))
    # an extension that lies: detection is by magic bytes, not by name
    path = write(tmp_path / "data.idx", idx_bytes(array), gzipped)
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    assert result.shape == shape
    np.testing.assert_array_equal(result, array)
    result[...] = 0  # a writable array of its own


def corrupt_files():
    """(name, content, expected message fragment) for broken IDX contents."""
    good = idx_bytes(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    return [
        ("truncated_data", good[:-5], "truncated"),
        ("truncated_header", good[:10], "truncated"),
        ("empty", b"", "truncated"),
        ("wrong_magic", b"\x01\x00" + good[2:], "not an IDX file"),
        ("unknown_type", good[:2] + b"\x07" + good[3:], "unknown IDX type code 0x07"),
        ("zero_dims", b"\x00\x00\x08\x00", "0 dimensions"),
        ("dims_disagree", good[:4] + struct.pack(">3I", 2, 3, 5) + good[16:], "implies"),
        ("trailing_bytes", good + b"\x00\x01", "trailing bytes"),
        ("absurd_dims", good[:4] + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + good[16:],
         "dims 4294967295 x 4294967295 x 4294967295"),
    ]


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("name, content, message", corrupt_files(), ids=[case[0] for case in corrupt_files()])
def test_read_idx_rejects_corrupt_file_naming_it(tmp_path, gzipped, name, content, message):
    path = write(tmp_path / f"{name}.idx", content, gzipped)
    with pytest.raises(ValueError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_idx_rejects_truncated_or_corrupt_gzip_stream(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="truncated") as error:
        read_idx(truncated)
    assert str(truncated) in str(error.value)
    flipped = bytearray(compressed)
    flipped[-6] ^= 0xFF  # the CRC-32 in the gzip trailer
    bad_crc = tmp_path / "bad_crc.gz"
    bad_crc.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as error:
        read_idx(bad_crc)
    assert str(bad_crc) in str(error.value)


# ---------------------------------------------------------------- load_mnist on the committed files

@pytest.fixture(scope="module")
def mnist():
    return load_mnist(MNIST_DIR, verify=True)


def test_load_mnist_committed_files(mnist):
    assert isinstance(mnist, MNIST)
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.shape == (60000,) and mnist.train_labels.dtype == np.uint8
    assert mnist.test_labels.shape == (10000,) and mnist.test_labels.dtype == np.uint8
    # counts published in examples/mnist/data/README.md
    assert np.bincount(mnist.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0


# ---------------------------------------------------------------- load_mnist on small fake datasets

def fake_dataset(seed=0):
    """A tiny MNIST-shaped dataset: {file name: uncompressed IDX bytes}, its arrays and its MD5 table."""
    generator = np.random.default_rng(seed)
    arrays = MNIST(
        train_images=generator.integers(0, 256, (6, 4, 4), dtype=np.uint8),
        train_labels=generator.integers(0, 10, 6, dtype=np.uint8),
        test_images=generator.integers(0, 256, (3, 4, 4), dtype=np.uint8),
        test_labels=generator.integers(0, 10, 3, dtype=np.uint8),
    )
    contents = {name: idx_bytes(array) for name, array in zip(MNIST_FILES, arrays)}
    md5s = {name: hashlib.md5(content).hexdigest() for name, content in contents.items()}
    return contents, arrays, md5s


def assert_same_dataset(loaded, arrays):
    for got, expected in zip(loaded, arrays):
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype


def test_load_mnist_accepts_gzipped_and_raw_files(tmp_path):
    contents, arrays, md5s = fake_dataset()
    for index, (name, content) in enumerate(contents.items()):
        gzipped = index % 2 == 0
        write(tmp_path / (name + (".gz" if gzipped else "")), content, gzipped)
    assert_same_dataset(load_mnist(tmp_path, md5s=md5s), arrays)


def test_load_mnist_md5_mismatch(tmp_path):
    contents, arrays, md5s = fake_dataset()
    for name, content in contents.items():
        write(tmp_path / name, content, gzipped=False)
    wrong = dict(md5s, **{MNIST_FILES.test_labels: "0" * 32})
    with pytest.raises(ValueError, match="MD5") as error:
        load_mnist(tmp_path, md5s=wrong)
    assert str(tmp_path / MNIST_FILES.test_labels) in str(error.value)
    # the default table is MNIST's, which these fake files don't match
    with pytest.raises(ValueError, match="MD5"):
        load_mnist(tmp_path)
    assert_same_dataset(load_mnist(tmp_path, verify=False), arrays)
    assert_same_dataset(load_mnist(tmp_path, md5s=None), arrays)
    with pytest.raises(ValueError, match="no MD5 for"):
        load_mnist(tmp_path, md5s={})


def test_load_mnist_missing_files_says_where_and_how(tmp_path):
    contents, _, md5s = fake_dataset()
    write(tmp_path / (MNIST_FILES.train_images + ".gz"), contents[MNIST_FILES.train_images], gzipped=True)
    with pytest.raises(FileNotFoundError) as error:
        load_mnist(tmp_path, md5s=md5s)
    message = str(error.value)
    for name in MNIST_FILES[1:]:
        assert str(tmp_path / (name + ".gz")) in message and str(tmp_path / name) in message
    assert MNIST_FILES.train_images not in message
    assert "examples/mnist/data" in message and "download=True" in message and "--download" in message


# ---------------------------------------------------------------- download against a local server

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/"site"; yields (site directory, base URL)."""
    site = tmp_path / "site"
    site.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def publish(directory: Path, contents: dict):
    directory.mkdir()
    for name, content in contents.items():
        write(directory / (name + ".gz"), content, gzipped=True)


def test_download_falls_back_to_next_mirror(tmp_path, local_server):
    site, url = local_server
    contents, arrays, md5s = fake_dataset()
    publish(site / "good", contents)
    corrupted = dict(contents)
    corrupted[MNIST_FILES.train_labels] = idx_bytes(np.zeros(6, np.uint8))  # valid IDX, wrong MD5
    publish(site / "stale", corrupted)
    mirrors = (url + "missing/", url + "stale/", url + "good/")  # 404s, then a bad copy, then good
    root = tmp_path / "downloaded"
    download_mnist(root, mirrors=mirrors, md5s=md5s, timeout=5)
    assert sorted(os.listdir(root)) == sorted(name + ".gz" for name in MNIST_FILES)  # no temp files left
    for name in MNIST_FILES:
        assert gzip.decompress((root / (name + ".gz")).read_bytes()) == contents[name]
    assert_same_dataset(load_mnist(root, md5s=md5s), arrays)


def test_load_mnist_download_fetches_only_missing_files(tmp_path, local_server):
    site, url = local_server
    contents, arrays, md5s = fake_dataset()
    publish(site / "good", contents)
    root = tmp_path / "data"
    root.mkdir()
    write(root / MNIST_FILES.test_images, contents[MNIST_FILES.test_images], gzipped=False)
    loaded = load_mnist(root, download=True, md5s=md5s, mirrors=(url + "good/",))
    assert_same_dataset(loaded, arrays)
    assert sorted(os.listdir(root)) == sorted(
        [MNIST_FILES.test_images] + [name + ".gz" for name in MNIST_FILES if name != MNIST_FILES.test_images])


def test_download_interrupted_leaves_no_file(tmp_path, local_server, monkeypatch):
    site, url = local_server
    contents, _, md5s = fake_dataset()
    publish(site / "good", contents)

    def interrupted_replace(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr("tinygrad_cnn.data.os.replace", interrupted_replace)
    root = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        download_mnist(root, mirrors=(url + "good/",), md5s=md5s, timeout=5)
    assert os.listdir(root) == []


def test_download_all_mirrors_fail(tmp_path, local_server):
    site, url = local_server
    contents, _, md5s = fake_dataset()
    publish(site / "other", fake_dataset(seed=1)[0])  # a different dataset: every MD5 is wrong
    mirrors = (url + "missing/", url + "other/")
    root = tmp_path / "data"
    with pytest.raises(OSError) as error:
        download_mnist(root, mirrors=mirrors, md5s=md5s, timeout=5)
    message = str(error.value)
    assert f"{url}missing/{MNIST_FILES.train_images}.gz" in message and "404" in message
    assert f"{url}other/{MNIST_FILES.train_images}.gz" in message and "MD5" in message
    assert "examples/mnist/data" in message
    assert os.listdir(root) == []  # nothing half-written


# ---------------------------------------------------------------- batching MNIST (tc.utils.data)

def test_dataloader_on_mnist(mnist):
    """The arrays load_mnist returns go straight into a TensorDataset; one epoch sees every image once."""
    rng.manual_seed(0)
    loader = DataLoader(TensorDataset(mnist.train_images, mnist.train_labels), batch_size=1000, shuffle=True)
    assert len(loader) == 60 and len(loader.dataset) == 60000
    counts = np.zeros(10, dtype=np.int64)
    for images, labels in loader:
        assert images.shape == (1000, 28, 28) and images.dtype == np.uint8
        counts += np.bincount(labels.numpy(), minlength=10)
    np.testing.assert_array_equal(counts, np.bincount(mnist.train_labels))
