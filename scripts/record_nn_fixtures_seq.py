#!/usr/bin/env python3
"""Records PyTorch reference fixtures for hlynr-nn's LSTM, Conv2d and BatchNorm.

Each case fixes float32-representable weights and inputs, runs PyTorch in
float64 (so the reference is exact to float32 rounding), and stores the
outputs and the gradients of the scalar loss sum(out * R) (plus, for the LSTM,
sum(h_T * Rh) + sum(c_T * Rc)) with fixed random R. The Rust test
crates/nn/tests/pytorch_parity_seq.rs loads the same weights and compares.

PyTorch's LSTM has no episode-reset masks, so the masked case runs the cell one
step at a time and zeroes the carried state of the rows where an episode starts
before that step, which is the convention hlynr-nn implements.

Usage: python3 scripts/record_nn_fixtures_seq.py  (writes crates/nn/tests/fixtures/seq_*.json)
"""

import json
import pathlib

import torch

OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "crates" / "nn" / "tests" / "fixtures"


def flat(t):
    """Flattened values rounded to float32, printed with enough digits to round-trip."""
    values = t.detach().float().reshape(-1).tolist()
    return [float(f"{v:.9g}") for v in values]


def rand(*shape, lo=-1.0, hi=1.0):
    """Float32 draws held in float64, so the Rust side sees the exact same values."""
    return torch.empty(*shape, dtype=torch.float32).uniform_(lo, hi).double()


def write(name, payload):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / name
    path.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def lstm_case(name, t_len, batch, inp, hidden, zero_state, reset):
    lstm = torch.nn.LSTM(inp, hidden, num_layers=1, batch_first=False).double()
    x = rand(t_len, batch, inp).requires_grad_(True)
    if zero_state:
        h0 = torch.zeros(batch, hidden, dtype=torch.float64)
        c0 = torch.zeros(batch, hidden, dtype=torch.float64)
    else:
        h0 = rand(batch, hidden)
        c0 = rand(batch, hidden)
    h0.requires_grad_(True)
    c0.requires_grad_(True)
    r = rand(t_len, batch, hidden)
    rh = rand(batch, hidden)
    rc = rand(batch, hidden)

    if reset is None:
        out, (hn, cn) = lstm(x, (h0.unsqueeze(0), c0.unsqueeze(0)))
        hn, cn = hn.squeeze(0), cn.squeeze(0)
    else:
        mask = torch.tensor(reset, dtype=torch.float64).reshape(t_len, batch, 1)
        h, c = h0.unsqueeze(0), c0.unsqueeze(0)
        outs = []
        for t in range(t_len):
            keep = 1.0 - mask[t]
            h, c = h * keep, c * keep
            o, (h, c) = lstm(x[t : t + 1], (h, c))
            outs.append(o)
        out = torch.cat(outs, 0)
        hn, cn = h.squeeze(0), c.squeeze(0)

    loss = (out * r).sum() + (hn * rh).sum() + (cn * rc).sum()
    loss.backward()
    params = dict(lstm.named_parameters())
    return {
        "name": name,
        "seq_len": t_len,
        "batch": batch,
        "input_size": inp,
        "hidden_size": hidden,
        "params": {k: flat(v) for k, v in params.items()},
        "param_order": list(params.keys()),
        "x": flat(x),
        "h0": flat(h0),
        "c0": flat(c0),
        "reset": reset,
        "r": flat(r),
        "rh": flat(rh),
        "rc": flat(rc),
        "out": flat(out),
        "h_n": flat(hn),
        "c_n": flat(cn),
        "grad_x": flat(x.grad),
        "grad_h0": flat(h0.grad),
        "grad_c0": flat(c0.grad),
        "grads": {k: flat(v.grad) for k, v in params.items()},
    }


