"""Conv and max-pool speed against PyTorch (when importable), measured side by side in one process.

    python benchmarks/conv.py                 # through tinygrad_cnn's conv2d / max_pool2d (autograd included)
    python benchmarks/conv.py --kernels       # the kernels alone, no autograd
    python benchmarks/conv.py --sweep         # 30+ conv and pool layers of common CNNs at batch 32, vs the FMA peak
    python benchmarks/conv.py --beyond        # as --sweep, on layers the kernels were not tuned on, other batches
    python benchmarks/conv.py --algorithms    # each kernel algorithm per direction (direct, gemm, blocked)
    python benchmarks/conv.py --startup       # fresh-process time to the first conv result, cold and warm cache
    python benchmarks/conv.py --threads 1 --cpu-time   # one thread, CPU time: steadiest on a shared machine
    python benchmarks/conv.py --sweep --isa avx2       # ours and PyTorch held to AVX2 on an AVX-512 CPU (isa.py)

Times are medians over --repeats back-to-back runs after warm-up, ours and PyTorch's measured one after the
other in the same process; that is done --rounds times, and each time and ratio printed is the median over the
rounds, so that a burst of load from elsewhere during one side's turn does not decide a ratio (in --sweep and
--beyond each round goes over every row, so a burst lasting seconds hits one round of a few rows). Ratio = ours /
PyTorch (below 1 is faster). On a shared machine, rerun: load from
other processes moves both columns.
"""
import argparse
import glob
import math
import os
import subprocess
import sys
import time

import isa

isa.restrict()  # before NumPy, Numba and PyTorch are imported

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tinygrad_cnn.ops.kernels import conv as conv_kernels  # noqa: E402
from tinygrad_cnn.ops.kernels import pool as pool_kernels  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

BATCH = 64
# (C_in, H, W, C_out, kernel, stride, padding); the first four are the MNIST shapes
CONV_SHAPES = [(1, 28, 28, 32, 3, 1, 0), (32, 26, 26, 64, 3, 1, 0), (1, 28, 28, 6, 5, 1, 2), (6, 14, 14, 16, 5, 1, 0),
               (3, 32, 32, 64, 3, 1, 1), (64, 16, 16, 128, 3, 1, 1), (64, 16, 16, 128, 1, 1, 0),
               (64, 32, 32, 64, 3, 2, 1)]
