"""`save(state, path)` and `load(path)`: nested dicts, lists and tuples of arrays and plain values, as one .npz;
or a flat state_dict as .safetensors when the path ends so (see safetensors_format.py).

Format: each leaf is one array in the .npz, named by its path of keys joined with '/' ('model/0.weight',
'optimizer/state/3/exp_avg'), so `np.load` alone can read a checkpoint. One more entry, '__tinygrad_cnn__',
holds a JSON manifest: the tree's shape, each dict key's type (str or int, as PyTorch's optimizer state uses
int keys) and each leaf's type, so that ints, floats, bools, strings, None, tuples, NumPy scalars and Tensors
come back as exactly what was saved. Plain values are stored as 0-d arrays (ints beyond int64, such as a
random generator's 128-bit state, as decimal strings).

Loading reads with `allow_pickle=False`, so a file can never run code. Saving is atomic (atomic_file.py): a
crash mid-save leaves any previous file whole.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile

import numpy as np

from . import safetensors_format
from .atomic_file import write_atomically
from .tensor import Tensor

MANIFEST = "__tinygrad_cnn__"
FORMAT_VERSION = 1
_INT64 = np.iinfo(np.int64)


class CheckpointError(ValueError):
    """A file that `load` cannot read as a tinygrad_cnn checkpoint (truncated, corrupt or foreign)."""


def save(state, path) -> None:
    """Write `state` (nested dicts/lists/tuples of arrays, Tensors, numbers, strings, bools and None) to `path`.

    The file is written exactly at `path` (no suffix is added), atomically. A path ending in .safetensors
    takes a flat dict name → tensor (a state_dict) in that format; any other path gets the .npz format.
    """
    path = os.fspath(path)
    if _is_safetensors(path):
        content = safetensors_format.encode(state)
        write_atomically(path, lambda file: file.write(content))
        return
    arrays: dict = {}
    tree = _encode(state, [], arrays)
    arrays[MANIFEST] = np.array(json.dumps({"format": "tinygrad_cnn", "version": FORMAT_VERSION, "tree": tree}))
    write_atomically(path, lambda file: _write_npz(file, arrays))


def load(path):
    """Read a checkpoint written by `save`; arrays come back as ndarrays, Tensors as Tensors (no grad).
    A .safetensors file (ours or any other program's) comes back as a flat dict name → Tensor."""
    path = os.fspath(path)
    if _is_safetensors(path):
        return safetensors_format.read(path, CheckpointError)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"load: {path} holds a single .npy array, not a tinygrad_cnn checkpoint")
        with archive:
            if MANIFEST not in archive.files:
                raise CheckpointError(f"load: {path} is an .npz file but not a tinygrad_cnn checkpoint "
                                      f"(it has no '{MANIFEST}' entry)")
            manifest = json.loads(str(archive[MANIFEST]))
            if manifest.get("format") != "tinygrad_cnn" or manifest.get("version") != FORMAT_VERSION:
                raise CheckpointError(f"load: {path} has an unknown checkpoint format {manifest.get('format')!r} "
                                      f"version {manifest.get('version')!r}")
            return _decode(manifest["tree"], archive)
    except (zipfile.BadZipFile, ValueError, EOFError, KeyError, struct.error, NotImplementedError, TypeError,
            AttributeError, MemoryError) as error:  # a malformed manifest or member header, whatever its shape
        if isinstance(error, CheckpointError):
            raise
        if "Object arrays cannot be loaded" in str(error):  # NumPy's refusal of an object array member
            raise CheckpointError(f"load: {path} holds an array of Python objects, which only pickle can read; "
                                  "load never unpickles (unpickling can run code)") from error
        raise CheckpointError(f"load: {path} is not a readable tinygrad_cnn checkpoint (truncated, corrupt or "
                              f"another format): {type(error).__name__}: {error}") from error


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(".safetensors")


# ---- encoding ---------------------------------------------------------------------------------
def _encode(value, path: list, arrays: dict):
    """The manifest node for `value`; its leaves are added to `arrays` under readable, unique names."""
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
                raise TypeError(f"save: dict keys must be str or int, got {type(key).__name__} {key!r} at "
                                f"{_display(path)}")
            kind = "str" if isinstance(key, str) else "int"
            items.append([kind, str(int(key)) if kind == "int" else key, _encode(item, path + [str(key)], arrays)])
        return {"type": "dict", "items": items}
    if isinstance(value, (list, tuple)):
        return {"type": type(value).__name__,
                "items": [_encode(item, path + [str(i)], arrays) for i, item in enumerate(value)]}
    kind, array = _leaf(value, path)
    name = _unique_name(path, arrays)
    arrays[name] = array
    return {"type": kind, "entry": name}


def _leaf(value, path):
    """(type tag, array) for one leaf value."""
    if isinstance(value, Tensor):
        return "tensor", _plain_array(value.numpy(), path)
    if isinstance(value, np.ndarray):
        return "ndarray", _plain_array(value, path)
    if isinstance(value, np.generic):
        return "numpy_scalar", _plain_array(np.asarray(value), path)
    if value is None:
        return "none", np.array(False)
    if isinstance(value, bool):
        return "bool", np.array(value)
    if isinstance(value, int):
        return ("int", np.array(value, np.int64)) if _INT64.min <= value <= _INT64.max else ("bigint", np.array(str(value)))
    if isinstance(value, float):
        return "float", np.array(value, np.float64)
    if isinstance(value, str):
        return "str", np.array(value)
    raise TypeError(f"save: cannot store a {type(value).__name__} at {_display(path)}; supported are dicts, lists, "
                    "tuples, arrays, Tensors, numbers, strings, bools and None")


def _plain_array(array, path):
    if array.dtype.hasobject or array.dtype.kind == "V":
        raise TypeError(f"save: the array at {_display(path)} has dtype {array.dtype}, which needs pickle; "
                        "only numeric, bool and string arrays can be stored")
    return array


def _unique_name(path, arrays) -> str:
    """The '/'-joined path ('%' and '/' inside keys escaped), made unique if two keys spell the same ('3' and 3)."""
    base = "/".join(part.replace("%", "%25").replace("/", "%2F") for part in path) or "value"
    name, n = base, 1
    while name in arrays or name == MANIFEST:
        name, n = f"{base}~{n}", n + 1
    return name


def _display(path) -> str:
    return "/".join(path) or "the top level"


# ---- decoding ---------------------------------------------------------------------------------
def _decode(node, archive):
    kind = node["type"]
    if kind == "dict":
        return {int(key) if key_kind == "int" else key: _decode(item, archive) for key_kind, key, item in node["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(item, archive) for item in node["items"]]
        return items if kind == "list" else tuple(items)
    array = archive[node["entry"]]
    if kind == "ndarray":
        return array
    if kind == "tensor":
        return Tensor._wrap(array)  # as stored, float16 too: load_state_dict casts to the model's dtype
    if kind == "numpy_scalar":
        return array[()]
    if kind == "none":
        return None
    if kind in ("bool", "int", "float", "str"):
        return {"bool": bool, "int": int, "float": float, "str": str}[kind](array[()])
    if kind == "bigint":
        return int(str(array[()]))
    raise ValueError(f"unknown leaf type {kind!r} in the manifest")  # load adds the path


def _write_npz(file, arrays: dict) -> None:
    """What np.savez writes (an uncompressed zip of .npy members), without its keyword-name clashes
    ('file', 'allow_pickle') or the '.npz' it appends to file names, and refusing pickled members."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