def conv_case(name, n, c, h, w, out_ch, kernel, stride, padding, bias):
    conv = torch.nn.Conv2d(c, out_ch, kernel, stride=stride, padding=padding, bias=bias).double()
    x = rand(n, c, h, w).requires_grad_(True)
    y = conv(x)
    r = rand(*y.shape)
    (y * r).sum().backward()
    params = dict(conv.named_parameters())
    return {
        "name": name,
        "in_channels": c,
        "out_channels": out_ch,
        "kernel": list(kernel),
        "stride": list(stride),
        "padding": list(padding),
        "bias": bias,
        "x_shape": list(x.shape),
        "out_shape": list(y.shape),
        "params": {k: flat(v) for k, v in params.items()},
        "x": flat(x),
        "r": flat(r),
        "out": flat(y),
        "grad_x": flat(x.grad),
        "grads": {k: flat(v.grad) for k, v in params.items()},
    }


def bn_case(name, module, x_shape):
    c = x_shape[1]
    with torch.no_grad():
        module.weight.copy_(rand(c, lo=0.5, hi=1.5))
        module.bias.copy_(rand(c, lo=-0.5, hi=0.5))
        module.running_mean.copy_(rand(c, lo=-0.3, hi=0.3))
        module.running_var.copy_(rand(c, lo=0.5, hi=2.0))
    start = {k: flat(v) for k, v in module.state_dict().items() if k != "num_batches_tracked"}

    module.train()
    x = rand(*x_shape, lo=-1.3, hi=2.7).requires_grad_(True)
    y = module(x)
    r = rand(*y.shape)
    (y * r).sum().backward()
    after = {k: flat(v) for k, v in module.state_dict().items() if k != "num_batches_tracked"}

    module.eval()
    x_eval = rand(*x_shape)
    with torch.no_grad():
        y_eval = module(x_eval)
    return {
        "name": name,
        "num_features": c,
        "x_shape": x_shape,
        "state_dict_order": list(module.state_dict().keys()),
        "initial": start,
        "x": flat(x),
        "r": flat(r),
        "out": flat(y),
        "grad_x": flat(x.grad),
        "grad_weight": flat(module.weight.grad),
        "grad_bias": flat(module.bias.grad),
        "after_step": after,
        "num_batches_tracked": int(module.num_batches_tracked.item()),
        "x_eval": flat(x_eval),
        "out_eval": flat(y_eval),
    }


def main():
    torch.manual_seed(20240611)
    t_len, batch, inp, hidden = 5, 3, 4, 6
    # Row 0 starts an episode at t = 0, row 1 at t = 2, row 2 at t = 4.
    reset = [0.0] * (t_len * batch)
    reset[0 * batch + 0] = 1.0
    reset[2 * batch + 1] = 1.0
    reset[4 * batch + 2] = 1.0
    write(
        "seq_lstm.json",
        {
            "cases": [
                lstm_case("zero_state", t_len, batch, inp, hidden, True, None),
                lstm_case("nonzero_state", t_len, batch, inp, hidden, False, None),
                lstm_case("reset_mask", t_len, batch, inp, hidden, False, reset),
            ]
        },
    )
    write(
        "seq_conv2d.json",
        {
            "cases": [
                conv_case("k3_s1_p1", 2, 3, 6, 5, 4, (3, 3), (1, 1), (1, 1), True),
                conv_case("k4x3_s2x1_p0x1_nobias", 2, 2, 9, 7, 3, (4, 3), (2, 1), (0, 1), False),
            ]
        },
    )
    write(
        "seq_batchnorm.json",
        {
            "cases": [
                bn_case("bn1d_nc", torch.nn.BatchNorm1d(4).double(), [6, 4]),
                bn_case("bn1d_ncl", torch.nn.BatchNorm1d(3).double(), [4, 3, 5]),
                bn_case("bn2d", torch.nn.BatchNorm2d(3).double(), [2, 3, 4, 5]),
            ]
        },
    )


if __name__ == "__main__":
    main()
