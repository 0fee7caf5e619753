//! Parity with PyTorch for the core layers, activations and optimizers, and
//! safetensors interoperability.
//!
//! Fixtures are recorded by `scripts/record_nn_fixtures_core.py` (PyTorch,
//! float64 reference rounded to float32). Layer outputs and gradients of
//! `sum(output * R)` must agree to 1e-5 relative.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hlynr_nn::io::{Loaded, load_safetensors, save_safetensors};
use hlynr_nn::{
    Adam, AdamConfig, AdamKind, Layer, LayerNorm, LeakyReLU, Linear, NamedParam, NamedParamMut,
    ParamGroup, ReLU, Sequential, Sigmoid, Softplus, Tanh, Tensor, load_into,
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

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect();
    Tensor::from_vec(&shape, data).unwrap()
}

/// Elementwise `|got - want| <= 1e-5 * max(|want|, 0.05 * max|want|)`: relative
/// per element, with a floor tied to the tensor's scale for entries that are
/// near zero through cancellation (sums in LayerNorm's backward, `y (1 - y)`
/// of a saturated sigmoid, where float32 itself cannot do better).
fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let scale = want
        .data()
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs() as f64));
    for (i, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        let tol = 1e-5 * (w.abs() as f64).max(0.05 * scale).max(1e-30);
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= tol,
            "{what}[{i}]: got {g:e}, want {w:e} (err {err:e}, tol {tol:e})"
        );
    }
}

/// Sets every parameter from the fixture, checking names and order match PyTorch's state_dict.
fn load_params(layer: &mut dyn Layer, case: &Value) {
    let params = case["params"].as_object().unwrap();
    let mut ps = Vec::new();
    layer.params_mut("", &mut ps);
    let ours: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
    let theirs: Vec<&str> = params.keys().map(String::as_str).collect();
    let mut sorted_ours = ours.clone();
    sorted_ours.sort();
    assert_eq!(sorted_ours, theirs, "parameter names");
    for (name, p) in ps {
        p.value = tensor(&params[&name]);
        p.zero_grad();
    }
}

/// Runs forward and backward of `sum(out * R)` and compares with the fixture.
fn check_case(layer: &mut dyn Layer, case: &Value) {
    let name = case["name"].as_str().unwrap().to_string();
    load_params(layer, case);
    let x = tensor(&case["input"]);
    let r = tensor(&case["r"]);
    let out = layer.forward(&x).unwrap().clone();
    assert_close(&format!("{name} output"), &out, &tensor(&case["output"]));
    let gi = layer.backward(&x, &r, true).unwrap().clone();
    assert_close(
        &format!("{name} grad_input"),
        &gi,
        &tensor(&case["grad_input"]),
    );
    let grads = case["grads"].as_object().unwrap();
    let mut ps = Vec::new();
    layer.params("", &mut ps);
    assert_eq!(ps.len(), grads.len(), "{name}: trainable parameter count");
    for (pname, p) in ps {
        assert_close(
            &format!("{name} grad of {pname}"),
            &p.grad,
            &tensor(&grads[&pname]),
        );
    }
}

#[test]
fn linear_and_mlp_match_pytorch() {
    let fx = fixture("core_linear.json");
    let mut rng = Rng::seed_from_u64(0);
    let mut checked = 0;
    for case in fx["cases"].as_array().unwrap() {
        let mut layer: Box<dyn Layer> = match case["name"].as_str().unwrap() {
            "linear_bias" => Box::new(Linear::new(5, 3, &mut rng)),
            "linear_no_bias" => Box::new(Linear::with_bias(4, 2, false, &mut rng)),
            "mlp_linear_tanh_linear" => Box::new(
                Sequential::new()
                    .with(Linear::new(3, 4, &mut rng))
                    .with(Tanh::new())
                    .with(Linear::new(4, 2, &mut rng)),
            ),
            other => panic!("unknown case {other}"),
        };
        check_case(layer.as_mut(), case);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn layer_norm_matches_pytorch() {
    let fx = fixture("core_layernorm.json");
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let d = *case["params"]["weight"]["shape"].as_array().unwrap()[0]
            .as_u64()
            .as_ref()
            .unwrap() as usize;
        let mut ln = LayerNorm::with_eps(d, case["eps"].as_f64().unwrap() as f32).unwrap();
        check_case(&mut ln, case);
    }
}

#[test]
fn activations_match_pytorch() {
    let fx = fixture("core_activations.json");
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let args = &case["args"];
        let mut layer: Box<dyn Layer> = match case["name"].as_str().unwrap() {
            "tanh" => Box::new(Tanh::new()),
            "relu" => Box::new(ReLU::new()),
            "sigmoid" => Box::new(Sigmoid::new()),
            "leaky_relu" => Box::new(LeakyReLU::with_slope(
                args["negative_slope"].as_f64().unwrap() as f32,
            )),
            "softplus" => Box::new(
                Softplus::with_params(
                    args["beta"].as_f64().unwrap() as f32,
                    args["threshold"].as_f64().unwrap() as f32,
                )
                .unwrap(),
            ),
            other => panic!("unknown activation {other}"),
        };
        check_case(layer.as_mut(), case);
    }
}

