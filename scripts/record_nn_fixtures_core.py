#!/usr/bin/env python3
"""Record PyTorch reference values for hlynr-nn's core layers and optimizers.

Writes crates/nn/tests/fixtures/core_*.json (read by
crates/nn/tests/pytorch_parity_core.rs) and core_torch.safetensors (a weights
file written by PyTorch that the Rust loader must read).

Each layer case holds fixed weights, an input, a fixed "loss direction" R, the
output, and the gradients of sum(output * R) with respect to the input and
every parameter, computed in float64 and stored rounded to float32 so the Rust
float32 results can be compared with a relative tolerance of 1e-5.

The Adam/AdamW cases replay fixed gradients for a few steps on fixed
parameters (two groups with their own learning rates, one changed mid-run) and
record the parameters after every step and the final moments.

Usage:
    python3 scripts/record_nn_fixtures_core.py
    python3 scripts/record_nn_fixtures_core.py --check-rust-file PATH
        (loads a safetensors file written by hlynr-nn with
        safetensors.torch.load_file and into Sequential(Linear(3, 4), Tanh(),
        Linear(4, 2)) with load_state_dict(strict=True), and prints the result)
"""

import argparse
import json
import os

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "nn", "tests", "fixtures")


def flat(t):
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def tensor_json(t):
    return {"shape": list(t.shape), "data": flat(t)}


def rand(gen, *shape, scale=1.0):
    return ((torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale)


def layer_case(name, module, x, gen):
    """Output and gradients of sum(module(x) * R) in float64."""
    module = module.double()
    # Round parameters and input to float32 first so both sides start equal.
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.float32).double())
    x = x.to(torch.float32).double().requires_grad_(True)
    out = module(x)
    r = rand(gen, *out.shape).to(torch.float32).double()
    (out * r).sum().backward()
    return {
        "name": name,
        "input": tensor_json(x),
        "r": tensor_json(r),
        "output": tensor_json(out),
        "grad_input": tensor_json(x.grad),
        "params": {k: tensor_json(v) for k, v in module.state_dict().items()},
        "grads": {k: tensor_json(p.grad) for k, p in module.named_parameters()},
    }


def record_linear(gen):
    cases = []
    lin = torch.nn.Linear(5, 3)
    with torch.no_grad():
        lin.weight.copy_(rand(gen, 3, 5))
        lin.bias.copy_(rand(gen, 3))
    cases.append(layer_case("linear_bias", lin, rand(gen, 4, 5, scale=2.0), gen))
    nob = torch.nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        nob.weight.copy_(rand(gen, 2, 4))
    cases.append(layer_case("linear_no_bias", nob, rand(gen, 3, 4, scale=2.0), gen))
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p in mlp.parameters():
            p.copy_(rand(gen, *p.shape))
    cases.append(layer_case("mlp_linear_tanh_linear", mlp, rand(gen, 5, 3, scale=2.0), gen))
    return {"cases": cases}


def record_layernorm(gen):
    cases = []
    for name, d, shape, eps in [("layernorm_2d", 6, (4, 6), 1e-5), ("layernorm_3d", 3, (2, 2, 3), 1e-5)]:
        ln = torch.nn.LayerNorm(d, eps=eps)
        with torch.no_grad():
            ln.weight.copy_(1.0 + 0.5 * rand(gen, d))
            ln.bias.copy_(0.5 * rand(gen, d))
        x = rand(gen, *shape, scale=3.0) + 1.5
        case = layer_case(name, ln, x, gen)
        case["eps"] = eps
        cases.append(case)
    return {"cases": cases}


def record_activations(gen):
    x = torch.cat([
        torch.linspace(-25.0, 25.0, 41, dtype=torch.float64),
        torch.tensor([-0.3, -1e-3, 0.0, 1e-3, 0.3, 0.6, 0.65, 9.5, -9.5], dtype=torch.float64),
    ]).to(torch.float32).double().reshape(5, 10)
    specs = [
        ("tanh", {}, torch.nn.Tanh()),
        ("relu", {}, torch.nn.ReLU()),
        ("leaky_relu", {"negative_slope": 0.01}, torch.nn.LeakyReLU()),
        ("leaky_relu", {"negative_slope": 0.2}, torch.nn.LeakyReLU(0.2)),
        ("sigmoid", {}, torch.nn.Sigmoid()),
        ("softplus", {"beta": 1.0, "threshold": 20.0}, torch.nn.Softplus()),
        ("softplus", {"beta": 2.0, "threshold": 5.0}, torch.nn.Softplus(beta=2.0, threshold=5.0)),
    ]
    cases = []
    for kind, args, module in specs:
        case = layer_case(kind, module, x.clone(), gen)
        case["args"] = args
        cases.append(case)
    return {"cases": cases}


