"""PyTorch reference for bench/train.ts: the seed's Siamese MLP (or, with --model cnn, the CNN of
src/model/cnn.ts), RMSprop, contrastive loss, batch 128 pairs on random data of MNIST's shape.
Prints one JSON line.

    python3 bench/torch_reference.py --threads 1 --steps 300
    python3 bench/torch_reference.py --model cnn --threads 1 --steps 60
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def blas_library() -> str:
    """The BLAS shared library torch actually mapped (Debian's torch uses the system libblas)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1].split("/")[-1] for line in f if "blas" in line.lower()}
        return "+".join(sorted(libs)) or "unknown"
    except OSError:
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.model == "cnn":
        # conv 3x3 valid + ReLU + max-pool 2x2, twice, then dropout and the dense head (28x28: 5x5x64)
        net = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.1),
            nn.Linear(1600, 128), nn.ReLU(),
        )
    else:
        net = nn.Sequential(
            nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(128, 128), nn.ReLU(),
        )
    # Keras 2 RMSprop: w -= lr * g / (sqrt(v) + eps), which is what torch computes too
    opt = torch.optim.RMSprop(net.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    n = a.batch
    x = torch.rand(64, 2 * n, 784)
    y = (torch.rand(64, n) < 0.5).float()

    def step(i: int) -> float:
        xb = x[i % 64]
        yb = y[i % 64]
        emb = net(xb)  # both sides in one pass, as the TypeScript engines do
        d = torch.sqrt(torch.clamp(((emb[:n] - emb[n:]) ** 2).sum(1), min=1e-7))
        loss = (yb * d ** 2 + (1 - yb) * torch.clamp(1 - d, min=0) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    for i in range(a.warmup):
        step(i)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(i)
    cpu = time.process_time() - c0
    wall = time.perf_counter() - t0
    pairs = a.steps * n
    print(json.dumps({
        "torch": torch.__version__,
        "model": a.model,
        "threads": a.threads,
        "steps": a.steps,
        "pairsPerSecond": pairs / wall,
        "pairsPerCpuSecond": pairs / cpu,
        "blas": blas_library(),
    }))


if __name__ == "__main__":
    main()
