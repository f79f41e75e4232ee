"""Thread counts (the kernels' and BLAS's, set together), the launch path (when it splits, how, and what reaches
the caller), and Numba's threading layer left alone. Import effects are checked in fresh processes."""
import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from tinygrad_cnn.runtime import get_blas_num_threads, get_num_threads, launch, parallel_kernel, set_num_threads

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def run_python(script, **env):
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **env))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def blas_counts():
    return [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]


@pytest.fixture
def restore_threads():
    """Puts the kernels' and BLAS's thread counts back after the test."""
    kernels, blas = get_num_threads(), blas_counts()
    yield
    set_num_threads(kernels)
    threadpool_limits(max(blas), user_api="blas")


def test_set_num_threads_sets_kernels_and_blas():
    numba_before, blas_before = get_num_threads(), blas_counts()
    assert blas_before, "threadpoolctl finds NumPy's BLAS"
    try:
        set_num_threads(1)
        assert get_num_threads() == 1 and blas_counts() == [1] * len(blas_before)
        assert get_blas_num_threads() == 1
    finally:
        threadpool_limits(max(blas_before), user_api="blas")
        set_num_threads(numba_before)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_set_num_threads_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected a positive integer"):
        set_num_threads(bad)


IMPORT_EFFECTS = """
import numba, numpy as np
from threadpoolctl import threadpool_info
def blas():
    return [(library["filepath"], library["num_threads"]) for library in threadpool_info() if library["user_api"] == "blas"]
before = blas()
import tinygrad_cnn as tc
from tinygrad_cnn.nn import functional as F
after_import = blas()
x = tc.Tensor.randn(4, 3, 12, 12, requires_grad=True)
loss = F.linear(F.max_pool2d(F.conv2d(x, tc.Tensor.randn(8, 3, 3, 3)), 2).flatten(1), tc.Tensor.randn(5, 200)).sum()
loss.backward()                                            # kernels and matrix products have run
assert after_import == before and set(before) <= set(blas()), (before, after_import, blas())
from numba.np.ufunc import parallel
print(threads_at_import, numba.config.THREADING_LAYER, parallel._is_initialized)
"""
IMPORT_EFFECTS = IMPORT_EFFECTS.replace("import tinygrad_cnn as tc\n", "import threading\nstarted = threading.active_count()\n"
                                        "import tinygrad_cnn as tc\nthreads_at_import = threading.active_count() - started\n")


