#!/usr/bin/python3
"""make_resnet50.py OUTDIR - a ResNet-50 (torchvision's layout: Bottleneck blocks 3-4-6-3, stride on
the 3x3, BatchNorm folded by the eval-mode export) with seeded random weights, as OUTDIR/model.onnx
(opset 13, input [1,3,224,224], ~100 MB). Written here rather than taken from torchvision, which
Debian's python3-torch does not ship; needs torch (development time only, not CI). It is the
"model nobody tuned for" of the side-by-side runs and the compile-time target of issue 6:
  bench/make_resnet50.py /tmp/r50 && build/kiln bench /tmp/r50/model.onnx --iters 5 --json"""
import os
import sys

import torch
import torch.nn as nn


class Bottleneck(nn.Module):
    def __init__(self, cin, mid, stride, down):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.c2, self.b2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid)
        self.c3, self.b3 = nn.Conv2d(mid, mid * 4, 1, bias=False), nn.BatchNorm2d(mid * 4)
        self.down = nn.Sequential(nn.Conv2d(cin, mid * 4, 1, stride, bias=False), nn.BatchNorm2d(mid * 4)) if down else None
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.b1(self.c1(x)))
        y = self.relu(self.b2(self.c2(y)))
        y = self.b3(self.c3(y))
        return self.relu(y + (self.down(x) if self.down is not None else x))


def layer(cin, mid, n, stride):
    return nn.Sequential(*[Bottleneck(cin if i == 0 else mid * 4, mid, stride if i == 0 else 1, i == 0) for i in range(n)])


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                          layer(64, 64, 3, 1), layer(256, 128, 4, 2), layer(512, 256, 6, 2), layer(1024, 512, 3, 2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)).eval()
    os.makedirs(sys.argv[1], exist_ok=True)
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), os.path.join(sys.argv[1], "model.onnx"), opset_version=13,
                      input_names=["input"], output_names=["output"])


if __name__ == "__main__":
    main()