POOL_SHAPE = (64, 24, 24)  # channels, H, W; 2×2 max-pool
SWEEP_BATCH = 32
# (network, C_in, H, W, C_out, kernel, stride, padding, groups): layers of LeNet-5, VGG-16 and ResNet-18 at
# CIFAR scale, ResNet-20 (CIFAR), MobileNet v1 at CIFAR scale (depthwise 3×3 + pointwise 1×1), a ResNeXt block
SWEEP_SHAPES = [
    ("LeNet", 1, 28, 28, 6, 5, 1, 2, 1), ("LeNet", 6, 14, 14, 16, 5, 1, 0, 1),
    ("VGG", 3, 32, 32, 64, 3, 1, 1, 1), ("VGG", 64, 32, 32, 64, 3, 1, 1, 1), ("VGG", 64, 16, 16, 128, 3, 1, 1, 1),
    ("VGG", 128, 16, 16, 128, 3, 1, 1, 1), ("VGG", 128, 8, 8, 256, 3, 1, 1, 1), ("VGG", 256, 8, 8, 256, 3, 1, 1, 1),
    ("VGG", 256, 4, 4, 512, 3, 1, 1, 1), ("VGG", 512, 4, 4, 512, 3, 1, 1, 1),
    ("ResNet-20", 16, 32, 32, 16, 3, 1, 1, 1), ("ResNet-20", 16, 32, 32, 32, 3, 2, 1, 1),
    ("ResNet-20", 32, 16, 16, 32, 3, 1, 1, 1), ("ResNet-20", 32, 16, 16, 64, 3, 2, 1, 1),
    ("ResNet-20", 64, 8, 8, 64, 3, 1, 1, 1), ("ResNet-20", 16, 32, 32, 32, 1, 2, 0, 1),
    ("ResNet-18", 64, 32, 32, 128, 3, 2, 1, 1), ("ResNet-18", 128, 16, 16, 256, 3, 2, 1, 1),
    ("ResNet-18", 256, 8, 8, 512, 3, 2, 1, 1), ("ResNet-18", 64, 32, 32, 128, 1, 2, 0, 1),
    ("ResNet-18", 256, 8, 8, 512, 1, 2, 0, 1),
    ("MobileNet", 32, 32, 32, 32, 3, 1, 1, 32), ("MobileNet", 32, 32, 32, 64, 1, 1, 0, 1),
    ("MobileNet", 64, 32, 32, 64, 3, 2, 1, 64), ("MobileNet", 64, 16, 16, 128, 1, 1, 0, 1),
    ("MobileNet", 128, 16, 16, 128, 3, 1, 1, 128), ("MobileNet", 128, 16, 16, 128, 3, 2, 1, 128),
    ("MobileNet", 128, 8, 8, 256, 1, 1, 0, 1), ("MobileNet", 256, 8, 8, 256, 3, 1, 1, 256),
    ("MobileNet", 512, 4, 4, 512, 3, 1, 1, 512), ("MobileNet", 512, 4, 4, 512, 1, 1, 0, 1),
    ("depthwise", 64, 8, 8, 64, 3, 2, 1, 64),
    ("ResNeXt", 128, 16, 16, 128, 3, 1, 1, 32), ("grouped", 64, 16, 16, 64, 3, 1, 1, 4),
]
# (network, C_in, H, W, C_out, kernel, stride, padding, groups, batch): layers outside the sweep, none of which
# the kernels were tuned on: ImageNet-scale ResNet stem and last stage, MobileNet v2's inverted residual,
# EfficientNet's 5×5 stride 2, AlexNet's 11×11, ResNet-50's bottleneck 1×1, odd channel counts and planes, a
# non-square plane, an unpadded conv, a depthwise 5×5 and a channel multiplier; batches from 1 to 128
BEYOND_SHAPES = [
    ("ImageNet stem", 3, 224, 224, 64, 7, 2, 3, 1, 8),
    ("ImageNet", 512, 7, 7, 512, 3, 1, 1, 1, 8), ("ResNet-50", 256, 14, 14, 1024, 1, 1, 0, 1, 8),
    ("MobileNet2", 144, 28, 28, 144, 3, 1, 1, 144, 16), ("MobileNet2", 144, 28, 28, 24, 1, 1, 0, 1, 16),
    ("EfficientNet", 24, 28, 28, 40, 5, 2, 2, 1, 32), ("AlexNet-like", 3, 64, 64, 32, 11, 4, 2, 1, 16),
    ("5x5", 32, 16, 16, 64, 5, 1, 2, 1, 32), ("non-square", 16, 20, 30, 32, 3, 1, 1, 1, 32),
    ("odd channels", 40, 14, 14, 80, 3, 1, 1, 1, 32), ("odd plane", 64, 15, 15, 64, 3, 1, 1, 1, 32),
    ("unpadded", 32, 30, 30, 64, 3, 1, 0, 1, 32), ("grouped", 64, 16, 16, 128, 3, 1, 1, 2, 32),
    ("depthwise 5x5", 96, 16, 16, 96, 5, 1, 2, 96, 32), ("multiplier 2", 32, 16, 16, 64, 3, 1, 1, 32, 32),
    ("VGG", 64, 32, 32, 64, 3, 1, 1, 1, 1), ("VGG", 128, 16, 16, 128, 3, 1, 1, 1, 1),
    ("ResNet-20", 16, 32, 32, 16, 3, 1, 1, 1, 128),
]
# (name, C, H, W, function name, keyword arguments)
SWEEP_POOLS = [("ResNet stem max 3x3 s2 p1", 64, 32, 32, "max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
               ("max 2x2", 64, 32, 32, "max_pool2d", dict(kernel_size=2)),
               ("max 2x2", 128, 16, 16, "max_pool2d", dict(kernel_size=2)),
               ("global average", 512, 4, 4, "adaptive_avg_pool2d", dict(output_size=1)),
               ("global average", 64, 8, 8, "adaptive_avg_pool2d", dict(output_size=1))]


CLOCK = time.perf_counter  # --cpu-time switches to time.process_time


def median_times(functions, repeats, warmup=2, settle=0.3, warm_seconds=0.05):
    """Median seconds of each function over `repeats` back-to-back runs after `warmup` runs and at least
    `warm_seconds` of them (after the pause, a call of a millisecond or two otherwise meets cold caches and
    sleeping cores, ours and PyTorch's alike).

    Functions are timed one after another, with a pause between them: PyTorch's OpenMP threads and OpenBLAS's
    threads keep spinning for a while after a call, and would steal the cores from whatever runs next
    (timing ours and PyTorch's calls alternately made both look up to 2× slower).
    """
    medians = []
    for function in functions:
        time.sleep(settle)
        warm_until, runs = time.perf_counter() + warm_seconds, 0
        while runs < warmup or time.perf_counter() < warm_until:
            function()
            runs += 1
        times = []
        for _ in range(repeats):
            start = CLOCK()
            function()
            times.append(CLOCK() - start)
        medians.append(float(np.median(times)))
    return medians


def round_medians(functions, repeats, rounds):
    """Per function, the median over `rounds` rounds of `median_times` (the functions take turns within a round),
    and per round the list of medians."""
    per_round = [median_times(functions, repeats) for _ in range(rounds)]
    return [float(np.median(column)) for column in zip(*per_round)], per_round


def conv_calls(shape, use_kernels, rng, batch=BATCH, groups=1):
    """(forward, forward+backward) callables of ours and, if torch is present, of PyTorch."""
    channels, height, width, out_channels, kernel, stride, padding = shape
    x = rng.standard_normal((batch, channels, height, width), dtype=np.float32)
    fan_in = channels // groups * kernel * kernel
    weight = rng.standard_normal((out_channels, channels // groups, kernel, kernel), dtype=np.float32) / math.sqrt(fan_in)
    bias = rng.standard_normal(out_channels, dtype=np.float32)
    geometry = ((stride, stride), (padding, padding), (1, 1), groups)
    out = conv_kernels.conv2d_forward(x, weight, bias, *geometry)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    if use_kernels:
        def ours_forward():
            return conv_kernels.conv2d_forward(x, weight, bias, *geometry)

        def ours_both():
            conv_kernels.conv2d_forward(x, weight, bias, *geometry)
            conv_kernels.conv2d_grad_input(grad, weight, x.shape, *geometry)
            conv_kernels.conv2d_grad_weight(x, grad, weight.shape, *geometry)
            conv_kernels.conv2d_grad_bias(grad)
    else:
        import tinygrad_cnn as tc
        from tinygrad_cnn.nn.functional import conv2d
        tx, tw, tb = (tc.Tensor(a, requires_grad=True) for a in (x, weight, bias))
        tgrad = tc.Tensor(grad)  # made once, as PyTorch's below

        def ours_forward():
            with tc.no_grad():
                return conv2d(tx, tw, tb, stride, padding, groups=groups)

        def ours_both():
            tx.grad = tw.grad = tb.grad = None
            conv2d(tx, tw, tb, stride, padding, groups=groups).backward(tgrad)
    calls = [ours_forward, ours_both]
    if torch is not None:
        px, pw, pb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
        pg = torch.tensor(grad)

        def torch_forward():
            with torch.no_grad():
                return torch.nn.functional.conv2d(px, pw, pb, stride, padding, groups=groups)

        def torch_both():
            px.grad = pw.grad = pb.grad = None
            torch.nn.functional.conv2d(px, pw, pb, stride, padding, groups=groups).backward(pg)
        calls += [torch_forward, torch_both]
    flops = 2 * batch * out.shape[2] * out.shape[3] * out_channels * fan_in
    return calls, flops


def pool_calls(use_kernels, rng):
    channels, height, width = POOL_SHAPE
    x = rng.standard_normal((BATCH, channels, height, width), dtype=np.float32)
    out, argmax = pool_kernels.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    if use_kernels:
        def ours_forward():
            return pool_kernels.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))

        def ours_both():
            _, winners = pool_kernels.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
            pool_kernels.max_pool2d_backward(grad, winners, x.shape)
    else:
        import tinygrad_cnn as tc
        from tinygrad_cnn.nn.functional import max_pool2d
        tx, tgrad = tc.Tensor(x, requires_grad=True), tc.Tensor(grad)

        def ours_forward():
            with tc.no_grad():
                return max_pool2d(tx, 2)

        def ours_both():
            tx.grad = None
            max_pool2d(tx, 2).backward(tgrad)
    calls = [ours_forward, ours_both]
    if torch is not None:
        px, pg = torch.tensor(x, requires_grad=True), torch.tensor(grad)

        def torch_forward():
            with torch.no_grad():
                return torch.nn.functional.max_pool2d(px, 2)

        def torch_both():
            px.grad = None
            torch.nn.functional.max_pool2d(px, 2).backward(pg)
        calls += [torch_forward, torch_both]
    return calls, BATCH * channels * height * width


def main_table(args):
    rng = np.random.default_rng(0)
    threads = get_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    mode = "kernels alone" if args.kernels else "through conv2d / max_pool2d with autograd"
    clock = "process CPU time" if args.cpu_time else "wall time"
    print(f"batch {BATCH}, float32, {threads} threads, {mode}; median {clock} of {args.repeats} runs, median of "
          f"{args.rounds} rounds (ms)")
    print(isa.describe())
    header = f"{'shape':<28}{'fwd':>8}{'GFLOP/s':>9}{'fwd+bwd':>9}"
    if torch is not None:
        header += f"{'torch fwd':>11}{'torch f+b':>11}{'ratio fwd':>10}{'ratio f+b':>10}"
    print(header)
    ratios = []
    rows = [(f"{c}x{h}x{w}->{m} k{k} s{s} p{p}", *conv_calls((c, h, w, m, k, s, p), args.kernels, rng))
            for c, h, w, m, k, s, p in CONV_SHAPES]
    rows.append(("maxpool 2x2 64x24x24", *pool_calls(args.kernels, rng)))
    for name, calls, work in rows:
        times, per_round = round_medians(calls, args.repeats, args.rounds)
        line = f"{name:<28}{times[0] * 1e3:8.2f}{work / times[0] / 1e9:9.1f}{times[1] * 1e3:9.2f}"
        if torch is not None:
            forward_ratio = np.median([t[0] / t[2] for t in per_round])
            ratios.append(float(np.median([t[1] / t[3] for t in per_round])))
            line += f"{times[2] * 1e3:11.2f}{times[3] * 1e3:11.2f}{forward_ratio:10.2f}{ratios[-1]:10.2f}"
        print(line, flush=True)
    if torch is not None:
        mnist = math.exp(np.mean(np.log(ratios[:4])))
        print(f"fwd+bwd ratio: geometric mean of the MNIST shapes {mnist:.2f}, worst {max(ratios):.2f}")
    print("reproduce: python " + " ".join(sys.argv))


def sweep_pool_calls(pool, rng):
    """(forward, forward+backward) callables of ours and, if torch is present, PyTorch's for one SWEEP_POOLS row."""
    import tinygrad_cnn as tc
    from tinygrad_cnn.nn import functional
    _, channels, height, width, name, options = pool
    x = rng.standard_normal((SWEEP_BATCH, channels, height, width), dtype=np.float32)
    sides = [(getattr(functional, name), tc.Tensor, tc.no_grad)]
    if torch is not None:
        sides.append((getattr(torch.nn.functional, name), torch.tensor, torch.no_grad))
    calls = []
    for function, tensor_of, no_grad in sides:
        tensor = tensor_of(x, requires_grad=True)
        with no_grad():
            grad = tensor_of(rng.standard_normal(function(tensor, **options).shape, dtype=np.float32))

        def forward(function=function, tensor=tensor, no_grad=no_grad):
            with no_grad():
                return function(tensor, **options)

        def both(function=function, tensor=tensor, grad=grad):
            tensor.grad = None
            function(tensor, **options).backward(grad)
        calls += [forward, both]
    return calls


def print_machine(threads):
    """The CPU model, its vector ISA, and the FMA peak measured now on `threads` threads."""
    from fma_peak import fma_peak
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    peak, width = fma_peak(threads)
    print(f"CPU: {model}, {os.cpu_count()} logical CPUs; AVX-512F {'present' if 'avx512f' in flags else 'absent'}, "
          f"AVX2 {'present' if 'avx2' in flags else 'absent'}")
    print(isa.describe())
    print(f"FMA peak {peak:.0f} GFLOP/s on {threads} thread(s): {12} independent {width}-lane float32 FMAs per "
          f"loop iteration, registers only (LLVM IR via llvmlite, one loop per thread; best of 0.3 s)")
    return peak


def main_sweep(args):
    rng = np.random.default_rng(0)
    threads = get_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    peak = print_machine(threads)
    clock = "process CPU time" if args.cpu_time else "wall time"
    batch = "the batch in each row's name" if args.beyond else f"batch {SWEEP_BATCH}"
    print(f"{batch}, float32, {threads} threads, through nn.functional with autograd; median {clock} "
          f"of {args.repeats} runs, median of {args.rounds} rounds (ms); GFLOP/s and %peak of the forward")
    print(f"{'layer':<44}{'fwd':>8}{'GFLOP/s':>8}{'%peak':>6}{'f+b':>8}{'torch fwd':>10}{'torch f+b':>10}"
          f"{'ratio fwd':>10}{'ratio f+b':>10}")
    ratios = []

    def report(name, times, per_round, flops):
        line = f"{name:<44}{times[0] * 1e3:8.2f}"
        line += f"{flops / times[0] / 1e9:8.1f}{100 * flops / times[0] / 1e9 / peak:6.0f}" if flops else " " * 14
        line += f"{times[1] * 1e3:8.2f}"
        if torch is not None:
            forward_ratio = np.median([t[0] / t[2] for t in per_round])
            ratios.append((float(np.median([t[1] / t[3] for t in per_round])), name))
            line += f"{times[2] * 1e3:10.2f}{times[3] * 1e3:10.2f}{forward_ratio:10.2f}{ratios[-1][0]:10.2f}"
        print(line, flush=True)

    def chosen(name):
        return not args.only or any(part in name for part in args.only.split(","))

    rows = []  # (name, calls, flops)
    for net, c, h, w, m, k, s, p, g, n in BEYOND_SHAPES if args.beyond else [(*shape, SWEEP_BATCH)
                                                                            for shape in SWEEP_SHAPES]:
        name = f"{net} {c}x{h}x{w}->{m} k{k} s{s} p{p}" + (f" g{g}" if g > 1 else "")
        name += f" b{n}" if args.beyond else ""
        if chosen(name):
            rows.append((name, *conv_calls((c, h, w, m, k, s, p), False, rng, n, g)))
    conv_rows = len(rows)
    for pool in [] if args.beyond else SWEEP_POOLS:
        name = f"pool {pool[0]} {pool[1]}x{pool[2]}x{pool[3]}"
        if chosen(name):
            rows.append((name, sweep_pool_calls(pool, rng), 0))
    # Each round times every row once, so a stretch of seconds in which the host takes a core slows one round
    # of several rows, which their medians discard, rather than every round of one row.
    per_round = [[] for _ in rows]
    for round_number in range(args.rounds):
        print(f"round {round_number + 1} of {args.rounds} over {len(rows)} rows", file=sys.stderr, flush=True)
        for row, (_, calls, _) in zip(per_round, rows):
            row.append(median_times(calls, args.repeats))
    for (name, _, flops), rounds in zip(rows, per_round):
        report(name, [float(np.median(column)) for column in zip(*rounds)], rounds, flops)
    if torch is not None:
        values = [r for r, _ in ratios]
        worst = max(ratios)
        conv_values = values[:conv_rows] or values
        print(f"fwd+bwd ratio: geometric mean {math.exp(np.mean(np.log(values))):.2f} over all {len(values)} rows, "
              f"{math.exp(np.mean(np.log(conv_values))):.2f} over the {len(conv_values)} convs; worst {worst[0]:.2f} "
              f"({worst[1]})")
    print("reproduce: python " + " ".join(sys.argv))


def algorithm_grid():
    """The 3×3 convs (padding 1) the dispatcher's rules were measured on at SWEEP_BATCH (kernels/conv.py
    choose_algorithm): channel pairs of VGG/ResNet stages, 16-512, on 4×4-32×32 planes at stride 1, and at
    stride 2 where the channels double, up to 64 MiB per activation."""
    pairs = [(16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256),
             (256, 512), (512, 512)]
    shapes = []
    for c, m in pairs:
        for h in (4, 8, 16, 32):
            if max(c, m) * h * h * SWEEP_BATCH * 4 > 64 << 20:
                continue
            halving = h > 4 and (m == 2 * c or c == m == 16)
            shapes += [(c, h, h, m, 3, 1, 1)] + ([(c, h, h, m, 3, 2, 1)] if halving else [])
    return shapes


def main_algorithms(args):
    """Each direction by each algorithm that can take it (the direct kernels only up to 64 output channels and
    576 taps: past that they are far slower), for the eight shapes at BATCH and the grid at SWEEP_BATCH; '*'
    marks the dispatcher's pick, and the last column is the pick's time over the fastest one's per direction."""
    rng = np.random.default_rng(0)
    directions = ("fwd", "dX", "dW")
    names = {"fwd": "forward", "dX": "grad_input", "dW": "grad_weight"}
    print(f"{'shape':<30} {'batch':>5}  " + "  ".join(f"{d + ': gemm / blocked / direct':<34}" for d in directions)
          + "  pick / best (fwd, dX, dW)")
    slow = []
    for batch, shape in [(BATCH, s) for s in CONV_SHAPES] + [(SWEEP_BATCH, s) for s in algorithm_grid()]:
        c, h, w, m, k, s, p = shape
        x = rng.standard_normal((batch, c, h, w), dtype=np.float32)
        weight = rng.standard_normal((m, c, k, k), dtype=np.float32)
        geometry = ((s, s), (p, p), (1, 1), 1)
        out = conv_kernels.conv2d_forward(x, weight, None, *geometry)
        grad = rng.standard_normal(out.shape, dtype=np.float32)
        calls = {"fwd": lambda a: conv_kernels.conv2d_forward(x, weight, None, *geometry, algorithm=a),
                 "dX": lambda a: conv_kernels.conv2d_grad_input(grad, weight, x.shape, *geometry, algorithm=a),
                 "dW": lambda a: conv_kernels.conv2d_grad_weight(x, grad, weight.shape, *geometry, algorithm=a)}
        algorithms = ["gemm", "blocked"] + (["direct"] if s == 1 and m <= 64 and c * k * k <= 576 else [])
        cells, ratios = [], []
        for d in directions:
            positions = h * w if d == "dX" else out.shape[2] * out.shape[3]
            pick = conv_kernels.choose_algorithm(weight.shape, (s, s), (p, p), 1, names[d], positions, (1, 1),
                                                 out.shape[2] * out.shape[3] if d == "dX" else None)
            timed = algorithms + ([pick] if pick not in algorithms else [])
            times = dict(zip(timed, median_times([lambda a=a, d=d: calls[d](a) for a in timed], args.repeats,
                                                 settle=0.05)))
            cells.append(" / ".join(f"{times[a] * 1e3:.2f}{'*' if a == pick else ''}" for a in algorithms))
            ratios.append(times[pick] / min(times.values()))
        name = f"{c}x{h}x{w}->{m} k{k} s{s} p{p}"
        print(f"{name:<30} {batch:>5}  " + "  ".join(f"{cell:<34}" for cell in cells) + "  "
              + ", ".join(f"{r:.2f}" for r in ratios), flush=True)
        slow += [(r, f"{name} {d}") for r, d in zip(ratios, directions) if r > 1.1]
    print(f"picks more than 10% slower than the fastest algorithm: {len(slow)}"
          + "".join(f"; {name} {r:.2f}" for r, name in sorted(slow, reverse=True)))
    print("reproduce: python " + " ".join(sys.argv))


STARTUP_SCRIPT = """
import time; start = time.perf_counter()
import numpy as np
import tinygrad_cnn as tc
from tinygrad_cnn.nn.functional import conv2d
x = tc.Tensor(np.ones((1, 1, 28, 28), np.float32)); w = tc.Tensor(np.ones((4, 1, 3, 3), np.float32))
conv2d(x, w).numpy()
print(time.perf_counter() - start)
"""


def main_startup(args):
    package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tinygrad_cnn")
    root = os.path.dirname(package)
    for label, clear in (("cold (empty Numba cache)", True), ("warm", False)):
        if clear:
            for path in glob.glob(os.path.join(package, "**", "__pycache__", "*.nb[ic]"), recursive=True):
                os.remove(path)
        wall = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip()
        print(f"fresh process to first conv result, {label}: {float(wall):.2f} s")
    print("reproduce: python benchmarks/conv.py --startup")


def get_threads():
    from tinygrad_cnn.runtime import get_num_threads
    return get_num_threads()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", action="store_true", help="time the kernels alone (no Tensor, no autograd)")
    parser.add_argument("--algorithms", action="store_true", help="time each algorithm per direction")
    parser.add_argument("--startup", action="store_true", help="time a fresh process to the first conv result")
    parser.add_argument("--sweep", action="store_true", help="the sweep of common CNN layers at batch 32")
    parser.add_argument("--beyond", action="store_true", help="as --sweep, on layers outside it, other batches")
    parser.add_argument("--only", default="", help="with --sweep or --beyond: only the rows whose name contains "
                                                   "one of these comma-separated strings")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ours-then-PyTorch timings per shape")
    parser.add_argument("--threads", type=int, default=0, help="set ours and PyTorch's thread counts (default: as is)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="measure process CPU time instead of wall time: steadier on a shared machine "
                             "(meaningful with --threads 1)")
    parser.add_argument("--no-record", action="store_true", help="do not append the results to benchmarks/RESULTS.md")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native",
                        help="avx2: hold our kernels and PyTorch to AVX2 on an AVX-512 CPU (benchmarks/isa.py)")
    arguments = parser.parse_args()
    if arguments.cpu_time:
        CLOCK = time.process_time
    from tinygrad_cnn.runtime import set_num_threads, tune_allocator
    tune_allocator()  # as a training script would: freed activations stay in the process
    if arguments.threads:
        set_num_threads(arguments.threads)
    from results import recorded
    modes = {"algorithms": main_algorithms, "startup": main_startup, "sweep": main_sweep, "beyond": main_sweep}
    mode = next((name for name in modes if getattr(arguments, name)), None)
    title = mode or ("kernels alone" if arguments.kernels else "against PyTorch")
    with recorded("conv: " + title, get_threads, enabled=not arguments.no_record):
        modes.get(mode, main_table)(arguments)
