"""Imports inside the package point down only (DESIGN.md): the user API (nn, optim, functional, data, summary, ...)
→ tensor → ops → autograd → kernels → runtime → the standalone helpers. (ops sit above autograd in import order:
each op is a Function subclass, and autograd's walk never needs a particular op.) Every module's imports are
read with `ast` (absolute and relative, at the top or inside a function) and each must name a module of its own
layer or one below."""
import ast
import os
import shutil

import pytest

PACKAGE = "tinygrad_cnn"
PACKAGE_ROOT = os.path.join(os.path.dirname(__file__), "..", PACKAGE)

# Lowest first. A module belongs to the layer of the longest prefix that names it or a package holding it;
# a module no prefix names is part of the user API, the top layer.
LAYERS = [
    ("standalone", ["atomic_file", "rng", "arguments", "device"]),  # import nothing from the package
    ("runtime", ["runtime", "threads", "allocator"]),
    ("kernels", ["ops.kernels"]),
    ("autograd", ["autograd"]),
    ("ops", ["ops"]),
    ("tensor", ["tensor", "tensor_shape", "tensor_reduce", "tensor_inplace", "tensor_idioms"]),  # Tensor and its method mixins
    ("user API", [""]),
]


def layer_of(module: str, layers=LAYERS) -> int:
    """The rank of `module` (a dotted name inside the package) in `layers`."""
    best_rank, best_length = None, -1
    for rank, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            name = f"{PACKAGE}.{prefix}" if prefix else PACKAGE
            if (module == name or module.startswith(name + ".")) and len(name) > best_length:
                best_rank, best_length = rank, len(name)
    return best_rank


def package_modules(root: str) -> dict:
    """Dotted module name → source path, for every .py file under the package folder `root`."""
    modules = {}
    for folder, _, files in os.walk(root):
        for file in files:
            if file.endswith(".py"):
                parts = os.path.relpath(os.path.join(folder, file[:-3]), root).split(os.sep)
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                modules[".".join([PACKAGE] + [p for p in parts if p != "."])] = os.path.join(folder, file)
    return modules


