"""PyTorch reference timings for the hlynr-nn workloads W1-W4.

Runs the same workloads as `hlynr bench` / `cargo bench -p hlynr-bench` in PyTorch on
the CPU so both can be measured on the same machine in the same sitting. Prints the
median over repeated timed batches.

    python3 scripts/bench_pytorch.py [--threads 2] [--repeats 7]
"""

import argparse
import statistics
import time

import torch
from torch import nn


def timeit(fn, inner, repeats):
    for _ in range(max(3, inner // 4)):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def mlp(sizes, act=nn.Tanh):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(act())
    return nn.Sequential(*layers)


def w1(repeats):
    actor, critic = mlp([32, 128, 128, 3]), mlp([32, 128, 128, 1])
    log_std = nn.Parameter(torch.zeros(3))
    params = list(actor.parameters()) + list(critic.parameters()) + [log_std]
    opt = torch.optim.Adam(params, lr=3e-4)
    obs = torch.randn(512, 32)
    act = torch.randn(512, 3)
    old_logp = torch.randn(512)
    adv = torch.randn(512)
    ret = torch.randn(512)

    def step():
        mean = actor(obs)
        dist = torch.distributions.Normal(mean, log_std.exp())
        logp = dist.log_prob(act).sum(-1)
        ratio = (logp - old_logp).exp()
        pg = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
        v = critic(obs).squeeze(-1)
        loss = pg + 0.5 * ((v - ret) ** 2).mean() - 0.0 * dist.entropy().mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()

    return timeit(step, 50, repeats)


def w2(repeats):
    actor = mlp([32, 128, 128, 3])
    out = {}
    with torch.no_grad():
        for batch in (16, 1):
            x = torch.randn(batch, 32)
            out[batch] = timeit(lambda: actor(x), 2000, repeats)
    return out


def w3(repeats):
    lstm = nn.LSTM(32, 128)
    head = nn.Linear(128, 4)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=3e-4)
    x = torch.randn(32, 16, 32)
    h0 = torch.zeros(1, 16, 128)
    c0 = torch.zeros(1, 16, 128)
    target = torch.randn(32, 16, 4)

    def step():
        y, _ = lstm(x, (h0, c0))
        loss = ((head(y) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timeit(step, 20, repeats)


def w4(repeats):
    net = nn.Sequential(
        nn.Conv2d(4, 8, 8, stride=4), nn.ReLU(),
        nn.Conv2d(8, 16, 4, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 6 * 6, 128), nn.ReLU(), nn.Linear(128, 12))
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(32, 4, 64, 64)
    target = torch.randn(32, 12)

    def step():
        loss = ((net(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timeit(step, 20, repeats)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__}, {args.threads} threads, median of {args.repeats}")
    print(f"W1 PPO update (2 MLPs, batch 512):      {w1(args.repeats) * 1e3:8.3f} ms")
    r = w2(args.repeats)
    print(f"W2 policy forward batch 16 / 1:          {r[16] * 1e6:8.1f} / {r[1] * 1e6:.1f} us")
    print(f"W3 LSTM seq 32 batch 16 fwd+bwd+Adam:    {w3(args.repeats) * 1e3:8.3f} ms")
    print(f"W4 conv net batch 32 fwd+bwd+Adam:       {w4(args.repeats) * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
