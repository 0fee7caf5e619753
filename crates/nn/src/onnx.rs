//! ONNX models written from weights in PyTorch layout.
//!
//! [`OnnxGraph`] builds one inference graph (inputs, weights stored as
//! initializers, nodes, outputs) and serialises it as an ONNX `ModelProto`
//! (IR version 8, default-domain opset [`OPSET`]) that onnxruntime and the
//! `onnx` checker load. The protobuf messages below are the subset of
//! `onnx.proto` an inference graph needs, with that file's field numbers.
//!
//! The layer helpers take parameters exactly as the layers of this crate hold
//! them (PyTorch's layouts) and emit the equivalent ONNX operators:
//! [`OnnxGraph::linear`] (`Gemm` with the `[out, in]` weight transposed),
//! [`OnnxGraph::conv2d`], [`OnnxGraph::layer_norm`] (`LayerNormalization`,
//! opset 17) and [`OnnxGraph::lstm_step`] (ONNX `LSTM`, whose gates are ordered
//! input, output, forget, cell where PyTorch's are input, forget, cell,
//! output: the weights are reordered here, once).

use prost::Message;

use crate::conv2d::Conv2dSpec;
use crate::error::{NnError, Result};
use crate::tensor::Tensor;

/// The default-domain operator set the graphs use (17: the first with
/// `LayerNormalization`).
pub const OPSET: i64 = 17;

/// ONNX IR version 8 (the format of opsets 14 to 18).
const IR_VERSION: i64 = 8;

// ------------------------------------------------------------ messages ----

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(string, tag = "3")]
    producer_version: String,
    #[prost(string, tag = "6")]
    doc_string: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

#[derive(Clone, PartialEq, Message)]
struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

/// `AttributeProto.AttributeType` values.
const ATTR_FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;
const ATTR_INTS: i32 = 7;

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(float, optional, tag = "2")]
    f: Option<f32>,
    #[prost(int64, optional, tag = "3")]
    i: Option<i64>,
    #[prost(int64, repeated, tag = "8")]
    ints: Vec<i64>,
    #[prost(int32, tag = "20")]
    r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
    /// Little-endian values, row-major.
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    doc_string: String,
}

/// `TypeProto` with its only member used here, `tensor_type` (a oneof of
/// one member encodes as this optional field).
#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<DimensionProto>,
}

/// `TensorShapeProto.Dimension`: a size or a symbolic name (the oneof's two
/// members, one set).
#[derive(Clone, PartialEq, Message)]
struct DimensionProto {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

// ------------------------------------------------------------- builder ----

/// Element type of a graph input, output or constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    /// `float`.
    F32,
    /// `uint8`.
    U8,
    /// `int64`.
    I64,
    /// `double`.
    F64,
}

impl ElemType {
    /// The type's name in ONNX's documentation (`float`, `uint8`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "float",
            ElemType::U8 => "uint8",
            ElemType::I64 => "int64",
            ElemType::F64 => "double",
        }
    }

    /// The `TensorProto.DataType` code.
    fn code(self) -> i32 {
        match self {
            ElemType::F32 => 1,
            ElemType::U8 => 2,
            ElemType::I64 => 7,
            ElemType::F64 => 11,
        }
    }
}

/// One axis of a graph input or output: a fixed size, or a named size the
/// caller chooses (the batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A size named by the caller, the same wherever the name appears.
    Named(String),
}

/// An operator attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// One integer.
    Int(i64),
    /// One float.
    Float(f32),
    /// A list of integers.
    Ints(Vec<i64>),
}

/// An inference graph being built (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct OnnxGraph {
    name: String,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    /// Every name given out so far (value names are unique in a graph).
    names: std::collections::HashSet<String>,
}

fn value_info(name: &str, ty: ElemType, dims: &[Dim], doc: &str) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => DimensionProto {
                dim_value: Some(*n as i64),
                dim_param: None,
            },
            Dim::Named(s) => DimensionProto {
                dim_value: None,
                dim_param: Some(s.clone()),
            },
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: ty.code(),
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: doc.to_string(),
    }
}

