"""Train a CNN on MNIST with tinygrad_cnn.

    python examples/mnist/train.py                      # default: the `cnn` model, 4 epochs, Adam, label smoothing 0.1
    python examples/mnist/train.py --model lenet --epochs 5
    python examples/mnist/train.py --resume runs/mnist/checkpoint.npz

Writes OUT/checkpoint.npz after every epoch (atomically), beside it OUT/model.safetensors (the weights alone,
which PyTorch reads too) and, when matplotlib is installed, OUT/curves.png and OUT/mistakes.png at the end.
"""
import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.data import load_mnist
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.rng import generator
from tinygrad_cnn.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import MODELS  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN, STD = 0.1307, 0.3081  # of the MNIST training pixels, scaled to [0, 1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="cnn")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 3e-3 adam, 0.05 sgd)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--shift", type=int, default=1, help="random shifts of up to N pixels while training (0: off)")
    p.add_argument("--label-smoothing", type=float, default=0.1,
                   help="cross_entropy's label_smoothing while training (0: plain one-hot targets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test images")
    p.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    p.add_argument("--download", action="store_true", help="fetch missing MNIST files from the public mirrors")
    p.add_argument("--out", default=os.path.join("runs", "mnist"))
    p.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint")
    p.add_argument("--threads", type=int, default=None, help="threads for the kernels and BLAS")
    return p.parse_args(argv)


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 N×28×28 → float32 N×1×28×28, standardised."""
    return ((images.astype(np.float32) / 255.0 - MEAN) / STD)[:, None]


def random_shift(images: np.ndarray, max_shift: int) -> np.ndarray:
    """Move each image by up to `max_shift` pixels in each direction (zeros come in at the edges)."""
    if max_shift == 0:
        return images
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dy, dx = generator().integers(0, 2 * max_shift + 1, size=(2, n))
    rows = (dy[:, None] + np.arange(h))[:, :, None]
    cols = (dx[:, None] + np.arange(w))[:, None, :]
    return padded[np.arange(n)[:, None, None], rows, cols]


class PlainProgress:
    """A stand-in for tqdm: prints a line at every tenth of the epoch."""

    def __init__(self, total, desc):
        self.total, self.desc, self.done, self.next_print = total, desc, 0, 0.1
        self.postfix = ""

    def set_postfix_str(self, text):
        self.postfix = text

    def update(self, n=1):
        self.done += n
        if self.done >= self.next_print * self.total or self.done == self.total:
            print(f"{self.desc} {self.done}/{self.total} {self.postfix}", flush=True)
            self.next_print = self.done / self.total + 0.1

    def close(self):
        pass


def progress(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return PlainProgress(total, desc)
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True)


def evaluate(model, images, labels, batch_size=1000):
    """Accuracy on (images, labels) and the predicted class of every image."""
    model.eval()
    predictions = []
    with tc.no_grad():
        for (x,) in DataLoader(TensorDataset(images), batch_size=batch_size):
            predictions.append(model(Tensor(normalize(x.numpy()))).argmax(axis=1).numpy())
    model.train()
    predictions = np.concatenate(predictions)
    return float((predictions == labels).mean()), predictions


def make_optimizer(args, model):
    lr = args.lr if args.lr is not None else (3e-3 if args.optimizer == "adam" else 0.05)
    if args.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=lr), lr
    return optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True), lr


def save_checkpoint(path, model, optimizer, scheduler, epoch, history, args):
    tc.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "epoch": epoch, "rng": tc.get_rng_state(), "history": history,
             "config": {"model": args.model, "seed": args.seed, "epochs": args.epochs}}, path)
    tc.save(model.state_dict(), os.path.join(os.path.dirname(path), "model.safetensors"))


def _last_checkpoint(path):
    return path if os.path.exists(path) else "none (no epoch finished yet)"


class Stop(Exception):
    """Ends the run early: the message goes to stderr and `code` becomes the exit status."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Run:
    """What one training run holds, built by set_up and completed by resume and make_scheduler."""

    args: argparse.Namespace
    model: nn.Module
    optimizer: optim.Optimizer
    peak_lr: float
    loader: DataLoader
    test_images: np.ndarray
    test_labels: np.ndarray
    checkpoint_path: str
    history: dict = field(default_factory=lambda: {"loss": [], "accuracy": []})
    first_epoch: int = 1
    scheduler: object = None


def train(args):
    """Set up, resume if asked, run the epochs, then report. A fault ends the run with its message and exit
    status: 2 for missing data or a bad checkpoint, 1 when training diverges, 130 on Ctrl-C."""
    try:
        run = set_up(args)
        state = resume(run, args.resume) if args.resume else None
        run.scheduler = make_scheduler(run, state)
        run_epochs(run)
    except Stop as stop:
        print(stop, file=sys.stderr)
        return stop.code
    accuracy, predictions = evaluate(run.model, run.test_images, run.test_labels)
    plot(args.out, run.history, run.test_images, run.test_labels, predictions)
    print(f"test accuracy: {accuracy * 100:.2f}%")
    return 0


def set_up(args) -> Run:
    """Threads and seed, the data, the model (its summary printed), the loader and the optimizer."""
    if args.threads:
        tc.set_num_threads(args.threads)
    tc.manual_seed(args.seed)
    try:
        data = load_mnist(args.data_dir, download=args.download)
    except (OSError, ValueError) as error:
        raise Stop(2, f"error: {error}") from None
    train_images, train_labels = data.train_images[:args.limit], data.train_labels[:args.limit].astype(np.int64)
    model = MODELS[args.model]()
    print(tc.summary(model, (1, 1, 28, 28)))
    loader = DataLoader(TensorDataset(train_images, train_labels), batch_size=args.batch_size, shuffle=True)
    optimizer, peak_lr = make_optimizer(args, model)
    os.makedirs(args.out, exist_ok=True)
    return Run(args, model, optimizer, peak_lr, loader, data.test_images[:args.test_limit],
               data.test_labels[:args.test_limit], os.path.join(args.out, "checkpoint.npz"))


