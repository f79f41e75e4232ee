"""Full training steps against PyTorch (when importable), measured side by side in one process.

    python benchmarks/train_step.py --threads 2            # steps of `cnn`, `lenet` and `resnet20`
    python benchmarks/train_step.py --models resnet20 --profile  # where our step's time goes, per Function
    python benchmarks/train_step.py --threads 2 --epoch    # examples/mnist/train.py's loop, ours vs PyTorch
    python benchmarks/train_step.py --startup              # fresh process to the first step, cold and warm
    python benchmarks/train_step.py --threads 1 --cpu-time # one thread, CPU time: steadiest on a shared machine
    python benchmarks/train_step.py --default-allocator    # without tune_allocator(), as most scripts run

A step is forward, cross-entropy, backward and the optimizer's update on one random float32 batch: the
MNIST models (1×28×28) with Adam (lr 1e-3), ResNet-20 (3×32×32, benchmarks/resnet.py) with SGD (lr 0.1,
momentum 0.9, weight decay 5e-4), as CIFAR-10 is trained. --rounds rounds each time a block of --repeats
steps of ours, then of PyTorch's, with a pause between (spinning BLAS/OpenMP threads of one would slow
the other); a time is the median over rounds of each block's median, the ratio (ours / PyTorch, below 1
is faster) the median of the rounds' ratios, so a burst of outside load during one block does not decide
it. Epoch = 60,000 images at the measured step time.

--epoch runs train.py's inner loop (DataLoader with shuffling, 1-pixel shifts and normalisation, loss.item(),
OneCycleLR, accuracy count) over the first --limit training images for each framework and scales to 60,000 images.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples", "mnist"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet import resnet20  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

EPOCH_IMAGES = 60_000
CLOCK = time.perf_counter  # --cpu-time switches to time.process_time


def torch_model(name):
    """The PyTorch twin of examples/mnist/models.py's model `name`."""
    nn = torch.nn
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
            nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def optimizer_for(framework, name, model):
    """Adam for the MNIST models (as examples/mnist/train.py), SGD with momentum for the ResNet (as CIFAR-10)."""
    if name == "resnet20":
        return framework.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    return framework.optim.Adam(model.parameters(), lr=1e-3)


def batch_for(name, batch, rng):
    """Random float32 images of the model's input shape and random labels."""
    shape = (3, 32, 32) if name == "resnet20" else (1, 28, 28)
    return rng.standard_normal((batch,) + shape).astype(np.float32), rng.integers(0, 10, batch)


def our_step(name, batch, rng):
    """A closure running one training step of our model `name` on one fixed random batch."""
    import tinygrad_cnn as tc
    from tinygrad_cnn.nn import functional as F
    from models import MODELS
    model = resnet20(tc) if name == "resnet20" else MODELS[name]()
    optimizer = optimizer_for(tc, name, model)
    x, y = batch_for(name, batch, rng)
    x = tc.Tensor(x)

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def torch_step(name, batch, rng):
    """The same step in PyTorch."""
    model = resnet20(torch) if name == "resnet20" else torch_model(name)
    optimizer = optimizer_for(torch, name, model)
    x, y = (torch.from_numpy(a) for a in batch_for(name, batch, rng))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def median_time(function, repeats, warmup=3, settle=0.3):
    """Median seconds of `function` over `repeats` runs after `warmup` runs and a pause."""
    time.sleep(settle)
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = CLOCK()
        function()
        times.append(CLOCK() - start)
    return float(np.median(times))


def main_steps(args):
    rng = np.random.default_rng(0)
    print(f"training step (forward, cross-entropy, backward, update), median {'CPU' if args.cpu_time else 'wall'} "
          f"time of {args.rounds} rounds of {args.repeats} steps, ours then PyTorch's; {cpu()}; "
          f"threads: ours {threads()}, torch {torch.get_num_threads() if torch else '-'}; glibc's allocator "
          + ("at its defaults" if args.default_allocator else "tuned (tune_allocator)"))
    print(f"{'model':<9}{'batch':>6}{'ours ms':>10}{'img/s':>9}{'epoch s':>9}"
          + (f"{'torch ms':>10}{'img/s':>9}{'epoch s':>9}{'ratio':>8}" if torch else ""))
    for name in args.models:
        for batch in args.batches:
            ours_step = our_step(name, batch, rng)
            theirs_step = torch_step(name, batch, rng) if torch else None
            rounds = []
            for _ in range(args.rounds):
                rounds.append((median_time(ours_step, args.repeats),
                               median_time(theirs_step, args.repeats) if torch else None))
            ours = float(np.median([r[0] for r in rounds]))
            line = f"{name:<9}{batch:>6}{ours * 1e3:10.1f}{batch / ours:9.0f}{EPOCH_IMAGES / batch * ours:9.1f}"
            if torch:
                theirs = float(np.median([r[1] for r in rounds]))
                ratio = float(np.median([o / t for o, t in rounds]))
                line += f"{theirs * 1e3:10.1f}{batch / theirs:9.0f}{EPOCH_IMAGES / batch * theirs:9.1f}{ratio:8.2f}"
            print(line, flush=True)
    print(f"reproduce: python benchmarks/train_step.py --threads {args.threads or threads()}"
          f" --models {' '.join(args.models)} --batches {' '.join(map(str, args.batches))}"
          + (" --cpu-time" if args.cpu_time else "") + (" --default-allocator" if args.default_allocator else ""))


