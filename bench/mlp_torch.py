"""PyTorch side of the MLP benchmark: the same model, data recipe, optimiser and batch sizes as
bench/mlp_bench.cc, one thread. Run with Debian's /usr/bin/python3 (python3-torch)."""
import argparse
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--rows", type=int, default=200000)
p.add_argument("--latency-samples", type=int, default=5000)
a = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(1)
x = torch.randn(a.rows, 16)
y = (x @ torch.randn(16, 5)).argmax(dim=1)


def make():
    return torch.nn.Sequential(
        torch.nn.Linear(16, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 5))


for bs in (1024, 256, 32):
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    perm = torch.randperm(a.rows)
    total = 0.0
    for i in range(0, a.rows, bs):
        idx = perm[i:i + bs]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    s = time.perf_counter() - t0
    print(f"torch train_bs{bs}_samples_per_s {a.rows / s:.0f}")
    print(f"torch train_bs{bs}_final_loss {total / a.rows:.4f}")
    if bs == 32:
        model.eval()
        with torch.no_grad():
            t1 = time.perf_counter()
            for i in range(a.latency_samples):
                model(x[i % a.rows:i % a.rows + 1])
            us = (time.perf_counter() - t1) * 1e6 / a.latency_samples
        print(f"torch infer_bs1_us {us:.3f}")