def test_importing_starts_no_thread_keeps_blas_counts_and_never_starts_numbas_threading_layer():
    """The kernels run on the package's own workers: Numba's layer is never started, and a layer the user chose
    stays chosen for their own parallel code."""
    assert run_python(IMPORT_EFFECTS, NUMBA_THREADING_LAYER="omp") == "0 omp False"
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_THREADING_LAYER"}
    result = subprocess.run([sys.executable, "-c", IMPORT_EFFECTS], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "0 default False"


BLAS_AFTER_KERNELS = """
import tinygrad_cnn as tc
import tinygrad_cnn.nn.functional as F
from threadpoolctl import threadpool_info
F.conv2d(tc.Tensor.randn(1, 1, 5, 5), tc.Tensor.randn(1, 1, 3, 3))  # Numba may load another BLAS with its kernels
for n in (1, 2, 1):
    tc.set_num_threads(n)
    counts = [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]
    assert counts and set(counts) == {n}, (n, counts)
print("ok")
"""


def test_set_num_threads_reaches_every_blas_loaded_after_the_kernels():
    assert run_python(BLAS_AFTER_KERNELS) == "ok"


class FakeBlas:
    """Stands in for a BLAS library's controller: records every count set."""

    def __init__(self, count):
        self.num_threads, self.history, self.filepath = count, [], "fake"

    def set_num_threads(self, count):
        self.num_threads = count
        self.history.append(count)


def test_one_blas_thread_is_shared_by_python_threads_and_the_last_to_leave_restores(monkeypatch):
    """BLAS's count is process-wide: it is 1 while any Python thread is inside, and only the last to leave restores
    it, whichever thread that is (BLAS's own controller is replaced by a recorder: OpenBLAS may ignore a count set
    from a thread other than the main one, which would hide what this checks)."""
    from tinygrad_cnn.runtime import one_blas_thread, threads
    fake = FakeBlas(2)
    monkeypatch.setattr(threads._single, "libraries", [fake])
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with one_blas_thread():
            first_in.set()
            second_in.wait(10)
            seen.append(fake.num_threads)
        first_out.set()

    def second():
        first_in.wait(10)
        with one_blas_thread():
            second_in.set()
            first_out.wait(10)
            seen.append(fake.num_threads)   # the first has left: still one thread
    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert seen == [1, 1] and fake.num_threads == 2 and fake.history == [1, 2]


def test_set_num_threads_inside_one_blas_thread_takes_effect_when_it_ends(monkeypatch):
    from tinygrad_cnn.runtime import one_blas_thread, threads
    fake = FakeBlas(2)
    monkeypatch.setattr(threads._single, "libraries", [fake])
    monkeypatch.setattr(threads, "_blas_libraries", lambda: [fake])
    numba_before = get_num_threads()
    try:
        with one_blas_thread():
            set_num_threads(1)
            assert fake.num_threads == 1
        assert fake.num_threads == 1
        with one_blas_thread():
            set_num_threads(2)
            assert fake.num_threads == 1
        assert fake.num_threads == 2
    finally:
        set_num_threads(numba_before)


def test_one_blas_thread_switches_numpys_blas_and_restores_it():
    from tinygrad_cnn.runtime import one_blas_thread
    numba_before, before = get_num_threads(), blas_counts()
    try:
        set_num_threads(2)
        with one_blas_thread():
            assert get_blas_num_threads() == 1
            np.ones((64, 64)) @ np.ones((64, 64))
        assert get_blas_num_threads() == 2
    finally:
        threadpool_limits(max(before), user_api="blas")
        set_num_threads(numba_before)


def test_mnist_models_train_bit_identically_on_one_and_on_all_threads():
    """Their convs take the direct kernels (each task owns whole outputs) and their matrix products run on one
    BLAS thread, so the thread count changes nothing; three Adam steps of both models, compared bit for bit."""
    import tinygrad_cnn as tc
    from tinygrad_cnn.nn import functional as F
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "mnist"))
    from models import MODELS

    def train(threads):
        set_num_threads(threads)
        states = []
        for name in ("cnn", "lenet"):
            tc.manual_seed(0)
            model = MODELS[name]()
            optimizer = tc.optim.Adam(model.parameters(), lr=1e-3)
            rng = np.random.default_rng(0)
            for _ in range(3):
                loss = F.cross_entropy(model(tc.Tensor(rng.random((32, 1, 28, 28), dtype=np.float32))),
                                       rng.integers(0, 10, 32))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            states.append(model.state_dict())
        return states

    numba_before, blas_before = get_num_threads(), blas_counts()
    try:
        one, every = train(1), train(max(2, numba.config.NUMBA_NUM_THREADS))
    finally:
        threadpool_limits(max(blas_before), user_api="blas")
        set_num_threads(numba_before)
    for state_one, state_every in zip(one, every):
        for key in state_one:
            np.testing.assert_array_equal(state_one[key], state_every[key], err_msg=key)


@parallel_kernel(tasks=lambda a, out: a.size)
def doubled(a, out, start, stop):
    for i in range(start, stop):
        out[i] = 2 * a[i]


@parallel_kernel(tasks=lambda a, out: a.size, elements=lambda a, out: a.size)
def doubled_sized(a, out, start, stop):
    for i in range(start, stop):
        out[i] = 2 * a[i]