def imported_modules(module: str, path: str, known: dict) -> list:
    """(line, dotted name) of every package module that `module` imports. `from X import name` counts as an
    import of X.name when that is a module, else of X."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            found += [(node.lineno, f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
                      for alias in node.names]
    return [(line, name) for line, name in found if name == PACKAGE or name.startswith(PACKAGE + ".")]


def upward_imports(root: str, layers=LAYERS) -> list:
    """'path:line: module (layer) imports target (higher layer)' for every import that points up."""
    modules, names = package_modules(root), [name for name, _ in layers]
    problems = []
    for module, path in sorted(modules.items()):
        rank = layer_of(module, layers)
        for line, target in imported_modules(module, path, modules):
            if layer_of(target, layers) > rank:
                problems.append(f"{os.path.relpath(path, os.path.dirname(root))}:{line}: {module} ({names[rank]}) "
                                f"imports {target} ({names[layer_of(target, layers)]})")
    return problems


def test_the_package_imports_point_down_only():
    problems = upward_imports(PACKAGE_ROOT)
    assert not problems, "upward imports:\n" + "\n".join(problems)


def test_the_layers_name_the_modules_as_the_design_does():
    modules = package_modules(PACKAGE_ROOT)
    expected = {"tinygrad_cnn.ops.kernels.conv": "kernels", "tinygrad_cnn.ops.kernels": "kernels",
                "tinygrad_cnn.ops.conv": "ops", "tinygrad_cnn.ops": "ops", "tinygrad_cnn.autograd": "autograd",
                "tinygrad_cnn.tensor": "tensor", "tinygrad_cnn.nn.functional": "user API",
                "tinygrad_cnn.optim.sgd": "user API", "tinygrad_cnn": "user API", "tinygrad_cnn.rng": "standalone"}
    assert {m: LAYERS[layer_of(m)][0] for m in expected} == expected
    assert set(expected) <= set(modules)  # the names above are real modules, not stale ones


# ---- the checker itself, on a small package written here ----------------------------------------------
def _write(root, files: dict) -> str:
    for relative, source in files.items():
        path = root / PACKAGE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return str(root / PACKAGE)


ALLOWED = {  # every downward or sideways import, in each spelling
    "__init__.py": "from . import nn\nfrom .tensor import Tensor\n",
    "tensor.py": "from . import autograd\nfrom .ops import elementwise\n",
    "autograd.py": "import numpy\nfrom .ops import kernels\nfrom .rng import generator\n",
    "rng.py": "import numpy as np\n",
    "threads.py": "import os\nfrom .rng import generator\n",
    "runtime/__init__.py": "from .. import threads\n",
    "ops/__init__.py": "",
    "ops/elementwise.py": "from ..autograd import Function\nfrom .kernels import conv\nfrom tinygrad_cnn.runtime import x\n",
    "ops/kernels/__init__.py": "from tinygrad_cnn.threads import one_blas_thread\n",
    "ops/kernels/conv.py": "from . import geometry\nfrom tinygrad_cnn.ops.kernels.geometry import pair\n"
                           "import tinygrad_cnn.runtime\n",
    "ops/kernels/geometry.py": "import numpy as np\n",
    "nn/__init__.py": "from . import functional\nfrom ..optim import sgd\n",
    "nn/functional.py": "from ..tensor import Tensor\nfrom ..ops.kernels.geometry import pair\n",
    "optim/__init__.py": "",
    "optim/sgd.py": "from ..nn import functional\n",
}

UPWARD = [  # (file, import line, the target's layer): each of the rules DESIGN.md states
    ("ops/kernels/conv.py", "from ...ops import elementwise", "ops"),
    ("ops/kernels/conv.py", "from tinygrad_cnn.autograd import Function", "autograd"),
    ("ops/kernels/conv.py", "from ... import tensor", "tensor"),
    ("ops/kernels/conv.py", "import tinygrad_cnn.nn.functional", "user API"),
    ("ops/kernels/geometry.py", "def f():\n    from tinygrad_cnn.optim import sgd", "user API"),
    ("ops/elementwise.py", "from ..tensor import Tensor", "tensor"),
    ("ops/elementwise.py", "from ..nn import functional as F", "user API"),
    ("ops/__init__.py", "from tinygrad_cnn import optim", "user API"),
    ("autograd.py", "from .tensor import Tensor", "tensor"),
    ("autograd.py", "from .ops.elementwise import Add", "ops"),
    ("autograd.py", "from tinygrad_cnn import Tensor", "user API"),  # a name from the package's __init__
    ("threads.py", "from .ops.kernels import conv", "kernels"),
    ("runtime/__init__.py", "from ..autograd import Function", "autograd"),
    ("rng.py", "from .threads import x", "runtime"),
]


def test_the_checker_accepts_downward_and_sideways_imports(tmp_path):
    assert upward_imports(_write(tmp_path, ALLOWED)) == []


@pytest.mark.parametrize("file, line, target_layer", UPWARD, ids=[f"{f}: {l}" for f, l, _ in UPWARD])
def test_the_checker_refuses_each_upward_import(tmp_path, file, line, target_layer):
    files = dict(ALLOWED)
    files[file] += line + "\n"
    problems = upward_imports(_write(tmp_path, files))
    assert len(problems) == 1 and problems[0].endswith(f"({target_layer})"), problems
    last_line = files[file].count("\n")  # the planted import is the file's last line
    assert problems[0].startswith(f"{PACKAGE}/{file}:{last_line}:")


def test_the_checker_refuses_an_upward_import_planted_in_a_copy_of_the_package(tmp_path):
    copy = tmp_path / PACKAGE
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    kernel = copy / "ops" / "kernels" / "geometry.py"
    kernel.write_text(kernel.read_text() + "\nfrom tinygrad_cnn.tensor import Tensor\n")
    problems = upward_imports(str(copy))
    assert len(problems) == 1 and "tinygrad_cnn.ops.kernels.geometry (kernels) imports tinygrad_cnn.tensor" \
        in problems[0]
