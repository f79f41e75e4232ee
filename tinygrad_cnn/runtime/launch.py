"""The one launch path of every parallel kernel: a serial Numba kernel computes a range of tasks, and the launch
splits the tasks over the package's own worker threads.

Why not Numba's `parallel=True`: its parallel loop is compiled as a second function with a scheduler around
it, one to two seconds per kernel on a cold start, and a serial twin was still needed for one thread. A
`nogil` kernel run on plain Python threads is compiled once and runs the same code on any thread count.
"""
import functools
import importlib.machinery
import os
import sys
import threading

import numba
import numpy as np
from numba.core import event
from numba.core.compiler_lock import global_compiler_lock

from .spin import SPIN_CYCLES, finish_and_wait, post_and_wait, spin_until
from .threads import get_num_threads

START_CYCLES = SPIN_CYCLES // 8  # how long a launch waits for its workers to take their parts, at most
LINGER_CYCLES = 20000  # and then a few microseconds more: the workers' calls of their kernels hold the GIL that long
SMALL_PASS = 1 << 18  # elements; below it waking a worker costs more than splitting the pass gains


class _Workers:
    """Threads that each run one part of a launch, started at the first launch that splits (import starts none).

    One launch at a time has the workers; a launch from another Python thread meanwhile runs whole on its own
    thread instead of waiting. Launches are numbered: the launching thread hands worker i a part and writes the
    number into `posted[i]`, the worker writes it into `started[i]` when it takes the part and into
    `finished[i]` when it is done. Between launches a worker first busy-waits outside the GIL for the next
    number (spin.spin_until, about half a millisecond), then sleeps on its semaphore; the launching thread waits
    for the parts the same way. `posted` and `finished` are written outside the GIL, and the launching thread
    waits for `started` before it enters its own part (spin.post_and_wait): each thread then takes the GIL
    while the other does not hold it. Handing over with the GIL held made the other thread block on the GIL,
    and waking it again cost 15-20 us twice per launch on a 2-core VM (a launch of two 50 us parts: 100 us,
    now 66 us). The semaphores are released and acquired once per part either way, so a wait that ends early
    only skips a sleep."""

    def __init__(self):
        self.lock = threading.Lock()
        self.wake = []  # one semaphore per worker
        self.done = threading.Semaphore(0)
        self.jobs = []  # (kernel, args, start, stop, launch number) per worker
        self.errors = []
        self.launches = 0
        self.posted = np.zeros(0, np.int64)
        self.started = np.zeros(0, np.int64)
        self.finished = np.zeros(0, np.int64)
        self.spin_cycles = 0

    def _work(self, index):
        spin_until(self.posted, index, index + 1, 1, self.spin_cycles)
        while True:
            self.wake[index].acquire()
            kernel, args, start, stop, seen = self.jobs[index]
            self.jobs[index] = None
            self.started[index] = seen
            try:
                kernel(*args, start, stop)
            except BaseException as error:  # handed to the launching thread, which raises it
                self.errors.append(error)
            kernel = args = None  # a finished launch keeps no array alive
            self.done.release()
            finish_and_wait(self.finished, self.posted, index, seen, self.spin_cycles)

    def _start(self, count):
        if len(self.wake) < count:
            # spin only while every thread can have a core of its own
            self.spin_cycles = SPIN_CYCLES if count < _cores() else 0
            self.posted = np.concatenate([self.posted, np.zeros(count - len(self.wake), np.int64)])
            self.started = np.concatenate([self.started, np.zeros(count - len(self.wake), np.int64)])
            self.finished = np.concatenate([self.finished, np.zeros(count - len(self.wake), np.int64)])
        while len(self.wake) < count:
            self.wake.append(threading.Semaphore(0))
            self.jobs.append(None)
            threading.Thread(target=self._work, args=(len(self.wake) - 1,), daemon=True,
                             name=f"tinygrad_cnn-worker-{len(self.wake)}").start()

    def run(self, kernel, args, bounds) -> bool:
        """kernel(*args, start, stop) for every (start, stop) in `bounds`, the first on the calling thread and
        the others on workers; False (nothing run) when another launch has the workers."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            self._start(len(bounds) - 1)
            self.launches += 1
            for index, (start, stop) in enumerate(bounds[1:]):
                self.jobs[index] = (kernel, args, start, stop, self.launches)
                self.wake[index].release()
            post_and_wait(self.posted, self.started, len(bounds) - 1, self.launches,
                          START_CYCLES if self.spin_cycles else 0, LINGER_CYCLES if self.spin_cycles else 0)
            try:
                kernel(*args, *bounds[0])
            finally:
                spin_until(self.finished, 0, len(bounds) - 1, self.launches, self.spin_cycles)
                for _ in bounds[1:]:
                    self.done.acquire()
            if self.errors:
                raise self.errors[0]
        finally:
            self.errors = []
            self.lock.release()
        return True


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_workers = None


def _forget_workers():
    """In a forked child the workers' threads do not exist: the next launch there starts new ones."""
    global _workers
    _workers = None


