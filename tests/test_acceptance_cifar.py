"""kuangliu/pytorch-cifar in reduced form: models built the way its ResNet, VGG, MobileNet and DenseNet are
(BasicBlocks with a Sequential shortcut, a cfg list of convs and max-pools, depthwise-separable blocks,
channel concatenation), trained and tested by the bodies of its main.py train() and test() (CrossEntropyLoss,
SGD with momentum and weight decay, CosineAnnealingLR, a DataLoader with num_workers=2) for a few batches of
CIFAR-shaped data. Each printed number is checked against one computed here from the outputs alone, and the
SGD step against its documented rule. The calls are the originals' (out.view(out.size(0), -1), torch.cat,
inputs.to(device), `_, predicted = outputs.max(1)`, predicted.eq(targets).sum().item(), targets.size(0))."""
import numpy as np
import pytest

import tinygrad_cnn as torch
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
import tinygrad_cnn.optim as optim


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.in_planes = 8
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = self._make_layer(8, 1, stride=1)
        self.layer2 = self._make_layer(16, 1, stride=2)
        self.linear = nn.Linear(16, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = F.avg_pool2d(out, 16)
        return self.linear(out.view(out.size(0), -1))


class SmallVGG(nn.Module):
    def __init__(self, cfg=(8, "M", 16, "M", 16, "M")):
        super().__init__()
        layers, in_channels = [], 3
        for x in cfg:
            if x == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                layers += [nn.Conv2d(in_channels, x, kernel_size=3, padding=1), nn.BatchNorm2d(x),
                           nn.ReLU(inplace=True)]
                in_channels = x
        layers += [nn.AvgPool2d(kernel_size=1, stride=1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        out = self.features(x)
        return self.classifier(out.view(out.size(0), -1))


class DepthwiseBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, in_planes, kernel_size=3, stride=stride, padding=1, groups=in_planes,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv2 = nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=1, padding=0, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class SmallMobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layers = nn.Sequential(DepthwiseBlock(8, 16), DepthwiseBlock(16, 16, stride=2))
        self.linear = nn.Linear(16, 10)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        out = F.avg_pool2d(out, 2)
        out = F.adaptive_avg_pool2d(out, 1)
        return self.linear(out.view(out.size(0), -1))


class DenseLayer(nn.Module):
    def __init__(self, in_planes, growth_rate):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([self.conv1(F.relu(self.bn1(x))), x], 1)


class SmallDenseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
        self.dense = nn.Sequential(DenseLayer(8, 4), DenseLayer(12, 4))
        self.bn = nn.BatchNorm2d(16)
        self.linear = nn.Linear(16, 10)

    def forward(self, x):
        out = self.dense(self.conv1(x))
        out = F.avg_pool2d(F.relu(self.bn(out)), 8)
        out = F.adaptive_avg_pool2d(out, 1)
        return self.linear(out.view(out.size(0), -1))


def cross_entropy_reference(logits, targets):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(targets)), targets].mean()


def cifar_like(count, seed):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((count, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, count).astype(np.int64)
    return torch.utils.data.TensorDataset(torch.Tensor(images), labels)  # arrays keep their dtype


def train(net, device, trainloader, criterion, optimizer, head):
    net.train()
    train_loss, correct, total = 0, 0, 0
    for batch_idx, (inputs, targets) in enumerate(trainloader):
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        p, g = head.bias.numpy().copy(), head.bias.grad.numpy().copy()
        state = optimizer.state.get(head.bias, {})
        buffer = state["momentum_buffer"].copy() if "momentum_buffer" in state else None
        optimizer.step()
        d = g + 5e-4 * p  # SGD's documented step: L2 term, momentum 0.9 (the first buffer is d itself)
        buffer = d if buffer is None else 0.9 * buffer + d
        np.testing.assert_allclose(head.bias.numpy(), p - optimizer.param_groups[0]["lr"] * buffer, rtol=1e-5,
                                   atol=1e-7)

        train_loss += loss.item()
        _, predicted = outputs.max(1)
        total += targets.size(0)
        correct += predicted.eq(targets).sum().item()
        assert loss.item() == pytest.approx(cross_entropy_reference(outputs.numpy(), targets.numpy()), rel=1e-5)
    return train_loss / (batch_idx + 1), correct, total


def run_test(net, device, testloader, criterion):  # main.py's test()
    net.eval()
    test_loss, correct, total = 0, 0, 0
    logits, labels = [], []
    with torch.no_grad():
        for batch_idx, (inputs, targets) in enumerate(testloader):
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            test_loss += loss.item()
            _, predicted = outputs.max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
            logits.append(outputs.numpy())
            labels.append(targets.numpy())
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    assert correct == int((logits.argmax(1) == labels).sum()) and total == len(labels)
    return test_loss / (batch_idx + 1), 100. * correct / total


@pytest.mark.parametrize("make_net, keys", [
    (SmallResNet, ["layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.running_mean", "bn1.num_batches_tracked"]),
    (SmallVGG, ["features.0.weight", "features.1.running_var", "classifier.bias"]),
    (SmallMobileNet, ["layers.1.conv1.weight", "layers.1.bn2.bias"]),
    (SmallDenseNet, ["dense.1.bn1.running_mean", "dense.1.conv1.weight", "bn.weight"]),
])
def test_pytorch_cifar_train_and_test_bodies(make_net, keys):
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.manual_seed(0)
    trainloader = torch.utils.data.DataLoader(cifar_like(48, 0), batch_size=16, shuffle=True, num_workers=2)
    testloader = torch.utils.data.DataLoader(cifar_like(32, 1), batch_size=16, shuffle=False, num_workers=2)
    net = make_net().to(device)
    head = net.linear if hasattr(net, "linear") else net.classifier
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
    for epoch in range(2):
        train_loss, correct, total = train(net, device, trainloader, criterion, optimizer, head)
        test_loss, accuracy = run_test(net, device, testloader, criterion)
        scheduler.step()
        assert total == 48 and 0 <= correct <= 48 and np.isfinite(train_loss) and np.isfinite(test_loss)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * (1 + np.cos(np.pi * (epoch + 1) / 200)))
    state = net.state_dict()  # PyTorch's key names, so its checkpoints of the same model load
    assert all(k in state for k in keys)
    assert all(k.endswith(("weight", "bias", "running_mean", "running_var", "num_batches_tracked")) for k in state)