impl OnnxGraph {
    /// An empty graph called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// A fresh value name from `hint` (the hint itself when still free).
    fn fresh(&mut self, hint: &str) -> String {
        let mut name = hint.to_string();
        let mut k = 1;
        while self.names.contains(&name) {
            name = format!("{hint}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// Declares a graph input; returns its value name (`name` itself, which
    /// must be free).
    pub fn input(&mut self, name: &str, ty: ElemType, dims: &[Dim], doc: &str) -> Result<String> {
        if self.names.contains(name) {
            return Err(NnError::invalid(
                "OnnxGraph::input",
                format!("the name `{name}` is taken"),
            ));
        }
        self.names.insert(name.to_string());
        self.inputs.push(value_info(name, ty, dims, doc));
        Ok(name.to_string())
    }

    /// Declares the value `value` a graph output called `name` (through an
    /// `Identity` node, so internal names never leak into the interface).
    pub fn output(
        &mut self,
        value: &str,
        name: &str,
        ty: ElemType,
        dims: &[Dim],
        doc: &str,
    ) -> Result<()> {
        if self.names.contains(name) {
            return Err(NnError::invalid(
                "OnnxGraph::output",
                format!("the name `{name}` is taken"),
            ));
        }
        self.names.insert(name.to_string());
        self.nodes.push(NodeProto {
            input: vec![value.to_string()],
            output: vec![name.to_string()],
            name: format!("output_{name}"),
            op_type: "Identity".into(),
            attribute: Vec::new(),
        });
        self.outputs.push(value_info(name, ty, dims, doc));
        Ok(())
    }

    fn constant(&mut self, hint: &str, ty: ElemType, dims: &[usize], raw: Vec<u8>) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: ty.code(),
            name: name.clone(),
            raw_data: raw,
        });
        name
    }

    /// A `float` constant of shape `dims` (row-major `data`).
    pub fn const_f32(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> Result<String> {
        check_count(hint, dims, data.len())?;
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(self.constant(hint, ElemType::F32, dims, raw))
    }

    /// A `double` constant of shape `dims`.
    pub fn const_f64(&mut self, hint: &str, dims: &[usize], data: &[f64]) -> Result<String> {
        check_count(hint, dims, data.len())?;
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(self.constant(hint, ElemType::F64, dims, raw))
    }

    /// An `int64` constant of shape `dims`.
    pub fn const_i64(&mut self, hint: &str, dims: &[usize], data: &[i64]) -> Result<String> {
        check_count(hint, dims, data.len())?;
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(self.constant(hint, ElemType::I64, dims, raw))
    }

    /// A tensor of this crate as a `float` constant of its shape.
    pub fn const_tensor(&mut self, hint: &str, t: &Tensor) -> Result<String> {
        self.const_f32(hint, t.shape(), t.data())
    }

    /// One node of `op_type` with one output; returns the output's name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        self.op_n(op_type, inputs, attrs, 1).remove(0)
    }

