#!/usr/bin/python3
"""Training throughput of bnorm's built-in models against their PyTorch twins, side by side.

For each case (model, BN on/off, batch size) it alternates, for several rounds: `bnorm
bench-train` (forward, loss, backward and an SGD-momentum step on random data, timed inside
the program) and the same steps in PyTorch (scripts/torch_twins.py) with the same thread count.
Each measurement runs in its own process, so that no OpenMP thread of one side is left spinning
while the other is timed. It prints the median images/s of each and the ratio, and with --json
writes them as JSON.

PyTorch's Linear layers use the system BLAS: Debian's reference libblas3 makes them several
times slower than an optimized BLAS, so install libopenblas0-openmp (scripts/install-deps.sh
does) for a fair comparison; the script prints which BLAS PyTorch loaded.

Usage: scripts/bench-train.py [--bnorm build/bnorm] [--threads 2] [--rounds 3] [--json FILE]
Needs Debian's python3-torch; run it on a quiet machine (docs/benchmarks.md).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_twins import MODELS  # noqa: E402

CASES = [  # (model, bn, batch, input shape per example)
    ("mlp-paper", True, 60, (1, 28, 28)),
    ("mlp-paper", False, 60, (1, 28, 28)),
    ("vgg-mini", True, 128, (1, 28, 28)),
    ("vgg-mini", False, 128, (1, 28, 28)),
]


def torch_images_per_second(model, bn, batch, shape, seconds, warmup_steps):
    torch.manual_seed(0)
    net = MODELS[model](bn=bn)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=False)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup_steps):
        step()
    steps, start = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and steps >= 5:
            return steps * batch / elapsed


def torch_worker_images_per_second(model, bn, batch, shape, seconds, threads):
    command = [sys.executable, os.path.abspath(__file__), "--torch-worker",
               json.dumps({"model": model, "bn": bn, "batch": batch, "shape": shape, "seconds": seconds,
                           "threads": threads})]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)["images_per_second"]


def loaded_blas():
    with open("/proc/self/maps") as maps:
        names = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    return ", ".join(sorted(names)) or "none loaded"


def bnorm_images_per_second(binary, model, bn, batch, seconds, threads):
    command = [binary, "bench-train", "--model", model, "--bn" if bn else "--no-bn",
               "--batch-size", str(batch), "--seconds", str(seconds), "--threads", str(threads),
               "--format", "json"]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)["images_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bnorm", default="build/bnorm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--torch-worker", help=argparse.SUPPRESS)  # internal: one PyTorch measurement
    args = parser.parse_args()
    if args.torch_worker:
        case = json.loads(args.torch_worker)
        torch.set_num_threads(case["threads"])
        rate = torch_images_per_second(case["model"], case["bn"], case["batch"], tuple(case["shape"]),
                                       case["seconds"], warmup_steps=5)
        print(json.dumps({"images_per_second": rate}))
        return
    torch.set_num_threads(args.threads)
    torch.nn.Linear(4, 4)(torch.randn(2, 4))  # loads the BLAS
    print(f"PyTorch {torch.__version__}, BLAS: {loaded_blas()}, {args.threads} threads")

    results = []
    print(f"{'case':<26}{'bnorm img/s':>14}{'torch img/s':>14}{'ratio':>8}")
    for model, bn, batch, shape in CASES:
        name = f"{model}:{'bn' if bn else 'no-bn'}:b{batch}"
        if args.filter not in name:
            continue
        ours, theirs = [], []
        for _ in range(args.rounds):  # interleaved, so drifts in machine load hit both
            ours.append(bnorm_images_per_second(args.bnorm, model, bn, batch, args.seconds, args.threads))
            theirs.append(torch_worker_images_per_second(model, bn, batch, shape, args.seconds, args.threads))
        row = {"case": name, "model": model, "bn": bn, "batch": batch, "threads": args.threads,
               "bnorm_images_per_second": statistics.median(ours),
               "torch_images_per_second": statistics.median(theirs)}
        row["ratio"] = row["bnorm_images_per_second"] / row["torch_images_per_second"]
        results.append(row)
        print(f"{name:<26}{row['bnorm_images_per_second']:>14.0f}{row['torch_images_per_second']:>14.0f}"
              f"{row['ratio']:>7.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
