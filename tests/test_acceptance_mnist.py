"""pytorch/examples mnist/main.py in reduced form: its Net, its train() and test() bodies and its main()'s
Adadelta + StepLR + DataLoader set-up, over a TensorDataset of our MNIST arrays (in place of torchvision's two
dataset lines), for a few batches. The numbers it prints are checked against values computed here from the
model's outputs and gradients, independently of the library's loss, argmax and optimizer code. The calls are
main.py's own (torch.flatten, data.to(device), argmax(dim=1, keepdim=True), pred.eq(target.view_as(pred)),
len(loader.dataset), F.nll_loss(reduction='sum'), torch.accelerator / torch.device)."""
import os

import numpy as np
import pytest

import tinygrad_cnn as torch
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
import tinygrad_cnn.optim as optim
from tinygrad_cnn.data import load_mnist
from tinygrad_cnn.optim.lr_scheduler import StepLR
from tinygrad_cnn.utils.data import DataLoader, TensorDataset

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "mnist", "data")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def mnist_datasets(train_count, test_count):
    """The two TensorDatasets standing in for torchvision's: ToTensor (/255, a channel axis) then Normalize."""
    data = load_mnist(DATA)

    def dataset(images, labels):
        x = ((images.astype(np.float32) / 255 - 0.1307) / 0.3081)[:, None]
        return TensorDataset(torch.Tensor(x), labels.astype(np.int64))  # arrays keep their dtype
    return (dataset(data.train_images[:train_count], data.train_labels[:train_count]),
            dataset(data.test_images[:test_count], data.test_labels[:test_count]))


def adadelta_reference(p, g, square_avg, acc_delta, lr, rho=0.9, eps=1e-6):
    square_avg = rho * square_avg + (1 - rho) * g * g
    delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
    return p - lr * delta, square_avg, rho * acc_delta + (1 - rho) * delta * delta


def train(model, device, train_loader, optimizer, epoch, log, check_fc2=None):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        if check_fc2 is not None:
            check_fc2.before(model.fc2.bias)
        optimizer.step()
        if check_fc2 is not None:
            check_fc2.after(model.fc2.bias, optimizer.param_groups[0]["lr"])
        # the mean NLL, from the log-probabilities and the labels alone
        expected = -output.numpy()[np.arange(len(target)), target.numpy()].mean()
        assert loss.item() == pytest.approx(expected, rel=1e-5)
        log.append((epoch, batch_idx * len(data), len(train_loader.dataset), loss.item()))


def run_test(model, device, test_loader):  # main.py's test()
    model.eval()
    test_loss = 0
    correct = 0
    outputs, targets = [], []
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
            outputs.append(output.numpy())
            targets.append(target.numpy())
    test_loss /= len(test_loader.dataset)
    log_probs, labels = np.concatenate(outputs), np.concatenate(targets)
    assert test_loss == pytest.approx(-log_probs[np.arange(len(labels)), labels].mean(), rel=1e-5)
    assert correct == int((log_probs.argmax(axis=1) == labels).sum())
    return test_loss, correct


class Fc2Check:
    """Follows Adadelta's documented update on fc2.bias across the steps."""

    def __init__(self):
        self.square_avg = self.acc_delta = 0.0

    def before(self, bias):
        self.p, self.g = bias.numpy().copy(), bias.grad.numpy().copy()

    def after(self, bias, lr):
        expected, self.square_avg, self.acc_delta = adadelta_reference(self.p, self.g, self.square_avg,
                                                                       self.acc_delta, lr)
        np.testing.assert_allclose(bias.numpy(), expected, rtol=1e-4, atol=1e-7)


def test_pytorch_examples_mnist_main_in_reduced_form():
    use_accel = torch.accelerator.is_available()
    torch.manual_seed(1)
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    dataset1, dataset2 = mnist_datasets(train_count=640, test_count=500)
    train_loader = torch.utils.data.DataLoader(dataset1, batch_size=64)
    test_loader = torch.utils.data.DataLoader(dataset2, batch_size=250)
    assert len(train_loader.dataset) == 640 and len(train_loader) == 10 and len(test_loader) == 2
    model = Net().to(device)
    # conv1 32·(1·9 + 1), conv2 64·(32·9 + 1), fc1 128·(9216 + 1), fc2 10·(128 + 1)
    assert sum(p.numel() for p in model.parameters()) == 320 + 18496 + 1179776 + 1290
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    log, results, fc2 = [], [], Fc2Check()
    for epoch in range(1, 3):
        train(model, device, train_loader, optimizer, epoch, log, fc2)
        results.append(run_test(model, device, test_loader))
        scheduler.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.7 ** epoch)
    losses = [entry[3] for entry in log]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3])  # it learns
    (loss1, correct1), (loss2, correct2) = results
    assert loss2 < loss1 and correct2 >= correct1 and correct2 > 0.7 * 500