    /// One node of `op_type` with `outputs` outputs (an empty input name is
    /// an omitted optional input, as ONNX spells it).
    pub fn op_n(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: &[(&str, Attr)],
        outputs: usize,
    ) -> Vec<String> {
        let out: Vec<String> = (0..outputs)
            .map(|_| self.fresh(&op_type.to_lowercase()))
            .collect();
        let attribute = attrs
            .iter()
            .map(|(name, a)| {
                let mut p = AttributeProto {
                    name: name.to_string(),
                    ..AttributeProto::default()
                };
                match a {
                    Attr::Int(i) => {
                        p.i = Some(*i);
                        p.r#type = ATTR_INT;
                    }
                    Attr::Float(f) => {
                        p.f = Some(*f);
                        p.r#type = ATTR_FLOAT;
                    }
                    Attr::Ints(v) => {
                        p.ints = v.clone();
                        p.r#type = ATTR_INTS;
                    }
                }
                p
            })
            .collect();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: out.clone(),
            name: out[0].clone(),
            op_type: op_type.to_string(),
            attribute,
        });
        out
    }

    /// `x` converted to `to`.
    pub fn cast(&mut self, x: &str, to: ElemType) -> String {
        self.op("Cast", &[x], &[("to", Attr::Int(i64::from(to.code())))])
    }

    /// Columns `start..end` of the `[N, C]` value `x`.
    pub fn slice_cols(&mut self, x: &str, start: usize, end: usize) -> Result<String> {
        let s = self.const_i64("starts", &[1], &[start as i64])?;
        let e = self.const_i64("ends", &[1], &[end as i64])?;
        let axes = self.const_i64("axes", &[1], &[1])?;
        Ok(self.op("Slice", &[x, &s, &e, &axes], &[]))
    }

    /// `[x, weight, bias]` (the bias when there is one) as the inputs of a
    /// node, the parameters stored as constants named under `prefix`.
    fn weight_inputs(
        &mut self,
        prefix: &str,
        x: &str,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<Vec<String>> {
        let mut inputs = vec![
            x.to_string(),
            self.const_tensor(&format!("{prefix}weight"), weight)?,
        ];
        if let Some(bias) = bias {
            inputs.push(self.const_tensor(&format!("{prefix}bias"), bias)?);
        }
        Ok(inputs)
    }

    /// `x W^T + b` for a `Linear` of weight `[out, in]` and bias `[out]`.
    pub fn linear(
        &mut self,
        prefix: &str,
        x: &str,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<String> {
        let inputs = self.weight_inputs(prefix, x, weight, bias)?;
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op("Gemm", &inputs, &[("transB", Attr::Int(1))]))
    }

    /// `LayerNorm` over the last axis, `eps` inside the square root.
    pub fn layer_norm(
        &mut self,
        prefix: &str,
        x: &str,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
    ) -> Result<String> {
        let w = self.const_tensor(&format!("{prefix}weight"), weight)?;
        let b = self.const_tensor(&format!("{prefix}bias"), bias)?;
        Ok(self.op(
            "LayerNormalization",
            &[x, &w, &b],
            &[("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))],
        ))
    }

    /// A zero-padded 2-D convolution of `spec` on `[N, C, H, W]`, weight
    /// `[O, C, kh, kw]`, optional bias `[O]`.
    pub fn conv2d(
        &mut self,
        prefix: &str,
        x: &str,
        spec: &Conv2dSpec,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<String> {
        let inputs = self.weight_inputs(prefix, x, weight, bias)?;
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let (ph, pw) = (spec.padding.0 as i64, spec.padding.1 as i64);
        Ok(self.op(
            "Conv",
            &inputs,
            &[
                (
                    "kernel_shape",
                    Attr::Ints(vec![spec.kernel.0 as i64, spec.kernel.1 as i64]),
                ),
                (
                    "strides",
                    Attr::Ints(vec![spec.stride.0 as i64, spec.stride.1 as i64]),
                ),
                ("pads", Attr::Ints(vec![ph, pw, ph, pw])),
            ],
        ))
    }

    /// One step of a PyTorch-layout LSTM (`weight_ih [4H, I]`, `weight_hh
    /// [4H, H]`, `bias_ih`, `bias_hh [4H]`, gates i, f, g, o) on `x [N, I]`
    /// from the state `h`, `c` (`[N, H]` each); returns the next `(h, c)`.
    #[allow(clippy::too_many_arguments)]
    pub fn lstm_step(
        &mut self,
        prefix: &str,
        x: &str,
        h: &str,
        c: &str,
        weight_ih: &Tensor,
        weight_hh: &Tensor,
        bias_ih: &Tensor,
        bias_hh: &Tensor,
    ) -> Result<(String, String)> {
        let hidden = weight_hh.shape().last().copied().unwrap_or(0);
        let rows = 4 * hidden;
        if hidden == 0
            || weight_ih.rows() != rows
            || weight_hh.shape() != [rows, hidden]
            || bias_ih.len() != rows
            || bias_hh.len() != rows
        {
            return Err(NnError::invalid(
                "OnnxGraph::lstm_step",
                format!(
                    "LSTM weights of shapes {:?}, {:?}, {:?}, {:?} do not make a layer",
                    weight_ih.shape(),
                    weight_hh.shape(),
                    bias_ih.shape(),
                    bias_hh.shape()
                ),
            ));
        }
        let input = weight_ih.cols();
        let w = reorder_gates(weight_ih.data(), hidden, input);
        let r = reorder_gates(weight_hh.data(), hidden, hidden);
        let mut b = reorder_gates(bias_ih.data(), hidden, 1);
        b.extend(reorder_gates(bias_hh.data(), hidden, 1));
        let w = self.const_f32(&format!("{prefix}W"), &[1, rows, input], &w)?;
        let r = self.const_f32(&format!("{prefix}R"), &[1, rows, hidden], &r)?;
        let b = self.const_f32(&format!("{prefix}B"), &[1, 2 * rows], &b)?;
        let axis0 = self.const_i64("axis0", &[1], &[0])?;
        let x3 = self.op("Unsqueeze", &[x, &axis0], &[]);
        let h3 = self.op("Unsqueeze", &[h, &axis0], &[]);
        let c3 = self.op("Unsqueeze", &[c, &axis0], &[]);
        let out = self.op_n(
            "LSTM",
            &[&x3, &w, &r, &b, "", &h3, &c3],
            &[("hidden_size", Attr::Int(hidden as i64))],
            3,
        );
        let h_next = self.op("Squeeze", &[&out[1], &axis0], &[]);
        let c_next = self.op("Squeeze", &[&out[2], &axis0], &[]);
        Ok((h_next, c_next))
    }

    /// The serialised `ModelProto`, with `metadata` as its metadata
    /// properties.
    pub fn to_bytes(
        &self,
        producer_version: &str,
        doc: &str,
        metadata: &[(&str, String)],
    ) -> Vec<u8> {
        let model = ModelProto {
            ir_version: IR_VERSION,
            producer_name: "hlynr".into(),
            producer_version: producer_version.into(),
            doc_string: doc.into(),
            graph: Some(GraphProto {
                node: self.nodes.clone(),
                name: self.name.clone(),
                initializer: self.initializers.clone(),
                input: self.inputs.clone(),
                output: self.outputs.clone(),
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.to_string(),
                    value: v.clone(),
                })
                .collect(),
        };
        model.encode_to_vec()
    }

    /// Number of nodes so far.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Operator types of the nodes, in order.
    pub fn op_types(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.op_type.as_str()).collect()
    }
}

fn check_count(hint: &str, dims: &[usize], len: usize) -> Result<()> {
    let want: usize = dims.iter().product();
    if want != len {
        return Err(NnError::invalid(
            "OnnxGraph constant",
            format!("`{hint}` of shape {dims:?} needs {want} values, got {len}"),
        ));
    }
    Ok(())
}

/// Rows of a `[4H, cols]` LSTM parameter in PyTorch's gate order (i, f, g,
/// o) reordered to ONNX's (i, o, f, c).
fn reorder_gates(data: &[f32], hidden: usize, cols: usize) -> Vec<f32> {
    let block = hidden * cols;
    let gate = |k: usize| &data[k * block..(k + 1) * block];
    [gate(0), gate(3), gate(1), gate(2)].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_move_from_pytorch_order_to_onnx_order() {
        // Hidden 1, one column: i=0, f=1, g=2, o=3 become i, o, f, c.
        assert_eq!(
            reorder_gates(&[0.0, 1.0, 2.0, 3.0], 1, 1),
            vec![0.0, 3.0, 1.0, 2.0]
        );
        // Blocks of hidden x cols stay whole.
        let data: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let r = reorder_gates(&data, 2, 2);
        assert_eq!(&r[..4], &data[..4]);
        assert_eq!(&r[4..8], &data[12..16]);
        assert_eq!(&r[8..12], &data[4..8]);
        assert_eq!(&r[12..], &data[8..12]);
    }

    #[test]
    fn a_graph_round_trips_through_protobuf() {
        let mut g = OnnxGraph::new("t");
        let x = g
            .input(
                "x",
                ElemType::F32,
                &[Dim::Named("batch".into()), Dim::Fixed(2)],
                "",
            )
            .unwrap();
        let y = g
            .linear(
                "l.",
                &x,
                &Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
                None,
            )
            .unwrap();
        g.output(
            &y,
            "y",
            ElemType::F32,
            &[Dim::Named("batch".into()), Dim::Fixed(2)],
            "",
        )
        .unwrap();
        assert!(
            g.input("y", ElemType::F32, &[], "").is_err(),
            "names are unique"
        );
        let bytes = g.to_bytes("0", "doc", &[("k", "v".into())]);
        let back = ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = back.graph.unwrap();
        assert_eq!(graph.node.len(), 2);
        assert_eq!(graph.node[0].op_type, "Gemm");
        assert_eq!(graph.initializer[0].raw_data.len(), 16);
        assert_eq!(back.opset_import[0].version, OPSET);
        assert_eq!(back.metadata_props[0].value, "v");
        assert!(g.const_f32("bad", &[3], &[1.0]).is_err());
    }
}
