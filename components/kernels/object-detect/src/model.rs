//! The classifier: a 64→H→11 multilayer perceptron (ReLU hidden layer,
//! softmax output; classes 0–9 are digits, 10 is background), its compact
//! binary format, and the trained model embedded in the kernel.

use crate::features::{Features, FEATURES, FEATURE_MAX};
use greenmesh_kernel::lanes;

/// Number of output classes: the ten digits and background.
pub const CLASSES: usize = 11;
/// The index of the background class.
pub const BACKGROUND: usize = 10;
/// Hidden units of the model in `model.bin`.
const SHIPPED_HIDDEN: usize = 64;
/// The file format's first four bytes.
const MAGIC: &[u8; 4] = b"GMLP";

/// The weights `examples/train.rs` wrote (`cargo run -p object-detect
/// --release --example train`).
static EMBEDDED: &[u8] = include_bytes!("model.bin");

/// A 64→`hidden`→11 perceptron. Inputs are the features divided by 16.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// Hidden units.
    pub hidden: usize,
    /// Input-to-hidden weights, input-major: `w1[i * hidden + j]`.
    pub w1: Vec<f32>,
    /// Hidden biases.
    pub b1: Vec<f32>,
    /// Hidden-to-output weights, hidden-major: `w2[j * CLASSES + k]`.
    pub w2: Vec<f32>,
    /// Output biases.
    pub b2: Vec<f32>,
}

impl Mlp {
    /// The model shipped in the kernel.
    pub fn embedded() -> Result<Self, String> {
        Self::from_bytes(EMBEDDED)
    }

    /// A model of `hidden` units with all weights zero.
    pub fn zeros(hidden: usize) -> Self {
        Self {
            hidden,
            w1: vec![0.0; FEATURES * hidden],
            b1: vec![0.0; hidden],
            w2: vec![0.0; hidden * CLASSES],
            b2: vec![0.0; CLASSES],
        }
    }

