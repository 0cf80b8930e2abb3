#!/usr/bin/python3
"""Exports the small bundled test models that stand for the LSTM and transformer families
(tests/models/lstm_small, tests/models/transformer_small), the way ../shared/models/make_models.py
exports the benchmark zoo: seeded random weights, opset 13, batch 1, reference outputs from torch.
Development-time only (needs Debian's python3-torch); CI uses the committed results.
Usage: make_small_models.py OUTDIR"""
import os, sys
import numpy as np, onnx, torch, torch.nn as nn
from onnx import numpy_helper


class LSTMSmall(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(500, 32); s.l = nn.LSTM(32, 48, batch_first=True); s.d = nn.Linear(48, 3)
    def forward(s, x):
        _, (h, _) = s.l(s.e(x)); return torch.softmax(s.d(h[-1]), dim=1)


class Block(nn.Module):  # the benchmark zoo's text_transformer block, smaller
    def __init__(s, d, h, ff):
        super().__init__(); s.h = h; s.qkv = nn.Linear(d, 3 * d); s.o = nn.Linear(d, d)
        s.n1 = nn.LayerNorm(d); s.n2 = nn.LayerNorm(d); s.f1 = nn.Linear(d, ff); s.f2 = nn.Linear(ff, d)
    def forward(s, x):
        B, T, D = x.shape; q, k, v = s.qkv(x).split(D, dim=2)
        sh = lambda t: t.reshape(B, T, s.h, D // s.h).transpose(1, 2)
        q, k, v = sh(q), sh(k), sh(v)
        a = torch.softmax(q @ k.transpose(-2, -1) / (D // s.h) ** 0.5, dim=-1) @ v
        x = s.n1(x + s.o(a.transpose(1, 2).reshape(B, T, D)))
        return s.n2(x + s.f2(torch.nn.functional.gelu(s.f1(x))))


class TransformerSmall(nn.Module):
    def __init__(s, vocab=300, d=64, h=4, ff=128, L=2, T=24):
        super().__init__(); s.e = nn.Embedding(vocab, d); s.p = nn.Parameter(torch.randn(1, T, d) * 0.02)
        s.b = nn.ModuleList([Block(d, h, ff) for _ in range(L)]); s.c = nn.Linear(d, 2)
    def forward(s, x):
        x = s.e(x) + s.p
        for b in s.b: x = b(x)
        return s.c(x.mean(dim=1))


specs = {
    "lstm_small": (LSTMSmall, lambda g: torch.randint(0, 500, (1, 16), generator=g)),
    "transformer_small": (TransformerSmall, lambda g: torch.randint(0, 300, (1, 24), generator=g)),
}
out = sys.argv[1]
for name, (ctor, make_input) in specs.items():
    torch.manual_seed(0); g = torch.Generator().manual_seed(1)
    m = ctor().eval(); x = make_input(g)
    d = os.path.join(out, name); os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    with torch.no_grad(): y = m(x)
    torch.onnx.export(m, (x,), os.path.join(d, "model.onnx"), opset_version=13, input_names=["input"],
                      output_names=["output"], do_constant_folding=True)
    onnx.save_tensor(numpy_helper.from_array(x.numpy(), "input"), os.path.join(d, "test_data_set_0", "input_0.pb"))
    onnx.save_tensor(numpy_helper.from_array(y.numpy(), "output"), os.path.join(d, "test_data_set_0", "output_0.pb"))
