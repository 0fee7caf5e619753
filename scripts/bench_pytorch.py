"""PyTorch reference timings for the hlynr-nn workloads W1-W5.

Runs the same workloads as `hlynr bench` / `cargo bench -p hlynr-bench` in PyTorch on
the CPU so both can be measured on the same machine in the same sitting. Prints the
median over repeated timed batches.

    python3 scripts/bench_pytorch.py [--threads 2] [--repeats 7]
"""

import argparse
import math
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F


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


# W5: one learner step of `configs/racing_iqn.yaml`, hlynr's DQN step as `hlynr bench` times it.
#
# The same network as hlynr builds for that config (the racing seed's): a CNN
# (4->8 channels, kernel 8 stride 4; 8->16, kernel 4 stride 2) over 4 stacked
# 64x64 greyscale frames, a 256-wide linear layer, the 12 scalars (speed, gear,
# rpm of each stacked frame) appended, a noisy 268->256 trunk, a 64-function
# cosine embedding of the quantile fractions (linear 64->256), a noisy 256->128
# layer after the product, and noisy dueling heads (1 value, 11 advantages).
# One step, as hlynr's DQN takes it with that config (IQN, double Q, noisy nets,
# prioritised replay weights): fresh noise for the online and target networks;
# the next actions by the online network on 8 midpoint fractions; the target
# network's quantiles at 8 sampled fractions; the online network's at 8 sampled
# fractions; the quantile Huber loss (kappa 1) weighted per sample; backward;
# global-norm clipping at 100; Adam. The batch (32 transitions of uint8 frames)
# is drawn once; the frames are converted to floats in every step, as hlynr
# does. Replay sampling is not timed here (hlynr's figure includes its own).

N_ACTIONS, N_TAUS, COSINE, BATCH, GAMMA = 11, 8, 64, 32, 0.997


class NoisyLinear(nn.Module):
    """Factorised Gaussian noise (Fortunato et al., 2018), sigma0 0.5."""

    def __init__(self, fan_in, fan_out, sigma0=0.5):
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)
        self.weight_mu = nn.Parameter(torch.empty(fan_out, fan_in).uniform_(-bound, bound))
        self.bias_mu = nn.Parameter(torch.empty(fan_out).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((fan_out, fan_in), sigma0 / math.sqrt(fan_in)))
        self.bias_sigma = nn.Parameter(torch.full((fan_out,), sigma0 / math.sqrt(fan_in)))
        self.register_buffer("weight_epsilon", torch.zeros(fan_out, fan_in))
        self.register_buffer("bias_epsilon", torch.zeros(fan_out))

    def resample(self):
        f = lambda x: x.sign() * x.abs().sqrt()
        eps_in = f(torch.randn(self.weight_mu.shape[1]))
        eps_out = f(torch.randn(self.weight_mu.shape[0]))
        self.weight_epsilon.copy_(torch.outer(eps_out, eps_in))
        self.bias_epsilon.copy_(eps_out)

    def forward(self, x):
        w = self.weight_mu + self.weight_sigma * self.weight_epsilon
        b = self.bias_mu + self.bias_sigma * self.bias_epsilon
        return F.linear(x, w, b)


class Iqn(nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(4, 8, 8, stride=4), nn.ReLU(),
            nn.Conv2d(8, 16, 4, stride=2), nn.ReLU(), nn.Flatten())
        self.linear = nn.Sequential(nn.Linear(576, 256), nn.ReLU())
        self.trunk = NoisyLinear(268, 256)
        self.embedding = nn.Linear(COSINE, 256)
        self.quantile_net = NoisyLinear(256, 128)
        self.value_head = NoisyLinear(128, 1)
        self.advantage_head = NoisyLinear(128, N_ACTIONS)
        self.register_buffer("i_pi", torch.arange(COSINE, dtype=torch.float32) * math.pi)

    def noisy(self):
        return [self.trunk, self.quantile_net, self.value_head, self.advantage_head]

    def forward(self, frames, scalars, taus):
        """Quantiles [B, n, actions] at fractions `taus` [B, n]."""
        x = self.linear(self.cnn(frames.float() / 255.0))
        psi = F.relu(self.trunk(torch.cat([x, scalars], 1)))
        n = taus.shape[1]
        phi = F.relu(self.embedding(torch.cos(taus.unsqueeze(-1) * self.i_pi)))
        h = F.relu(self.quantile_net((psi.unsqueeze(1) * phi).reshape(-1, 256)))
        v, a = self.value_head(h), self.advantage_head(h)
        return (v + a - a.mean(1, keepdim=True)).reshape(-1, n, N_ACTIONS)


def quantile_huber(pred, taus, target, weights, kappa=1.0):
    """pred [B, N], taus [B, N], target [B, N'] -> weighted mean over samples."""
    u = target.unsqueeze(1) - pred.unsqueeze(2)
    huber = torch.where(u.abs() <= kappa, 0.5 * u * u, kappa * (u.abs() - 0.5 * kappa))
    loss = (taus.unsqueeze(2) - (u.detach() < 0).float()).abs() * huber / kappa
    per_sample = loss.mean(2).sum(1)
    return (per_sample * weights).mean(), per_sample.detach()


def w5(repeats):
    """W5, described above."""
    online, target = Iqn(), Iqn()
    target.load_state_dict(online.state_dict())
    opt = torch.optim.Adam(online.parameters(), lr=1e-4, eps=1e-8)
    frames = torch.randint(0, 256, (BATCH, 4, 64, 64), dtype=torch.uint8)
    next_frames = torch.randint(0, 256, (BATCH, 4, 64, 64), dtype=torch.uint8)
    scalars, next_scalars = torch.rand(BATCH, 12), torch.rand(BATCH, 12)
    actions = torch.randint(0, N_ACTIONS, (BATCH,))
    rewards, weights = torch.randn(BATCH), torch.rand(BATCH)
    discounts = torch.full((BATCH,), GAMMA)
    midpoints = ((torch.arange(N_TAUS) + 0.5) / N_TAUS).expand(BATCH, N_TAUS)

    def step():
        for layer in online.noisy() + target.noisy():
            layer.resample()
        with torch.no_grad():
            next_actions = online(next_frames, next_scalars, midpoints).mean(1).argmax(1)
            next_q = target(next_frames, next_scalars, torch.rand(BATCH, N_TAUS))
            next_q = next_q.gather(2, next_actions.view(-1, 1, 1).expand(-1, N_TAUS, 1)).squeeze(2)
            y = rewards.unsqueeze(1) + discounts.unsqueeze(1) * next_q
        taus = torch.rand(BATCH, N_TAUS)
        q = online(frames, scalars, taus)
        q = q.gather(2, actions.view(-1, 1, 1).expand(-1, N_TAUS, 1)).squeeze(2)
        loss, _ = quantile_huber(q, taus, y, weights)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(online.parameters(), 100.0)
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
    print(f"W5 racing IQN learner step, batch 32:    {w5(args.repeats) * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