def record_adam(gen):
    cases = []
    configs = [
        ("adam", torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-8}, [0.0, 0.0]),
        ("adam_l2", torch.optim.Adam, {"betas": (0.8, 0.99), "eps": 1e-6}, [0.1, 0.0]),
        ("adamw", torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-8}, [0.01, 0.05]),
    ]
    for name, cls, kw, wds in configs:
        params = {"actor.weight": rand(gen, 3, 2).float(), "critic.bias": rand(gen, 4).float()}
        initial = {k: tensor_json(v) for k, v in params.items()}
        tp = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}
        lrs = [1e-2, 3e-3]
        opt = cls([
            {"params": [tp["actor.weight"]], "lr": lrs[0], "weight_decay": wds[0]},
            {"params": [tp["critic.bias"]], "lr": lrs[1], "weight_decay": wds[1]},
        ], **kw)
        steps = []
        for step in range(4):
            if step == 2:
                # A schedule changes the actor's learning rate between steps.
                opt.param_groups[0]["lr"] = 5e-3
            grads = {k: rand(gen, *v.shape, scale=2.0).float() for k, v in tp.items()}
            for k, p in tp.items():
                p.grad = grads[k].clone()
            opt.step()
            steps.append({
                "lrs": [g["lr"] for g in opt.param_groups],
                "grads": {k: tensor_json(v) for k, v in grads.items()},
                "params": {k: tensor_json(p) for k, p in tp.items()},
            })
        state = {}
        for k, p in tp.items():
            s = opt.state[p]
            state[k] = {
                "step": int(s["step"]),
                "exp_avg": tensor_json(s["exp_avg"]),
                "exp_avg_sq": tensor_json(s["exp_avg_sq"]),
            }
        cases.append({
            "name": name,
            "kind": "AdamW" if cls is torch.optim.AdamW else "Adam",
            "beta1": kw["betas"][0],
            "beta2": kw["betas"][1],
            "eps": kw["eps"],
            "groups": [
                {"name": "actor", "params": ["actor.weight"], "lr": lrs[0], "weight_decay": wds[0]},
                {"name": "critic", "params": ["critic.bias"], "lr": lrs[1], "weight_decay": wds[1]},
            ],
            "initial": initial,
            "steps": steps,
            "final_state": state,
        })
    return {"cases": cases}


def record_torch_safetensors(path):
    """A PyTorch-written weights file with known values (checked in Rust)."""
    tensors = {
        # weight[i, j] = 0.25 * (i * 2 + j) - 0.5
        "0.weight": (torch.arange(6, dtype=torch.float32).reshape(3, 2) * 0.25 - 0.5),
        # bias = [1.5, -2.0, 1e-3]
        "0.bias": torch.tensor([1.5, -2.0, 1e-3], dtype=torch.float32),
        "1.num_batches_tracked": torch.tensor(42, dtype=torch.int64),
    }
    save_file(tensors, path, metadata={"format": "pt", "written_by": "torch"})
    # Round trip through PyTorch's own reader.
    back = load_file(path)
    for k, v in tensors.items():
        assert torch.equal(back[k], v), k


def check_rust_file(path):
    tensors = load_file(path)
    print({k: (tuple(v.shape), str(v.dtype)) for k, v in tensors.items()})
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    net.load_state_dict(tensors, strict=True)
    print("load_state_dict(strict=True) ok; output for ones(1, 3):", net(torch.ones(1, 3)).tolist())


def write(name, obj):
    path = os.path.join(FIXTURES, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-rust-file")
    args = ap.parse_args()
    if args.check_rust_file:
        check_rust_file(args.check_rust_file)
        return
    os.makedirs(FIXTURES, exist_ok=True)
    gen = torch.Generator().manual_seed(20240611)
    meta = {"torch": torch.__version__}
    write("core_linear.json", {"meta": meta, **record_linear(gen)})
    write("core_layernorm.json", {"meta": meta, **record_layernorm(gen)})
    write("core_activations.json", {"meta": meta, **record_activations(gen)})
    write("core_adam.json", {"meta": meta, **record_adam(gen)})
    st = os.path.join(FIXTURES, "core_torch.safetensors")
    record_torch_safetensors(st)
    print(f"{st}: {os.path.getsize(st)} bytes")


if __name__ == "__main__":
    main()
