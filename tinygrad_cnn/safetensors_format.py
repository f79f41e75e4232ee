"""The safetensors format (what PyTorch, Hugging Face and others exchange weights in), through the `safetensors`
package's NumPy API.

A .safetensors file holds one flat dict of name → array (a state_dict), no nested dicts, numbers or strings:
save a whole checkpoint ({"model": ..., "optimizer": ...}) as .npz. The layout is an 8-byte little-endian
header length N, N bytes of JSON giving each tensor's dtype, shape and [begin, end) byte offsets into the
data that follows. `read` checks that header against the file's size before the package reads anything, so
a file claiming more data than it holds is refused instead of allocating it.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .tensor import Tensor

ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
            "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
NUMPY_KINDS = "fiub"  # what NumPy holds and the format stores: floats, signed/unsigned ints, bools
MAX_HEADER = 100 * 1024 * 1024  # the package's own limit on the JSON header


def encode(state) -> bytes:
    """The file's bytes for a flat dict name → array, Tensor or NumPy scalar; TypeError naming a key otherwise."""
    from safetensors.numpy import save

    if not isinstance(state, dict):
        raise TypeError(f"save: a .safetensors file holds a dict of name → tensor (a state_dict), got "
                        f"{type(state).__name__}; save other values as .npz")
    return save({_key(key): _array(key, value) for key, value in state.items()})


def _key(key) -> str:
    if not isinstance(key, str):
        raise TypeError(f"save: the names in a .safetensors file are strings, got {type(key).__name__} {key!r}")
    return key


def _array(key, value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.numpy()
    elif isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        what = "a nested dict" if isinstance(value, dict) else f"a {type(value).__name__}"
        raise TypeError(f"save: {key!r} holds {what}; a .safetensors file holds only tensors under flat names "
                        "(a state_dict). Save a checkpoint with nested dicts, numbers or strings as .npz")
    if value.dtype.kind not in NUMPY_KINDS:
        raise TypeError(f"save: {key!r} has dtype {value.dtype}, which safetensors cannot hold (it holds "
                        "floats, ints and bools)")
    return np.require(value, requirements="C")  # not ascontiguousarray, which makes a 0-d array 1-d


def read(path: str, error) -> dict:
    """The flat dict name → Tensor in the file at `path`; a bad file raises `error` (CheckpointError) naming it."""
    from safetensors import SafetensorError, safe_open

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            prefix = file.read(8)
            if len(prefix) < 8:
                raise error(f"load: {path} is {size} bytes long, too short for a safetensors file (empty or truncated)")
            if prefix[:2] == b"PK":
                raise error(f"load: {path} is a zip archive (an .npz checkpoint?), not a safetensors file")
            length = int.from_bytes(prefix, "little")
            if length > min(size - 8, MAX_HEADER):
                raise error(f"load: {path}: its header claims {length} bytes but the file holds {size - 8} after the "
                            "length field: truncated, or not a safetensors file")
            header = file.read(length)
        _check_header(header, size - 8 - length, path, error)
        with safe_open(path, framework="np") as file:
            arrays = {name: file.get_tensor(name) for name in file.keys()}
        return {name: Tensor._wrap(array) for name, array in arrays.items()}  # as stored, float16 too
    except (SafetensorError, OSError) as cause:
        raise error(f"load: {path} is not a readable safetensors file: {cause}") from cause


def _check_header(header: bytes, data_size: int, path: str, error) -> None:
    """Every entry's dtype, shape and offsets are well formed and lie inside the `data_size` bytes present."""
    try:
        entries = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as cause:
        raise error(f"load: {path}: its header is not JSON ({cause}): corrupt, or not a safetensors file") from None
    if not isinstance(entries, dict):
        raise error(f"load: {path}: its header is JSON but not an object of tensors: not a safetensors file")
    for name, entry in entries.items():
        if name == "__metadata__":
            continue
        dtype, shape, offsets = (entry.get(k) if isinstance(entry, dict) else None
                                 for k in ("dtype", "shape", "data_offsets"))
        if isinstance(dtype, str) and dtype not in ITEMSIZE:
            raise error(f"load: {path}: tensor {name!r} has dtype {dtype}, which NumPy has no type for (as "
                        "bfloat16 and the float8 types): convert it to float32 before saving")
        if (dtype not in ITEMSIZE or not _ints(shape) or not _ints(offsets) or len(offsets) != 2
                or not 0 <= offsets[0] <= offsets[1]):
            raise error(f"load: {path}: tensor {name!r} has a malformed header entry {entry!r}")
        if offsets[1] > data_size:
            raise error(f"load: {path}: tensor {name!r} claims bytes {offsets[0]}..{offsets[1]} but the file holds "
                        f"{data_size} bytes of data: truncated")
        if offsets[1] - offsets[0] != int(np.prod(shape, dtype=object)) * ITEMSIZE[dtype]:
            raise error(f"load: {path}: tensor {name!r} of dtype {dtype} and shape {shape} does not fill its "
                        f"{offsets[1] - offsets[0]} bytes: corrupt")


def _ints(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
