"""What one small op costs end to end (Function.apply, wrapping, graph recording), and whole steps of small
models where that cost dominates, against PyTorch in the same process.

    python benchmarks/op_overhead.py --threads 1

Per op: `a + b` and `a.relu()` on 4-element float32 tensors, with grad recording (inputs require grad) and
under no_grad, and NumPy's own `np.add` on the arrays (the floor no wrapper goes below). Steps: forward,
cross-entropy, backward and an SGD update of an MLP 784-128-64-10 and of LeNet-5 at batch 1 and 16.
--rounds rounds each time ours then PyTorch's; figures are medians over rounds of each block's median.
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import tinygrad_cnn as tc  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def per_call(function, calls):
    """Median seconds per call of `function` over 5 blocks of `calls` calls."""
    function()
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        blocks.append((time.perf_counter() - start) / calls)
    return float(np.median(blocks))


def op_closures(framework):
    """(name, closure) pairs of single small ops in `framework` (tinygrad_cnn or torch)."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(4).astype(np.float32) for _ in range(2)]
    if framework is tc:
        a, b = (tc.Tensor(x, requires_grad=True) for x in arrays)
    else:
        a, b = (torch.tensor(x, requires_grad=True) for x in arrays)

    def without_grad(op):
        def run():
            with framework.no_grad():
                op()
        return run
    return [("a + b, recorded", lambda: a + b), ("a.relu(), recorded", lambda: a.relu()),
            ("a + b, no_grad", without_grad(lambda: a + b))]


def model(framework, name):
    nn = framework.nn
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                             nn.Linear(64, 10))
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def step_closure(framework, name, batch):
    rng = np.random.default_rng(1)
    net = model(framework, name)
    optimizer = framework.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    x, y = (tc.Tensor(x), y) if framework is tc else (torch.from_numpy(x), torch.from_numpy(y))
    cross_entropy = framework.nn.functional.cross_entropy

    def step():
        loss = cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def rounds(ours, theirs, calls, count):
    """Medians over `count` rounds of (ours, theirs) seconds per call, and of their ratios."""
    results = [(per_call(ours, calls), per_call(theirs, calls) if theirs else float("nan")) for _ in range(count)]
    ours_s, theirs_s = (float(np.median([r[i] for r in results])) for i in (0, 1))
    return ours_s, theirs_s, float(np.median([o / t for o, t in results]))


def main(args):
    print(f"per-op overhead, medians of {args.rounds} rounds (ours then PyTorch's); threads: ours "
          f"{tc.get_num_threads()}, torch {torch.get_num_threads() if torch else '-'}")
    a, b = np.ones(4, np.float32), np.ones(4, np.float32)
    print(f"{'NumPy np.add on the arrays':<26}{per_call(lambda: np.add(a, b), 20000) * 1e6:8.2f} us")
    print(f"{'op':<26}{'ours us':>8}{'torch us':>10}{'ratio':>8}")
    theirs_ops = dict(op_closures(torch)) if torch else {}
    for name, ours in op_closures(tc):
        o, t, r = rounds(ours, theirs_ops.get(name), 5000, args.rounds)
        print(f"{name:<26}{o * 1e6:8.2f}{t * 1e6:10.2f}{r:8.2f}", flush=True)
    print(f"\n{'step (fwd, CE, bwd, SGD)':<26}{'batch':>6}{'ours ms':>9}{'torch ms':>10}{'ratio':>8}")
    for name in ("mlp", "lenet"):
        for batch in (1, 16):
            ours = step_closure(tc, name, batch)
            theirs = step_closure(torch, name, batch) if torch else None
            o, t, r = rounds(ours, theirs, 50, args.rounds)
            print(f"{name:<26}{batch:>6}{o * 1e3:9.3f}{t * 1e3:10.3f}{r:8.2f}", flush=True)
    print(f"reproduce: python benchmarks/op_overhead.py --threads {args.threads or tc.get_num_threads()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=0, help="set ours and PyTorch's thread counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append the results to benchmarks/RESULTS.md")
    arguments = parser.parse_args()
    if arguments.threads:
        tc.set_num_threads(arguments.threads)
        if torch:
            torch.set_num_threads(arguments.threads)
    from results import recorded
    with recorded("op_overhead", tc.get_num_threads, enabled=not arguments.no_record):
        main(arguments)
