"""Datasets in IDX format (MNIST, Fashion-MNIST, KMNIST), loaded as NumPy arrays; batch them with
`tc.utils.data` (TensorDataset + DataLoader):

    from tinygrad_cnn.data import load_mnist
    from tinygrad_cnn.utils.data import DataLoader, TensorDataset
    mnist = load_mnist("examples/mnist/data")
    for images, labels in DataLoader(TensorDataset(mnist.train_images, mnist.train_labels), batch_size=64,
                                     shuffle=True):
        ...

IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header, the magic number
`00 00 TT NN` (TT the element type code, NN the number of dimensions), then one big-endian uint32
per dimension, then the elements, big-endian and row-major.
"""
import gzip
import hashlib
import io
import math
import os
import struct
import zlib
from typing import NamedTuple

import numpy as np

from tinygrad_cnn.atomic_file import write_atomically

IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20  # bounds the temporary copy GzipFile.readinto makes


class MNIST(NamedTuple):
    """The four arrays of an MNIST-style dataset (or, in MNIST_FILES, their file names)."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


MNIST_FILES = MNIST(
    train_images="train-images-idx3-ubyte",
    train_labels="train-labels-idx1-ubyte",
    test_images="t10k-images-idx3-ubyte",
    test_labels="t10k-labels-idx1-ubyte",
)
# The published MD5s of the original uncompressed files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Public mirrors serving `<mirror><name>.gz`, tried in order (see examples/mnist/data/README.md).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzipped (detected by its magic bytes 1f 8b) or raw, into a native-endian array.

    Raises ValueError naming the file when it is not IDX, is truncated, or has bytes beyond
    what its header describes.
    """
    with open(path, "rb") as file:
        return _read_idx_file(file, os.fspath(path))


def _read_idx_file(file, source: str, digest=None) -> np.ndarray:
    """Decode an open binary file (gzipped or raw IDX); feed the uncompressed bytes to `digest` if given."""
    is_gzip = file.read(2) == GZIP_MAGIC
    file.seek(0)
    if not is_gzip:
        size = file.seek(0, io.SEEK_END)
        file.seek(0)
        return _decode_idx(file, source, size, digest)
    try:
        with gzip.GzipFile(fileobj=file) as stream:
            return _decode_idx(stream, source, None, digest)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{source}: corrupt or truncated gzip data ({error})") from error