#[test]
fn adam_and_adamw_match_pytorch() {
    let fx = fixture("core_adam.json");
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let kind = match case["kind"].as_str().unwrap() {
            "Adam" => AdamKind::Adam,
            _ => AdamKind::AdamW,
        };
        let config = AdamConfig {
            kind,
            beta1: case["beta1"].as_f64().unwrap(),
            beta2: case["beta2"].as_f64().unwrap(),
            eps: case["eps"].as_f64().unwrap(),
        };
        let groups: Vec<ParamGroup> = case["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let params: Vec<String> = g["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect();
                ParamGroup::new(
                    g["name"].as_str().unwrap(),
                    params,
                    g["lr"].as_f64().unwrap(),
                )
                .with_weight_decay(g["weight_decay"].as_f64().unwrap())
            })
            .collect();
        let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        let mut opt = Adam::new(config, groups).unwrap();
        let mut params: BTreeMap<String, hlynr_nn::Param> = case["initial"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), hlynr_nn::Param::trainable(tensor(v))))
            .collect();
        for (si, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            for (g, lr) in group_names.iter().zip(step["lrs"].as_array().unwrap()) {
                opt.set_group_lr(g, lr.as_f64().unwrap()).unwrap();
            }
            for (k, p) in params.iter_mut() {
                p.grad = tensor(&step["grads"][k]);
            }
            let mut named: Vec<NamedParamMut<'_>> =
                params.iter_mut().map(|(k, p)| (k.clone(), p)).collect();
            opt.step(&mut named).unwrap();
            for (k, p) in &params {
                assert_close(
                    &format!("{name} step {si} {k}"),
                    &p.value,
                    &tensor(&step["params"][k]),
                );
            }
        }
        let state = opt.state().unwrap();
        for (k, s) in case["final_state"].as_object().unwrap() {
            assert_eq!(
                opt.step_count(k),
                s["step"].as_u64().unwrap(),
                "{name} {k} step"
            );
            assert_close(
                &format!("{name} {k} exp_avg"),
                &state.tensors[&format!("state.{k}.exp_avg")],
                &tensor(&s["exp_avg"]),
            );
            assert_close(
                &format!("{name} {k} exp_avg_sq"),
                &state.tensors[&format!("state.{k}.exp_avg_sq")],
                &tensor(&s["exp_avg_sq"]),
            );
        }
    }
}

#[test]
fn safetensors_written_by_pytorch_loads_with_right_values() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/core_torch.safetensors");
    let file = load_safetensors(&path).unwrap();
    assert_eq!(
        file.metadata.get("written_by").map(String::as_str),
        Some("torch")
    );
    let Loaded::F32(w) = &file.tensors["0.weight"] else {
        panic!("0.weight not F32")
    };
    assert_eq!(w.shape(), &[3, 2]);
    let want: Vec<f32> = (0..6).map(|i| i as f32 * 0.25 - 0.5).collect();
    assert_eq!(w.data(), &want[..]);
    assert_eq!(
        file.tensors["1.num_batches_tracked"],
        Loaded::I64 {
            shape: vec![],
            values: vec![42]
        }
    );

    // Into parameters by name, with the counter as a counter.
    let mut weight = hlynr_nn::Param::trainable(Tensor::zeros(&[3, 2]));
    let mut bias = hlynr_nn::Param::trainable(Tensor::zeros(&[3]));
    let mut count = hlynr_nn::Param::counter(0.0);
    let mut named: Vec<NamedParamMut<'_>> = vec![
        ("0.weight".into(), &mut weight),
        ("0.bias".into(), &mut bias),
        ("1.num_batches_tracked".into(), &mut count),
    ];
    load_into(&mut named, &path, true).unwrap();
    assert_eq!(bias.value.data(), &[1.5, -2.0, 1e-3]);
    assert_eq!(count.value.data(), &[42.0]);
    assert_eq!(weight.value.data(), &want[..]);
}

