"""The one device (the CPU), the dtype names, and clear refusals of what this package does not run.

PyTorch scripts ask `torch.cuda.is_available()` and move tensors with `.to(device)`; here every such
question has the CPU's answer, and asking for a GPU, half precision or complex numbers says it is not
supported instead of failing later with a NumPy message.
"""
import types

import numpy as np


def unsupported(what: str) -> str:
    return f"{what} is not supported here: tinygrad_cnn runs on the CPU with float32/float64, integer and bool tensors"


class device:
    """`tc.device("cpu")` (or "cpu:0"): the only device. Any other device type raises."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):
        spec = str(type) if isinstance(type, device) else type
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {spec!r}")
        kind, _, number = spec.partition(":")
        if kind != "cpu":
            raise RuntimeError(unsupported(f"device {spec!r}"))
        self.type = "cpu"
        self.index = int(number) if number else index

    def __str__(self) -> str:
        return "cpu" if self.index is None else f"cpu:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='cpu')" if self.index is None else f"device(type='cpu', index={self.index})"

    def __eq__(self, other):
        if isinstance(other, str):
            return other.partition(":")[0] == "cpu" and str(self) == other
        return isinstance(other, device) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


CPU = device("cpu")


def check_device(value, op: str):
    """Refuse any device but the CPU (None means the CPU)."""
    if value is not None and not isinstance(value, device):
        if not isinstance(value, str):
            raise TypeError(f"{op}: device must be a string such as 'cpu' or a tc.device, got {value!r}")
        try:
            device(value)
        except RuntimeError as error:
            raise RuntimeError(f"{op}: {error}") from None


def is_device(value) -> bool:
    """True for a tc.device or a string naming a device type (so `.to("cpu")` is not read as a dtype)."""
    return isinstance(value, device) or (isinstance(value, str) and value.partition(":")[0] in
                                         ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "vulkan", "mkldnn"))


def to_arguments(op: str, args, dtype=None, device=None, tensor_type=()):
    """(dtype, device) from PyTorch's `.to(dtype)`, `.to(device)`, `.to(device, dtype)` and `.to(tensor)` forms
    (a `tensor_type` argument gives its dtype); any device but the CPU is refused."""
    for arg in args:
        if isinstance(arg, tensor_type):
            dtype = arg.dtype
        elif is_device(arg):
            device = arg
        else:
            dtype = resolve_dtype(arg, op)
    check_device(device, op)
    return resolve_dtype(dtype, op), device


def resolve_dtype(dtype, op: str):
    """`dtype` as a NumPy dtype this package can hold (None stays None); the rest refused, naming `op`."""
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is not a dtype (use tc.float32, tc.int64, tc.bool, ...)") from None
    if resolved.kind == "f" and resolved.itemsize < 4:
        raise TypeError(f"{op}: " + unsupported("half precision"))
    if resolved.kind == "c":
        raise TypeError(f"{op}: " + unsupported("a complex dtype"))
    if resolved.kind not in "biuf" or resolved.itemsize > 8:
        raise TypeError(f"{op}: a Tensor holds numbers or bools, not {resolved}")
    return resolved


def _not_available():
    return False


def _nothing(*args, **kwargs):
    """Seeding or synchronising a GPU there is none of does nothing, as PyTorch does without one."""


cuda = types.SimpleNamespace(is_available=_not_available, device_count=lambda: 0, manual_seed=_nothing,
                             manual_seed_all=_nothing, synchronize=_nothing, empty_cache=_nothing)
accelerator = types.SimpleNamespace(is_available=_not_available, current_accelerator=lambda: None,
                                    device_count=lambda: 0)
backends = types.SimpleNamespace(mps=types.SimpleNamespace(is_available=_not_available),
                                 cudnn=types.SimpleNamespace(is_available=_not_available, enabled=False,
                                                             deterministic=False, benchmark=False))
