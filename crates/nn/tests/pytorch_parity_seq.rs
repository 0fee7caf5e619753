//! Parity with PyTorch for the LSTM (including episode-reset masks), Conv2d and
//! BatchNorm1d/2d.
//!
//! Fixtures are recorded by `scripts/record_nn_fixtures_seq.py` (PyTorch in
//! float64 on float32-representable weights and inputs, results rounded to
//! float32). Outputs and gradients of `sum(out * R)` must agree to 1e-5
//! relative.

use std::path::Path;

use hlynr_nn::{
    BatchNorm1d, BatchNorm2d, Conv2d, Conv2dSpec, Layer, Lstm, NamedParam, NamedParamMut, Tensor,
};
use hlynr_rng::Rng;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect()
}

fn dims(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

fn tensor(shape: &[usize], v: &Value) -> Tensor {
    Tensor::from_vec(shape, floats(v)).unwrap()
}

/// Elementwise `|got - want| <= 1e-5 * max(|want|, 0.05 * max|want|)`: relative
/// per element, with a floor tied to the tensor's scale for entries near zero
/// through cancellation, where float32 itself cannot do better.
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * (w.abs() as f64).max(0.05 * scale).max(1e-30);
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= tol,
            "{what}[{i}]: got {g:e}, want {w:e} (err {err:e}, tol {tol:e})"
        );
    }
}

#[test]
fn lstm_matches_pytorch_with_and_without_resets() {
    let fx = fixture("seq_lstm.json");
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (t, b, i, h) = (
            usize_of(&case["seq_len"]),
            usize_of(&case["batch"]),
            usize_of(&case["input_size"]),
            usize_of(&case["hidden_size"]),
        );
        let mut lstm = Lstm::new(i, h, &mut Rng::seed_from_u64(0));
        {
            let mut ps: Vec<NamedParamMut> = Vec::new();
            lstm.params_mut("", &mut ps);
            let ours: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
            let order: Vec<&str> = case["param_order"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(ours, order, "{name}: parameter names and order");
            for (pname, p) in ps {
                let shape = p.value.shape().to_vec();
                p.value = tensor(&shape, &case["params"][&pname]);
            }
        }
        let x = tensor(&[t, b, i], &case["x"]);
        let h0 = tensor(&[b, h], &case["h0"]);
        let c0 = tensor(&[b, h], &case["c0"]);
        let reset = case["reset"].as_array().map(|_| floats(&case["reset"]));
        let out = lstm
            .forward_sequence(&x, &h0, &c0, reset.as_deref())
            .unwrap();
        assert_close(&format!("{name} out"), out.data(), &floats(&case["out"]));
        let (hn, cn) = lstm.final_state();
        assert_close(&format!("{name} h_n"), hn.data(), &floats(&case["h_n"]));
        assert_close(&format!("{name} c_n"), cn.data(), &floats(&case["c_n"]));

        let r = tensor(&[t, b, h], &case["r"]);
        let rh = tensor(&[b, h], &case["rh"]);
        let rc = tensor(&[b, h], &case["rc"]);
        let g = lstm
            .backward_sequence(&r, Some(&rh), Some(&rc), true)
            .unwrap();
        assert_close(
            &format!("{name} grad x"),
            g.x.data(),
            &floats(&case["grad_x"]),
        );
        assert_close(
            &format!("{name} grad h0"),
            g.h0.data(),
            &floats(&case["grad_h0"]),
        );
        assert_close(
            &format!("{name} grad c0"),
            g.c0.data(),
            &floats(&case["grad_c0"]),
        );
        let mut ps: Vec<NamedParam> = Vec::new();
        lstm.params("", &mut ps);
        for (pname, p) in ps {
            assert_close(
                &format!("{name} grad {pname}"),
                p.grad.data(),
                &floats(&case["grads"][&pname]),
            );
        }
    }
}