def _decode_idx(stream, source: str, size, digest) -> np.ndarray:
    """Parse the IDX header and elements from `stream`; `size` is the byte count when known (raw files)."""
    magic = _read_exact(stream, 4, source, "the magic number")
    if magic[:2] != b"\0\0":
        raise ValueError(f"{source}: not an IDX file: magic number {magic.hex(' ')} should start with two zero bytes")
    type_code, ndim = magic[2], magic[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X} ({dtype.name})" for code, dtype in IDX_DTYPES.items())
        raise ValueError(f"{source}: unknown IDX type code 0x{type_code:02X}; expected one of {known}")
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions; expected at least 1")
    dims_bytes = _read_exact(stream, 4 * ndim, source, f"the {ndim} dimension sizes")
    dims = struct.unpack(f">{ndim}I", dims_bytes)
    dtype = IDX_DTYPES[type_code]
    expected = 4 + 4 * ndim + math.prod(dims) * dtype.itemsize
    header = f"its header ({dtype.name}, dims {' x '.join(map(str, dims))})"
    if size is not None and size != expected:
        problem = "truncated" if size < expected else f"{size - expected} trailing bytes"
        raise ValueError(f"{source}: file has {size} bytes but {header} implies {expected}: {problem}")
    try:
        array = np.empty(dims, dtype)
    except (MemoryError, ValueError) as error:
        raise ValueError(f"{source}: cannot allocate the array {header} describes ({error}); is the file corrupt?") from error
    flat = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < len(flat):
        count = stream.readinto(flat[filled:filled + _READ_CHUNK])
        if not count:
            raise ValueError(f"{source}: truncated: data ends after {4 + 4 * ndim + filled} bytes but {header} implies {expected}")
        filled += count
    if stream.read(1):
        raise ValueError(f"{source}: trailing bytes after the {expected} bytes {header} implies")
    if digest is not None:
        digest.update(magic)
        digest.update(dims_bytes)
        digest.update(flat)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def _read_exact(stream, count: int, source: str, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise ValueError(f"{source}: truncated: file ends inside {what} of the IDX header")
    return data


def load_mnist(root, verify=True, download=False, md5s=MNIST_MD5, files=MNIST_FILES, mirrors=MNIST_MIRRORS) -> MNIST:
    """Load train/test images and labels from `root` as an MNIST tuple of arrays (MNIST: uint8, N x 28 x 28 and N).

    Each file may be gzipped (`<name>.gz`) or uncompressed (`<name>`). With `verify`, the MD5 of each
    uncompressed file is checked against `md5s` (MNIST's published ones by default; pass another
    table for Fashion-MNIST or KMNIST, or `md5s=None` to skip). With `download`, missing files are
    fetched from `mirrors` first.
    """
    root = os.fspath(root)
    md5s = md5s if verify else None
    _require_md5s(md5s, files)
    if download:
        download_mnist(root, mirrors=mirrors, md5s=md5s, files=files)
    candidates = {name: [os.path.join(root, name + ".gz"), os.path.join(root, name)] for name in files}
    found = {name: next((p for p in paths if os.path.isfile(p)), None) for name, paths in candidates.items()}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        looked = "\n".join(f"  {path}" for name in missing for path in candidates[name])
        raise FileNotFoundError(
            f"MNIST-style data not found; looked for:\n{looked}\n"
            f"Copy the files from the tinygrad_cnn repository's examples/mnist/data/ into {root}, "
            "or let the loader fetch them: load_mnist(root, download=True) "
            "(examples/mnist/train.py --download)."
        )
    return MNIST(*(_load_verified(found[name], name, md5s) for name in files))


def _require_md5s(md5s, files) -> None:
    missing = [name for name in files if md5s is not None and name not in md5s]
    if missing:
        raise ValueError(f"no MD5 for {', '.join(missing)} in md5s; add them, or pass md5s=None to skip the check")


def _load_verified(path: str, name: str, md5s) -> np.ndarray:
    if md5s is None:
        return read_idx(path)
    digest = hashlib.md5()
    with open(path, "rb") as file:
        array = _read_idx_file(file, path, digest)
    _check_md5(digest, md5s[name], path)
    return array


def _check_md5(digest, expected: str, source: str) -> None:
    if digest.hexdigest() != expected.lower():
        raise ValueError(
            f"{source}: MD5 of the uncompressed data is {digest.hexdigest()}, expected {expected}: "
            "the file is corrupt or not the expected dataset; replace it, or pass the right md5s "
            "(md5s=None or verify=False to skip the check)"
        )


def download_mnist(root, mirrors=MNIST_MIRRORS, md5s=MNIST_MD5, files=MNIST_FILES, timeout=30.0) -> None:
    """Fetch each of `files` missing from `root` as `<mirror><name>.gz`, trying `mirrors` in order.

    Every download is decoded as IDX and, unless `md5s` is None, its uncompressed MD5 checked before it
    is written, atomically (atomic_file.py: an interrupted download leaves no half-written file).
    Raises OSError listing every mirror's failure when none delivers a good copy.
    """
    from http.client import HTTPException  # here, not at the top: http and ssl cost ~0.05 s of every import
    root = os.fspath(root)
    _require_md5s(md5s, files)
    os.makedirs(root, exist_ok=True)
    for name in files:
        if any(os.path.isfile(os.path.join(root, name + suffix)) for suffix in (".gz", "")):
            continue
        failures = []
        for mirror in mirrors:
            url = mirror + name + ".gz"
            try:
                content = _fetch_verified(url, name, md5s, timeout)
            except (OSError, ValueError, HTTPException) as error:
                failures.append(f"  {url}: {error}")
                continue
            destination = os.path.join(root, name + (".gz" if content[:2] == GZIP_MAGIC else ""))
            write_atomically(destination, lambda file: file.write(content))
            break
        else:
            tried = "\n".join(failures) or "  (no mirrors given)"
            raise OSError(
                f"could not download {name}.gz from any mirror:\n{tried}\n"
                "Copy the files from the tinygrad_cnn repository's examples/mnist/data/ into "
                f"{root} instead."
            )


def _fetch_verified(url: str, name: str, md5s, timeout: float) -> bytes:
    import urllib.request  # see download_mnist
    with urllib.request.urlopen(url, timeout=timeout) as response:
        content = response.read()
    digest = hashlib.md5()
    _read_idx_file(io.BytesIO(content), url, digest)
    if md5s is not None:
        _check_md5(digest, md5s[name], url)
    return content
