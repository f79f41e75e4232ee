"""The one launch path of every parallel kernel: it picks the serial or the parallel build and takes the
launch lock when the active threading layer needs one."""
import functools
import sys
import threading
import types

import numba
from numba.core import event

from .layer import THREAD_SAFE_LAYERS, active_layer

SMALL_PASS = 1 << 19  # elements; below it a parallel launch costs more than splitting the pass gains

launch_lock = threading.Lock()
_layer_is_thread_safe = None  # known after the first parallel launch


def _needs_lock() -> bool:
    """True unless the active layer is known to be thread-safe (before the first launch it is not known)."""
    global _layer_is_thread_safe
    if _layer_is_thread_safe is None:
        layer = active_layer()
        if layer is None:
            return True
        _layer_is_thread_safe = layer in THREAD_SAFE_LAYERS
    return not _layer_is_thread_safe


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


def _run(build, args, unseen):
    """build(*args). A build's first call in the process may compile it: that call listens for Numba's compile
    event (only while it runs, so that other Numba code of the process is not announced)."""
    if unseen and not _CompileNotice.shown and build in unseen:
        unseen.remove(build)
        with event.install_listener("numba:compile", _compile_notice):
            return build(*args)
    return build(*args)


def _renamed(function, suffix: str):
    """A copy of `function` under another name, so that its compiled builds get cache entries of their own."""
    twin = types.FunctionType(function.__code__, function.__globals__, function.__name__ + suffix,
                              function.__defaults__, function.__closure__)
    twin.__qualname__ = function.__qualname__ + suffix
    return twin


def parallel_kernel(function=None, *, elements=None, **options):
    """`@njit(parallel=True, cache=True, **options)` behind one launch path; call the kernel as a plain function.

    It runs the serial build (the same code without `parallel`, where `prange` is `range`) when Numba has one
    thread, or when the kernel declares `elements` (a function of its arguments giving the size of its pass)
    and the pass is below SMALL_PASS elements: a parallel launch only pays when there is work to split. The
    parallel build runs under `launch_lock` unless the threading layer is thread-safe.
    """
    if function is None:  # used as @parallel_kernel(fastmath=..., elements=...)
        return functools.partial(parallel_kernel, elements=elements, **options)
    parallel = numba.njit(parallel=True, cache=True, **options)(function)
    serial = numba.njit(cache=True, **options)(_renamed(function, "_serial"))
    unseen = [serial, parallel]  # builds not yet called in this process

    @functools.wraps(function)
    def launch(*args):
        if numba.get_num_threads() == 1 or (elements is not None and elements(*args) < SMALL_PASS):
            return _run(serial, args, unseen)
        if not _needs_lock():
            return _run(parallel, args, unseen)
        with launch_lock:
            return _run(parallel, args, unseen)
    launch.parallel, launch.serial = parallel, serial
    return launch