#[test]
fn conv2d_matches_pytorch() {
    let fx = fixture("seq_conv2d.json");
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (k, s, p) = (
            dims(&case["kernel"]),
            dims(&case["stride"]),
            dims(&case["padding"]),
        );
        let spec = Conv2dSpec {
            in_channels: usize_of(&case["in_channels"]),
            out_channels: usize_of(&case["out_channels"]),
            kernel: (k[0], k[1]),
            stride: (s[0], s[1]),
            padding: (p[0], p[1]),
            bias: case["bias"].as_bool().unwrap(),
        };
        let mut conv = Conv2d::new(spec, &mut Rng::seed_from_u64(0)).unwrap();
        {
            let mut ps = Vec::new();
            conv.params_mut("", &mut ps);
            // JSON objects come back with sorted keys; compare as sets.
            let mut ours: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
            ours.sort_unstable();
            let theirs: Vec<&str> = case["params"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(ours, theirs, "{name}: parameter names");
            for (pname, p) in ps {
                let shape = p.value.shape().to_vec();
                p.value = tensor(&shape, &case["params"][&pname]);
            }
        }
        let x = tensor(&dims(&case["x_shape"]), &case["x"]);
        let out_shape = dims(&case["out_shape"]);
        let y = conv.forward(&x).unwrap();
        assert_eq!(y.shape(), out_shape.as_slice(), "{name}: output shape");
        assert_close(&format!("{name} out"), y.data(), &floats(&case["out"]));
        let r = tensor(&out_shape, &case["r"]);
        let dx = conv.backward(&x, &r, true).unwrap();
        assert_close(
            &format!("{name} grad x"),
            dx.data(),
            &floats(&case["grad_x"]),
        );
        let mut ps = Vec::new();
        conv.params("", &mut ps);
        for (pname, p) in ps {
            assert_close(
                &format!("{name} grad {pname}"),
                p.grad.data(),
                &floats(&case["grads"][&pname]),
            );
        }
    }
}

fn check_batch_norm(layer: &mut dyn Layer, case: &Value) {
    let name = case["name"].as_str().unwrap();
    let x_shape = dims(&case["x_shape"]);
    let c = usize_of(&case["num_features"]);
    let order: Vec<&str> = case["state_dict_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    {
        let mut ps = Vec::new();
        layer.params_mut("", &mut ps);
        let ours: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(ours, order, "{name}: state_dict names and order");
        for (pname, p) in ps {
            if let Some(v) = case["initial"].get(&pname) {
                p.value = tensor(&[c], v);
            }
        }
    }

    // Training mode: batch statistics, running statistics updated.
    layer.set_training(true);
    let x = tensor(&x_shape, &case["x"]);
    let y = layer.forward(&x).unwrap();
    assert_close(
        &format!("{name} train out"),
        y.data(),
        &floats(&case["out"]),
    );
    let r = tensor(&x_shape, &case["r"]);
    let dx = layer.backward(&x, &r, true).unwrap();
    assert_close(
        &format!("{name} grad x"),
        dx.data(),
        &floats(&case["grad_x"]),
    );
    let mut ps = Vec::new();
    layer.params("", &mut ps);
    for (pname, p) in ps {
        match pname.as_str() {
            "weight" => assert_close(
                &format!("{name} grad weight"),
                p.grad.data(),
                &floats(&case["grad_weight"]),
            ),
            "bias" => {
                assert_close(
                    &format!("{name} grad bias"),
                    p.grad.data(),
                    &floats(&case["grad_bias"]),
                );
            }
            "running_mean" | "running_var" => assert_close(
                &format!("{name} {pname} after a training step"),
                p.value.data(),
                &floats(&case["after_step"][&pname]),
            ),
            "num_batches_tracked" => assert_eq!(
                p.value.data()[0] as u64,
                case["num_batches_tracked"].as_u64().unwrap(),
                "{name}: num_batches_tracked"
            ),
            other => panic!("{name}: unexpected parameter {other}"),
        }
    }

    // Evaluation mode: running statistics.
    layer.set_training(false);
    let xe = tensor(&x_shape, &case["x_eval"]);
    let ye = layer.forward(&xe).unwrap();
    assert_close(
        &format!("{name} eval out"),
        ye.data(),
        &floats(&case["out_eval"]),
    );
}

#[test]
fn batch_norm_matches_pytorch_in_train_and_eval_mode() {
    let fx = fixture("seq_batchnorm.json");
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let c = usize_of(&case["num_features"]);
        match case["name"].as_str().unwrap() {
            "bn1d_nc" | "bn1d_ncl" => check_batch_norm(&mut BatchNorm1d::new(c).unwrap(), case),
            "bn2d" => check_batch_norm(&mut BatchNorm2d::new(c).unwrap(), case),
            other => panic!("unknown case {other}"),
        }
    }
}
