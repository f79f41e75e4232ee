"""Two ways to run a `parallel_kernel` in tests whatever the machine's thread count: whole on the calling
thread, or its tasks split into a chosen number of parts (on the worker threads when they are free)."""
from tinygrad_cnn.runtime.launch import run_in_parts, split


def run_whole(kernel, *args):
    kernel.kernel(*args, 0, kernel.tasks(*args))


def run_split(kernel, *args, parts=3):
    count = kernel.tasks(*args)
    run_in_parts(kernel.kernel, args, split(count, max(1, min(parts, count))))
