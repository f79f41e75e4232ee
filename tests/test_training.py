"""End to end: small models learn synthetic separable problems, and a checkpointed run resumes bit for bit."""
import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.rng import generator, get_rng_state, set_rng_state


def quadrant_data(n, seed):
    """2-D points labelled by quadrant (a problem no linear model solves), kept 0.1 away from the axes."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0.1, 1.0, (n, 2)) * rng.choice([-1.0, 1.0], (n, 2))
    labels = (points[:, 0] < 0).astype(np.int64) * 2 + (points[:, 1] < 0)
    return points.astype(np.float32), labels


def bar_images(n, seed, size=10):
    """1×size×size images holding a noisy horizontal (class 0), vertical (1) or diagonal (2) bar at a random
    offset, so only a model that looks at local shape can tell them apart."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    for image, label, offset in zip(images, labels, rng.integers(0, size, n)):
        rows = np.arange(size)
        if label == 0:
            image[0, offset, :] += 1
        elif label == 1:
            image[0, :, offset] += 1
        else:
            image[0, rows, (rows + offset) % size] += 1
    return images, labels


def train(model, optimizer, inputs, labels, steps, batch_size=32, scheduler=None, start=0):
    model.train()
    for _ in range(start, steps):
        batch = generator().integers(0, len(inputs), batch_size)
        loss = F.cross_entropy(model(tc.tensor(inputs[batch])), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return loss.item()


def accuracy(model, inputs, labels):
    model.eval()
    with tc.no_grad():
        return float((model(tc.tensor(inputs)).numpy().argmax(axis=1) == labels).mean())


def test_mlp_learns_the_quadrants():
    tc.manual_seed(0)
    x_train, y_train = quadrant_data(1000, seed=1)
    x_test, y_test = quadrant_data(500, seed=2)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.BatchNorm1d(32), nn.Linear(32, 32), nn.ReLU(),
                          nn.Dropout(0.1), nn.Linear(32, 4))
    assert accuracy(model, x_test, y_test) < 0.6
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    train(model, optimizer, x_train, y_train, steps=300)
    assert accuracy(model, x_test, y_test) > 0.95


def test_cnn_learns_bar_orientation():
    tc.manual_seed(0)
    x_train, y_train = bar_images(600, seed=1)
    x_test, y_test = bar_images(300, seed=2)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))
    assert accuracy(model, x_test, y_test) < 0.6
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=200)
    train(model, optimizer, x_train, y_train, steps=200, scheduler=scheduler)
    assert accuracy(model, x_test, y_test) > 0.95


@pytest.mark.parametrize("make_optimizer", [lambda ps: optim.AdamW(ps, lr=0.01),
                                            lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9)])
def test_a_run_resumed_from_a_checkpoint_ends_bit_identical(tmp_path, make_optimizer):
    """Model (with BatchNorm buffers and Dropout), optimizer, scheduler and random state saved at step 20 of 40;
    a fresh process-like restart from the file must end with exactly the parameters of the uninterrupted run."""
    x, y = quadrant_data(200, seed=3)

    def setup():
        tc.manual_seed(11)
        model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 4))
        optimizer = make_optimizer(model.parameters())
        return model, optimizer, optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=40)

    model, optimizer, scheduler = setup()
    train(model, optimizer, x, y, steps=40, scheduler=scheduler)
    uninterrupted = model.state_dict()

    model, optimizer, scheduler = setup()
    train(model, optimizer, x, y, steps=20, scheduler=scheduler)
    tc.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "rng": get_rng_state(), "step": 20}, tmp_path / "checkpoint")
    tc.manual_seed(999)  # disturb everything the checkpoint must restore

    model, optimizer, scheduler = setup()
    state = tc.load(tmp_path / "checkpoint")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    train(model, optimizer, x, y, steps=40, scheduler=scheduler, start=state["step"])
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, uninterrupted[name], err_msg=name)