def test_one_thread_one_task_or_a_small_declared_pass_runs_on_the_calling_thread(monkeypatch, restore_threads):
    """The launch splits the tasks over the threads unless there is one thread or one task, or the kernel's
    declared pass is below SMALL_PASS elements; split or not, the result is the same."""
    from tinygrad_cnn.runtime import SMALL_PASS
    splits = []
    original = launch.run_in_parts
    monkeypatch.setattr(launch, "run_in_parts", lambda kernel, args, bounds: (splits.append(bounds),
                                                                             original(kernel, args, bounds)))
    small, large = np.arange(1000.0), np.arange(float(SMALL_PASS))
    results = []
    for threads, kernel, a in ((1, doubled, small), (2, doubled, small[:1]), (2, doubled_sized, small),
                               (2, doubled, small), (3, doubled_sized, large)):
        set_num_threads(threads)
        out = np.zeros_like(a)
        kernel(a, out)
        results.append(out)
    assert splits == [launch.split(1000, 2), launch.split(SMALL_PASS, 3)]
    for out, a in zip(results, (small, small[:1], small, small, large)):
        np.testing.assert_array_equal(out, 2 * a)


@settings(deadline=None)  # pure Python, but a collector pause after the suite's compiles can pass 200 ms
@given(st.integers(0, 10_000), st.integers(1, 64))
def test_split_covers_the_tasks_once_in_order_in_nearly_equal_parts(count, parts):
    bounds = launch.split(count, parts)
    assert len(bounds) == parts and bounds[0][0] == 0 and bounds[-1][1] == count
    assert all(stop == start for (_, stop), (start, _) in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1


def test_a_kernel_error_on_a_worker_reaches_the_caller_and_the_workers_keep_working():
    @parallel_kernel(tasks=lambda a, out: a.size)
    def checked(a, out, start, stop):
        for i in range(start, stop):
            if a[i] < 0:
                raise ValueError("checked: a negative value")
            out[i] = a[i]

    a = np.arange(12.0)
    a[-1] = -1  # in the last part, which runs on a worker
    with pytest.raises(ValueError, match="checked: a negative value"):
        launch.run_in_parts(checked.kernel, (a, np.empty_like(a)), launch.split(a.size, 3))
    out = np.empty_like(a)
    launch.run_in_parts(checked.kernel, (np.abs(a), out), launch.split(a.size, 3))
    np.testing.assert_array_equal(out, np.abs(a))


def test_a_launch_while_another_thread_has_the_workers_runs_on_its_own_thread():
    workers = launch._get_workers()
    ran = []
    with workers.lock:  # as if another Python thread were launching
        launch.run_in_parts(lambda start, stop: ran.append((threading.get_ident(), start, stop)), (),
                            launch.split(4, 2))
    assert ran == [(threading.get_ident(), 0, 2), (threading.get_ident(), 2, 4)]


NOTICE_SCRIPT = """
import numpy as np
from tinygrad_cnn.runtime import parallel_kernel

@parallel_kernel(tasks=lambda x, out: x.size)
def doubled(x, out, start, stop):
    for i in range(start, stop):
        out[i] = 2 * x[i]

x = np.arange(4.0)
for _ in range(3):
    out = np.empty_like(x)
    doubled(x, out)
print(out.sum())
"""


def test_the_first_compile_of_a_process_is_announced_once_and_a_warm_start_is_silent(tmp_path):
    """The kernel lives in a file of its own so that Numba caches it, in a cache directory of this test's own."""
    (tmp_path / "notice_kernel.py").write_text(NOTICE_SCRIPT)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=ROOT)
    runs = [subprocess.run([sys.executable, "notice_kernel.py"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300, env=env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-3000:] + runs[1].stderr[-3000:]
    assert [r.stdout.strip() for r in runs] == ["12.0", "12.0"]
    assert runs[0].stderr.count("compiling kernels for this CPU, first run only") == 1
    assert "compiling kernels" not in runs[1].stderr


BLAS_SCRIPT = """
import sys
import numba
import numpy as np
from tinygrad_cnn.runtime import parallel_kernel

@parallel_kernel(tasks=lambda x, out: x.size)
def doubled(x, out, start, stop):
    for i in range(start, stop):
        out[i] = 2 * x[i]

doubled(np.arange(4.0), np.empty(4))
print("scipy.linalg" in sys.modules)
from numba.np import arraymath, linalg
print(arraymath.ensure_blas is linalg.ensure_blas)
try:
    import scipy.linalg.cython_blas
    blas = True
except ImportError:
    blas = False
print(arraymath._HAVE_BLAS == blas)
if blas:
    print(numba.njit(lambda a, b: np.dot(a, b))(np.ones(3), np.arange(3.0)))
"""


def test_the_first_kernel_leaves_scipy_linalg_unimported_and_numba_s_blas_check_as_it_would_be(tmp_path):
    """Numba's arraymath asks scipy.linalg at import whether jitted np.dot has a BLAS; the first launch answers from
    disk (launch._import_arraymath_without_scipy), with the same answer, and puts Numba's check back."""
    (tmp_path / "blas_kernel.py").write_text(BLAS_SCRIPT)
    run = subprocess.run([sys.executable, "blas_kernel.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.split()
    assert lines[:3] == ["False", "True", "True"]
    assert lines[3:] in ([], ["3.0"])


def test_spin_until_sees_flags_another_thread_writes_and_gives_up_after_its_budget():
    """The workers' busy wait: True at once when every flag has reached the value, True when another thread
    writes it while the wait runs (the load is not hoisted out of the loop), False after its budget when never."""
    from tinygrad_cnn.runtime.spin import spin_until
    flags = np.array([3, 5, 4], np.int64)
    assert spin_until(flags, 0, 3, 3, 0) and spin_until(flags, 1, 2, 5, 0)
    assert not spin_until(flags, 0, 3, 4, 1000)
    writer = threading.Timer(0.02, lambda: flags.__setitem__(0, 4))
    writer.start()
    assert spin_until(flags, 0, 3, 4, 1 << 34)  # seconds of budget: True only if the write is seen
    writer.join()


def test_post_and_wait_posts_then_waits_for_every_start_and_finish_and_wait_publishes_then_waits_for_a_post():
    """The launch's hand-over, written outside the GIL: post_and_wait stores the launch number into each used
    worker's posted flag (not the others'), returns once each has started (another thread writes `started` while
    it waits) or after its budget; finish_and_wait stores the finished number, then waits for the next post."""
    from tinygrad_cnn.runtime.spin import finish_and_wait, post_and_wait
    posted, started = np.array([1, 1, 1], np.int64), np.array([1, 1, 1], np.int64)
    post_and_wait(posted, started, 2, 2, 1000, 1000)  # nobody starts: returns after its budget
    assert posted.tolist() == [2, 2, 1]
    writer = threading.Timer(0.02, lambda: started.__setitem__(slice(0, 2), 2))
    writer.start()
    post_and_wait(posted, started, 2, 2, 1 << 34, 0)  # seconds of budget: returns only once the starts are seen
    writer.join()
    assert started.tolist() == [2, 2, 1]
    finished = np.zeros(3, np.int64)
    assert not finish_and_wait(finished, posted, 1, 2, 1000)  # no launch 3 posted
    assert finished.tolist() == [0, 2, 0]
    assert finish_and_wait(finished, np.array([3, 3, 3], np.int64), 1, 2, 0)


def test_workers_spin_only_while_every_thread_has_a_core():
    if launch._cores() < 2:
        pytest.skip("needs two cores")
    workers = launch._Workers()
    workers._start(launch._cores() - 1)
    assert workers.spin_cycles > 0
    oversubscribed = launch._Workers()
    oversubscribed._start(launch._cores())
    assert oversubscribed.spin_cycles == 0