def _get_workers() -> _Workers:
    global _workers
    if _workers is None:
        if not hasattr(_get_workers, "registered"):
            os.register_at_fork(after_in_child=_forget_workers)
            _get_workers.registered = True
        _workers = _Workers()
    return _workers


def split(count: int, parts: int) -> list:
    """[0, count) as `parts` contiguous ranges of nearly equal size, in order."""
    return [(count * part // parts, count * (part + 1) // parts) for part in range(parts)]


def run_in_parts(function, args, bounds) -> None:
    """function(*args, start, stop) for every (start, stop) in `bounds`, at once on the worker threads (the
    calling thread runs the first), or one after another on the calling thread when another launch has them.
    `function` must release the GIL to gain anything (a `nogil` kernel, NumPy's matmul)."""
    if len(bounds) > 1 and _get_workers().run(function, args, bounds):
        return
    for start, stop in bounds:
        function(*args, start, stop)


COMPILE_NOTICE = "tinygrad_cnn: compiling kernels for this CPU, first run only (cached afterwards)"


class _CompileNotice(event.Listener):
    """Prints COMPILE_NOTICE to stderr at the first kernel compile of the process: a cold start spends seconds
    there, with nothing else to show. Numba fires no compile event when it loads a build from its cache, so
    a warm start says nothing."""

    shown = False

    def on_start(self, event):
        if not _CompileNotice.shown:
            _CompileNotice.shown = True
            print(COMPILE_NOTICE, file=sys.stderr, flush=True)

    def on_end(self, event):
        pass


_compile_notice = _CompileNotice()


def _scipy_blas_installed() -> bool:
    """Whether scipy.linalg.cython_blas is installed, found on disk without importing scipy.linalg."""
    scipy = sys.modules.get("scipy")  # Numba's own import imports the top-level package when it is there
    paths = [os.path.join(path, "linalg") for path in getattr(scipy, "__path__", [])]
    return bool(paths) and importlib.machinery.PathFinder.find_spec("cython_blas", paths) is not None


def _import_arraymath_without_scipy() -> None:
    """Runs before the first kernel of the process. Numba's CPU target imports its implementations at the first
    compile or cache load, and one of them, numba.np.arraymath, asks at import whether jitted np.dot has a BLAS
    by importing scipy.linalg: 0.4 s of a 1.5 s warm start on a 2-core AVX2 machine, numpy.f2py included, for
    kernels that use no BLAS inside Numba. When nothing has imported arraymath yet, it is imported here with
    the question answered from disk (`_scipy_blas_installed`, then Numba's own LAPACK integer-width check), and
    Numba's check is put back at once: a jitted np.dot still imports scipy.linalg when it compiles."""
    with global_compiler_lock:  # Numba's own compiles import the implementations under it
        if "numba.np.arraymath" in sys.modules:
            return
        from numba.np import linalg
        check = linalg.ensure_blas

        def ensure_blas():
            if not _scipy_blas_installed():
                raise ImportError("scipy.linalg.cython_blas is not installed")
            linalg._check_lapack_int_width()

        linalg.ensure_blas = ensure_blas
        try:
            from numba.np import arraymath
        finally:
            linalg.ensure_blas = check
        arraymath.ensure_blas = check


def parallel_kernel(function=None, *, tasks, elements=None, **options):
    """`@njit(nogil=True, cache=True, no_cfunc_wrapper=True, **options)` behind the one launch path (no cache for
    code without a file, such as `python -c`); call the kernel without its last two parameters. No C callback
    wrapper: nothing passes a kernel as a first-class function, and building one costs every compile (with the
    kernels' helpers, 0.3 s of a cold cnn start on a 2-core AVX2 machine).

    The kernel's last two parameters are `start, stop`: it computes tasks start … stop−1 of the
    `tasks(*args)` its arguments make, each task writing only output of its own. A launch splits the tasks
    into one contiguous range per thread (`set_num_threads`), so a result does not depend on the thread
    count. It runs all of them on the calling thread when there is one thread or one task, when the kernel
    declares `elements` (a function of its arguments giving the size of its pass) and the pass is below
    SMALL_PASS elements, or when another Python thread's launch has the workers.
    """
    if function is None:  # used as @parallel_kernel(tasks=..., fastmath=..., elements=...)
        return functools.partial(parallel_kernel, tasks=tasks, elements=elements, **options)
    cache = not function.__code__.co_filename.startswith("<")  # Numba can cache only what lives in a file
    kernel = numba.njit(nogil=True, cache=cache, no_cfunc_wrapper=True, **options)(function)
    first_call = [True]

    @functools.wraps(function)
    def launch(*args):
        if first_call[0] and not _CompileNotice.shown:  # compile (or load) on an empty range, announcing a compile
            first_call[0] = False
            _import_arraymath_without_scipy()
            with event.install_listener("numba:compile", _compile_notice):
                kernel(*args, 0, 0)
        count, threads = tasks(*args), get_num_threads()
        if threads > 1 and count > 1 and (elements is None or elements(*args) >= SMALL_PASS):
            run_in_parts(kernel, args, split(count, min(threads, count)))
        else:
            kernel(*args, 0, count)
    launch.kernel, launch.tasks = kernel, tasks
    return launch