    /// Parses the binary format: `GMLP`, then little-endian `u32` inputs
    /// (64), hidden units and classes (11), then `w1`, `b1`, `w2`, `b2` as
    /// little-endian `f32`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let header = bytes.get(..16).ok_or("model file too short")?;
        if &header[..4] != MAGIC {
            return Err("not a GMLP model file".into());
        }
        let field = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap()) as usize;
        let (inputs, hidden, classes) = (field(4), field(8), field(12));
        if inputs != FEATURES || classes != CLASSES || hidden == 0 || hidden > 4096 {
            return Err(format!(
                "unexpected model shape {inputs}→{hidden}→{classes}"
            ));
        }
        let mut model = Self::zeros(hidden);
        let body = &bytes[16..];
        if body.len() != 4 * model.parameter_count() {
            return Err(format!(
                "model body is {} bytes, expected {}",
                body.len(),
                4 * model.parameter_count()
            ));
        }
        let mut values = body
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()));
        for slot in model.parameters_mut() {
            *slot = values.next().expect("the length was checked");
        }
        Ok(model)
    }

    /// Writes the format [`Mlp::from_bytes`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 4 * self.parameter_count());
        out.extend_from_slice(MAGIC);
        for n in [FEATURES, self.hidden, CLASSES] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for array in [&self.w1, &self.b1, &self.w2, &self.b2] {
            for v in array.iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    fn parameter_count(&self) -> usize {
        self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()
    }

    fn parameters_mut(&mut self) -> impl Iterator<Item = &mut f32> {
        self.w1
            .iter_mut()
            .chain(self.b1.iter_mut())
            .chain(self.w2.iter_mut())
            .chain(self.b2.iter_mut())
    }

    /// Adds each non-zero feature's row of `w1` into `hidden`.
    fn accumulate_hidden(&self, features: &Features, hidden: &mut [f32]) {
        for (i, &f) in features.iter().enumerate() {
            if f != 0 {
                let x = f as f32 / FEATURE_MAX as f32;
                let weights = &self.w1[i * self.hidden..(i + 1) * self.hidden];
                for (h, w) in hidden.iter_mut().zip(weights) {
                    *h += x * w;
                }
            }
        }
    }

    /// [`Mlp::accumulate_hidden`] for a model `N` units wide, with every
    /// length known at compile time.
    fn accumulate_hidden_fixed<const N: usize>(&self, features: &Features, hidden: &mut [f32; N]) {
        for (i, &f) in features.iter().enumerate() {
            if f != 0 {
                let x = f as f32 / FEATURE_MAX as f32;
                let weights: &[f32; N] = self.w1[i * N..(i + 1) * N]
                    .try_into()
                    .expect("w1 holds FEATURES rows of N");
                for (h, w) in hidden.iter_mut().zip(weights) {
                    *h += x * w;
                }
            }
        }
    }

    /// `w2` class-major (`[k * hidden + j]`), the layout
    /// [`Mlp::forward_with`] reads: each logit is then one dot product.
    pub fn w2_by_class(&self) -> Vec<f32> {
        (0..CLASSES)
            .flat_map(|k| (0..self.hidden).map(move |j| self.w2[j * CLASSES + k]))
            .collect()
    }

    /// Runs the network: fills `hidden` (length [`Mlp::hidden`]) with the
    /// hidden activations and `probabilities` with the softmax output.
    /// Zero features are skipped, which roughly halves the work on digits.
    pub fn forward(
        &self,
        features: &Features,
        hidden: &mut [f32],
        probabilities: &mut [f32; CLASSES],
    ) {
        self.forward_with(&self.w2_by_class(), features, hidden, probabilities);
    }

    /// [`Mlp::forward`] with `w2` already laid out by [`Mlp::w2_by_class`],
    /// for callers that run the network many times.
    pub fn forward_with(
        &self,
        w2_by_class: &[f32],
        features: &Features,
        hidden: &mut [f32],
        probabilities: &mut [f32; CLASSES],
    ) {
        hidden.copy_from_slice(&self.b1);
        // The shipped model's width gets a fixed-length inner loop, which
        // compiles to straight-line vector code with no loop to check
        // (sandbox 2.34 → 2.14 ms on `bench kernels`).
        match <&mut [f32; SHIPPED_HIDDEN]>::try_from(&mut *hidden) {
            Ok(fixed) => self.accumulate_hidden_fixed(features, fixed),
            Err(_) => self.accumulate_hidden(features, hidden),
        }
        for h in hidden.iter_mut() {
            *h = lanes::relu(*h);
        }
        let mut logits = [0f32; CLASSES];
        for ((l, &b), weights) in logits
            .iter_mut()
            .zip(&self.b2)
            .zip(w2_by_class.chunks_exact(self.hidden))
        {
            *l = b + lanes::dot(hidden, weights);
        }
        let max = lanes::max(&logits);
        let mut total = 0.0;
        for (p, l) in probabilities.iter_mut().zip(logits) {
            *p = (l - max).exp();
            total += *p;
        }
        for p in probabilities.iter_mut() {
            *p /= total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_round_trips_and_rejects_damage() {
        let mut model = Mlp::zeros(3);
        model.w1[5] = 1.5;
        model.b2[10] = -2.0;
        let bytes = model.to_bytes();
        assert_eq!(Mlp::from_bytes(&bytes).unwrap(), model);
        assert!(Mlp::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Mlp::from_bytes(b"GMLX").is_err());
        let mut wrong_classes = bytes.clone();
        wrong_classes[12] = 10;
        assert!(Mlp::from_bytes(&wrong_classes).is_err());
    }

    #[test]
    fn forward_computes_relu_then_softmax() {
        // One hidden unit that copies feature 0 (scaled by 1/16) and votes
        // for class 3 with weight ln(9) per unit of activation.
        let mut model = Mlp::zeros(1);
        model.w1[0] = 1.0;
        model.w2[3] = 9f32.ln();
        let mut features = [0u8; FEATURES];
        features[0] = 16;
        let mut hidden = [0f32; 1];
        let mut p = [0f32; CLASSES];
        model.forward(&features, &mut hidden, &mut p);
        assert_eq!(hidden[0], 1.0);
        // exp(ln 9) = 9 against ten classes at exp(0) = 1.
        assert!((p[3] - 9.0 / 19.0).abs() < 1e-6);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // A negative pre-activation is cut to zero: uniform output.
        model.w1[0] = -1.0;
        model.forward(&features, &mut hidden, &mut p);
        assert_eq!(hidden[0], 0.0);
        assert!(p.iter().all(|&v| (v - 1.0 / 11.0).abs() < 1e-6));
    }

    #[test]
    fn the_embedded_model_loads() {
        let model = Mlp::embedded().unwrap();
        assert_eq!(model.b2.len(), CLASSES);
    }
}
