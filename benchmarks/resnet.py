"""ResNet-20 for 3×32×32 images (He et al. 2016, section 4.2), written once for either framework: pass
`tinygrad_cnn` or `torch` as `framework`. Three stages of three BasicBlocks (16, 32, 64 channels); the
first block of stages two and three halves the resolution with a stride-2 conv, and its shortcut is a
1×1 stride-2 conv with BatchNorm; global average pooling, then one linear layer."""


def resnet20(framework, num_classes: int = 10, blocks_per_stage: int = 3):
    """A fresh ResNet-(6·blocks_per_stage + 2) built from `framework.nn`."""
    nn, F = framework.nn, framework.nn.functional

    class BasicBlock(nn.Module):
        """conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, then ReLU."""

        def __init__(self, inputs, outputs, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(outputs)
            self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(outputs)
            self.shortcut = nn.Sequential()
            if stride != 1 or inputs != outputs:
                self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(outputs))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    inputs = 16
    for stage, outputs in enumerate((16, 32, 64)):
        for block in range(blocks_per_stage):
            layers.append(BasicBlock(inputs, outputs, 2 if stage and not block else 1))
            inputs = outputs
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)