def main_profile(args):
    """Our step's time per Function (forward and backward apart), summed over --repeats steps after warm-up."""
    from collections import defaultdict
    from tinygrad_cnn.autograd import Function
    totals = defaultdict(float)

    def timed(function, key):
        def run(*a, **k):
            start = CLOCK()
            try:
                return function(*a, **k)
            finally:
                totals[key] += CLOCK() - start
        return staticmethod(run)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    for name in args.models:
        for batch in args.batches:
            step = our_step(name, batch, np.random.default_rng(0))
            median_time(step, 1)  # compiles and warms up before the wrappers go in
            originals = {cls: (cls.__dict__.get("forward"), cls.__dict__.get("backward")) for cls in subclasses(Function)}
            for cls, (forward, backward) in originals.items():
                if forward is not None:
                    cls.forward = timed(forward.__func__, (cls.__name__, "forward"))
                if backward is not None:
                    cls.backward = timed(backward.__func__, (cls.__name__, "backward"))
            totals.clear()
            start = CLOCK()
            for _ in range(args.repeats):
                step()
            whole = (CLOCK() - start) / args.repeats
            for cls, (forward, backward) in originals.items():
                for attribute, method in (("forward", forward), ("backward", backward)):
                    if method is not None:
                        setattr(cls, attribute, method)
            print(f"{name}, batch {batch}: {whole * 1e3:.1f} ms per step (mean of {args.repeats}); per Function, ms "
                  f"per step; {cpu()}; threads {threads()}")
            per_op = defaultdict(lambda: [0.0, 0.0])
            for (op, direction), seconds in totals.items():
                per_op[op][direction == "backward"] += seconds / args.repeats
            for op, (forward, backward) in sorted(per_op.items(), key=lambda item: -sum(item[1])):
                print(f"  {op:<22}{forward * 1e3:8.2f} fwd{backward * 1e3:8.2f} bwd{(forward + backward) * 1e3:8.2f}")
            rest = whole - sum(map(sum, per_op.values()))
            print(f"  {'outside Functions':<22}{rest * 1e3:28.2f}  (apply, graph walk, optimizer)")