/// A deliberately separate reading of the format (header length, JSON,
/// little-endian data), to check what our writer produces.
fn independent_parse(bytes: &[u8]) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + n) % 8, 0, "data buffer should start 8-byte aligned");
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = BTreeMap::new();
    let mut covered = 0;
    for (k, v) in header {
        if k == "__metadata__" {
            continue;
        }
        let off: Vec<usize> = v["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let shape: Vec<usize> = v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        covered += off[1] - off[0];
        out.insert(
            k,
            (
                v["dtype"].as_str().unwrap().to_string(),
                shape,
                data[off[0]..off[1]].to_vec(),
            ),
        );
    }
    assert_eq!(covered, data.len());
    out
}

#[test]
fn files_we_write_are_readable_by_an_independent_parser() {
    let mut rng = Rng::seed_from_u64(21);
    let net = Sequential::new()
        .with(Linear::new(3, 4, &mut rng))
        .with(Tanh::new())
        .with(Linear::new(4, 2, &mut rng));
    let mut params: Vec<NamedParam<'_>> = Vec::new();
    net.params("", &mut params);
    let count = hlynr_nn::Param::counter(7.0);
    let mut with_counter = params.clone();
    with_counter.push(("5.num_batches_tracked".into(), &count));
    let dir = std::env::temp_dir().join(format!("hlynr-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("model.safetensors");
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    save_safetensors(&path, &with_counter, &meta).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let parsed = independent_parse(&bytes);
    assert_eq!(parsed.len(), 5);
    for (name, p) in &params {
        let (dtype, shape, raw) = &parsed[name];
        assert_eq!(dtype, "F32");
        assert_eq!(shape.as_slice(), p.value.shape());
        let vals: Vec<f32> = raw
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(vals.as_slice(), p.value.data(), "{name}");
    }
    let (dtype, shape, raw) = &parsed["5.num_batches_tracked"];
    assert_eq!((dtype.as_str(), shape.len()), ("I64", 0));
    assert_eq!(i64::from_le_bytes(raw.as_slice().try_into().unwrap()), 7);
}

/// PyTorch itself loads a file we write (`safetensors.torch.load_file` and a
/// strict `load_state_dict` into the same `nn.Sequential`) and computes the
/// same output; runs when `torch` and `safetensors` are importable.
#[test]
fn pytorch_loads_our_safetensors_strictly() {
    let mut rng = Rng::seed_from_u64(22);
    let mut net = Sequential::new()
        .with(Linear::new(3, 4, &mut rng))
        .with(Tanh::new())
        .with(Linear::new(4, 2, &mut rng));
    let dir = std::env::temp_dir().join(format!("hlynr-parity-torch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    {
        let mut params: Vec<NamedParam<'_>> = Vec::new();
        net.params("", &mut params);
        save_safetensors(&path, &params, &BTreeMap::new()).unwrap();
    }
    let out = hlynr_testkit::run_python_check(
        "PyTorch load check",
        &["torch", "safetensors"],
        Path::new("scripts/record_nn_fixtures_core.py"),
        [std::ffi::OsStr::new("--check-rust-file"), path.as_os_str()],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let Some(out) = out else { return };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marker = "load_state_dict(strict=True) ok; output for ones(1, 3): ";
    let printed = stdout
        .lines()
        .find_map(|l| l.strip_prefix(marker))
        .unwrap_or_else(|| panic!("no output line in {stdout}"));
    let theirs: Vec<Vec<f64>> = serde_json::from_str(printed).unwrap();
    let ours = net.forward(&Tensor::full(&[1, 3], 1.0)).unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].len(), ours.data().len());
    for (t, o) in theirs[0].iter().zip(ours.data()) {
        assert!(
            (t - *o as f64).abs() < 1e-5,
            "torch {theirs:?} vs ours {:?}",
            ours.data()
        );
    }
}