def resume(run: Run, path: str) -> dict:
    """Model, optimizer, random state, history and epoch from the checkpoint at `path`; the checkpoint itself
    is returned for make_scheduler."""
    try:  # a file that is not a checkpoint, or one of another model, stops here with its path
        state = tc.load(path)
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        tc.set_rng_state(state["rng"])
        run.history = {k: list(v) for k, v in state["history"].items()}
        run.first_epoch = int(state["epoch"]) + 1
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise Stop(2, f"error: cannot resume from {path}: {type(error).__name__}: {error}") from None
    print(f"resumed from {path} after epoch {run.first_epoch - 1}")
    return state


def make_scheduler(run: Run, state):
    """One 1cycle schedule spans the run. Resuming the same run restores it; asking for more epochs than the
    checkpoint's run had starts a fresh cycle over the added epochs."""
    epochs = run.args.epochs
    same_run = state is not None and int(state["config"]["epochs"]) == epochs
    cycle_epochs = epochs if state is None or same_run else epochs - run.first_epoch + 1
    scheduler = optim.lr_scheduler.OneCycleLR(run.optimizer, max_lr=run.peak_lr,
                                              total_steps=max(cycle_epochs, 1) * len(run.loader))
    if same_run:
        scheduler.load_state_dict(state["scheduler"])
    elif state is not None and run.first_epoch <= epochs:
        print(f"a new learning-rate cycle over epochs {run.first_epoch}-{epochs}")
    return scheduler


def run_epochs(run: Run) -> None:
    """Train, evaluate and checkpoint each remaining epoch. Ctrl-C stops the run; a checkpoint is only ever
    replaced whole, so the last one stays good."""
    epoch = run.first_epoch
    try:
        for epoch in range(run.first_epoch, run.args.epochs + 1):
            started = time.perf_counter()
            train_loss = train_epoch(run, epoch, started)
            finish_epoch(run, epoch, train_loss, started)
    except KeyboardInterrupt:
        raise Stop(130, f"\ninterrupted during epoch {epoch}; nothing half-written. The last complete checkpoint "
                        f"is {_last_checkpoint(run.checkpoint_path)}") from None


def train_epoch(run: Run, epoch: int, started: float) -> float:
    """One pass over the training data, one optimizer and scheduler step per batch; the mean training loss.
    A loss that is not finite stops the run before it reaches the parameters."""
    bar = progress(len(run.loader), f"epoch {epoch}/{run.args.epochs}")
    seen, loss_sum, correct = 0, 0.0, 0
    for step, (images, labels) in enumerate(run.loader, 1):
        x, y = normalize(random_shift(images.numpy(), run.args.shift)), labels.numpy()
        logits = run.model(Tensor(x))
        loss = F.cross_entropy(logits, y, label_smoothing=run.args.label_smoothing)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise Stop(1, f"loss became {loss_value} at epoch {epoch}, step {step}; stopping. The last good "
                          f"checkpoint is {_last_checkpoint(run.checkpoint_path)}")
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        seen += len(y)
        loss_sum += loss_value * len(y)
        correct += int((logits.numpy().argmax(axis=1) == y).sum())
        bar.set_postfix_str(f"loss {loss_sum / seen:.4f} acc {correct / seen:.2%} "
                            f"{seen / (time.perf_counter() - started):.0f} img/s")
        bar.update(1)
    bar.close()
    return loss_sum / seen


def finish_epoch(run: Run, epoch: int, train_loss: float, started: float) -> None:
    """Test accuracy into the history, a line of results, then the checkpoint, unless the parameters are no
    longer finite (the epoch's last update blew up): then the run stops with the previous checkpoint kept."""
    accuracy, _ = evaluate(run.model, run.test_images, run.test_labels)
    run.history["loss"].append(train_loss)
    run.history["accuracy"].append(accuracy)
    print(f"epoch {epoch}: train loss {train_loss:.4f}, test accuracy {accuracy:.2%}, "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    if not all(np.isfinite(p.numpy()).all() for p in run.model.parameters()):
        raise Stop(1, f"the parameters became NaN or Inf in epoch {epoch}; stopping without saving. The last good "
                      f"checkpoint is {_last_checkpoint(run.checkpoint_path)}")
    save_checkpoint(run.checkpoint_path, run.model, run.optimizer, run.scheduler, epoch, run.history, run.args)


def plot(out, history, images, labels, predictions):
    """OUT/curves.png and OUT/mistakes.png, when matplotlib is installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no curves.png or mistakes.png (pip install matplotlib)")
        return
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, history["loss"], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    right.plot(epochs, np.array(history["accuracy"]) * 100, marker="o", color="tab:green")
    right.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    for ax in (left, right):
        ax.set_xticks(epochs)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=100)
    plt.close(fig)

    wrong = np.flatnonzero(predictions != labels)[:36]
    fig, axes = plt.subplots(6, 6, figsize=(7, 7.6))
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"true {labels[i]}, pred {predictions[i]}", fontsize=8)
    fig.suptitle(f"{len(np.flatnonzero(predictions != labels))} misclassified test digits (first 36)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "mistakes.png"), dpi=100)
    plt.close(fig)
    print(f"wrote {os.path.join(out, 'curves.png')} and {os.path.join(out, 'mistakes.png')}")


if __name__ == "__main__":
    tc.runtime.tune_allocator()  # a training process: keep each step's freed arrays for the next (see its docstring)
    sys.exit(train(parse_args()))