def our_epoch(name, images, labels, batch):
    """Seconds for one pass of examples/mnist/train.py's training loop over `images`."""
    import math
    import tinygrad_cnn as tc
    from tinygrad_cnn.utils.data import DataLoader, TensorDataset
    from tinygrad_cnn.nn import functional as F
    from models import MODELS
    from train import normalize, random_shift
    model = MODELS[name]()
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch, shuffle=True)
    optimizer = tc.optim.Adam(model.parameters(), lr=2e-3)
    scheduler = tc.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=len(loader))
    start, correct = time.perf_counter(), 0
    for batch_images, batch_labels in loader:
        x, y = normalize(random_shift(batch_images.numpy(), 1)), batch_labels.numpy()
        logits = model(tc.Tensor(x))
        loss = F.cross_entropy(logits, y)
        assert math.isfinite(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        correct += int((logits.numpy().argmax(axis=1) == y).sum())
    return time.perf_counter() - start


def torch_epoch(name, images, labels, batch):
    """The same loop in PyTorch (NumPy batching, shifts and normalisation as ours: only the framework differs)."""
    import math
    from train import normalize, random_shift
    model = torch_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = -(-len(images) // batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    order = np.random.default_rng(0).permutation(len(images))
    start, correct = time.perf_counter(), 0
    for first in range(0, len(images), batch):
        chosen = order[first:first + batch]
        x, y = torch.from_numpy(normalize(random_shift(images[chosen], 1))), torch.from_numpy(labels[chosen])
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        assert math.isfinite(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        correct += int((logits.argmax(dim=1) == y).sum())
    return time.perf_counter() - start


def main_epoch(args):
    from tinygrad_cnn.data import load_mnist
    data = load_mnist(os.path.join(ROOT, "examples", "mnist", "data"))
    images, labels = data.train_images[:args.limit], data.train_labels[:args.limit].astype(np.int64)
    print(f"examples/mnist/train.py loop (Adam, OneCycleLR, batch {args.batch}) over {len(images)} images, "
          f"scaled to {EPOCH_IMAGES}; threads: ours {threads()}, torch {torch.get_num_threads() if torch else '-'}")
    our_epoch(args.model, images[:args.batch * 3], labels[:args.batch * 3], args.batch)  # warm-up
    ours = our_epoch(args.model, images, labels, args.batch) * EPOCH_IMAGES / len(images)
    line = f"{args.model}: ours {ours:.1f} s/epoch"
    if torch:
        time.sleep(0.3)
        torch_epoch(args.model, images[:args.batch * 3], labels[:args.batch * 3], args.batch)
        theirs = torch_epoch(args.model, images, labels, args.batch) * EPOCH_IMAGES / len(images)
        line += f", torch {theirs:.1f} s/epoch, ratio {ours / theirs:.2f}"
    print(line)
    print(f"reproduce: python benchmarks/train_step.py --epoch --model {args.model} --limit {args.limit} "
          f"--threads {args.threads or threads()}")


STARTUP_SCRIPT = """
import time; start = time.perf_counter()
import sys; sys.path.insert(0, "examples/mnist")
import numpy as np
import tinygrad_cnn as tc
from tinygrad_cnn.nn import functional as F
from models import MODELS
model = MODELS[sys.argv[1]](); optimizer = tc.optim.Adam(model.parameters())
loss = F.cross_entropy(model(tc.Tensor(np.zeros((64, 1, 28, 28), np.float32))), np.zeros(64, np.int64))
loss.backward(); optimizer.step()
print(time.perf_counter() - start, time.process_time())
"""


def main_startup(args):
    """Fresh processes to the end of the first training step, imports included, for each MNIST model: cold with
    Numba's cache pointed at a new empty directory (nothing else is touched), then warm twice from what the
    cold run cached there. Also says whether the process printed the compile notice (runtime/launch.py)."""
    from tinygrad_cnn.runtime.launch import COMPILE_NOTICE
    print(f"fresh process to the end of the first training step (batch 64, Adam); {cpu()}")
    for name in [m for m in args.models if m != "resnet20"]:
        with tempfile.TemporaryDirectory() as cache:
            for label in ("cold (empty Numba cache)", "warm", "warm"):
                run = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT, name], cwd=ROOT, check=True, text=True,
                                     env=dict(os.environ, NUMBA_CACHE_DIR=cache), capture_output=True)
                wall, cpu_time = map(float, run.stdout.split())
                print(f"{name}: {label}: {wall:.2f} s wall, {cpu_time:.2f} s CPU; compile notice "
                      f"{'shown' if COMPILE_NOTICE in run.stderr else 'not shown'}", flush=True)
    print("reproduce: python benchmarks/train_step.py --startup")


def cpu():
    """The CPU model and whether it has AVX-512 (the widest vectors Numba and BLAS may use)."""
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read()
    except OSError:
        return "CPU unknown"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    return f"{model}, {'AVX-512' if ' avx512f' in text else 'AVX2' if ' avx2' in text else 'no AVX2'}"


def threads():
    from tinygrad_cnn.runtime import get_num_threads
    return get_num_threads()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["cnn", "lenet", "resnet20"],
                        choices=["cnn", "lenet", "resnet20"])
    parser.add_argument("--batches", nargs="+", type=int, default=[64])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ours-then-PyTorch blocks")
    parser.add_argument("--profile", action="store_true", help="our step's time per Function")
    parser.add_argument("--threads", type=int, default=0, help="set ours and PyTorch's thread counts (default: as is)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="measure process CPU time instead of wall time (meaningful with --threads 1)")
    parser.add_argument("--startup", action="store_true", help="time a fresh process to the first training step")
    parser.add_argument("--epoch", action="store_true", help="time train.py's loop, ours and PyTorch's")
    parser.add_argument("--model", default="cnn", choices=["cnn", "lenet"], help="model for --epoch")
    parser.add_argument("--batch", type=int, default=64, help="batch size for --epoch (train.py's default)")
    parser.add_argument("--limit", type=int, default=6400, help="training images for --epoch")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as a script that does not call tune_allocator() has it")
    parser.add_argument("--no-record", action="store_true", help="do not append the results to benchmarks/RESULTS.md")
    arguments = parser.parse_args()
    if arguments.cpu_time:
        CLOCK = time.process_time
    import tinygrad_cnn as tc
    if not arguments.default_allocator:
        tc.runtime.tune_allocator()  # as examples/mnist/train.py does: freed memory stays, PyTorch's too
    if arguments.threads:
        tc.set_num_threads(arguments.threads)
        if torch:
            torch.set_num_threads(arguments.threads)
    from results import recorded
    modes = {"startup": main_startup, "profile": main_profile, "epoch": main_epoch}
    mode = next((name for name in modes if getattr(arguments, name)), None)
    with recorded("train_step: " + (mode or "training steps"), threads, enabled=not arguments.no_record):
        modes.get(mode, main_steps)(arguments)
