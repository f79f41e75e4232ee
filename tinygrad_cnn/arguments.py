"""Argument spellings the public surface accepts: PyTorch's names first, NumPy's as synonyms."""


def synonym(op: str, value, default, numpy_value, names: str):
    """PyTorch's argument (`dim`, `keepdim`) or its NumPy spelling (`axis`, `keepdims`), not both."""
    if numpy_value is None:
        return default if value is None else value
    if value is not None and value is not default:
        raise TypeError(f"{op}: got both {names}; give one")
    return numpy_value


def shape_args(shape, op: str) -> tuple:
    """Shapes given as separate ints or as one tuple/list, as PyTorch accepts them."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"{op}: a shape is made of ints, got {tuple(shape)!r}")
    return tuple(int(n) for n in shape)


def size_args(size, op: str) -> tuple:
    """The shape of a new tensor: ints as `shape_args` takes them, none negative."""
    shape = shape_args(size, op)
    if any(n < 0 for n in shape):
        raise ValueError(f"{op}: sizes must be non-negative, got {shape}")
    return shape
