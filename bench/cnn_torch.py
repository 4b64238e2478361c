"""PyTorch side of the CNN benchmark (bench/run_cnn.sh): the data/fashion_mnist.yaml model
(conv 16, max pool, conv 32, max pool, dense 64, dropout 0.2, dense 10; 3x3 valid convolutions, ReLU),
cross-entropy, Adam lr 0.002, batch 128, one pass over the first N training images. Prints
"torch <metric> <value>" lines. Run with Debian's /usr/bin/python3 (python3-torch)."""
import argparse
import gzip
import time

import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--rows", type=int, default=54000)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--images", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
p.add_argument("--labels", default="/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz")
p.add_argument("--count-macs", action="store_true",
               help="print the model's multiply-adds per training sample and exit")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
with gzip.open(a.images) as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[: a.rows]
with gzip.open(a.labels) as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8)[: a.rows]
x = torch.tensor(x, dtype=torch.float32) / 255.0
y = torch.tensor(y, dtype=torch.int64)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(16, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Linear(32 * 5 * 5, 64), torch.nn.ReLU(), torch.nn.Dropout(0.2),
    torch.nn.Linear(64, 10))
if a.count_macs:
    # Multiply-adds of the convolutions and dense layers per sample: forward, weight gradient and input
    # gradient, the last for every layer but the first (the images need no gradient). Pooling, activations,
    # the loss and the optimiser are left out: they are a small part of the flops, not of the time.
    fwd = []
    hook = lambda m, i, o: fwd.append(o[0].numel() * m.weight[0].numel())
    for m in model:
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(x[:1])
    print(f"torch cnn_train_macs_per_sample {3 * sum(fwd) - fwd[0]}")
    raise SystemExit(0)
opt = torch.optim.Adam(model.parameters(), lr=0.002)
loss_fn = torch.nn.CrossEntropyLoss()
perm = torch.randperm(len(x))
t0 = time.perf_counter()
total = 0.0
for i in range(0, len(x), 128):
    idx = perm[i:i + 128]
    opt.zero_grad()
    loss = loss_fn(model(x[idx]), y[idx])
    loss.backward()
    opt.step()
    total += loss.item() * len(idx)
s = time.perf_counter() - t0
print(f"torch cnn_t{a.threads}_samples_per_s {len(x) / s:.0f}")
print(f"torch cnn_t{a.threads}_train_loss {total / len(x):.4f}")
