//! The BERT encoder all-MiniLM-L6-v2 is (6 layers, 12 heads, 384 wide), over candle-nn, with
//! the sentence-transformers head: the mean of the token vectors under the attention mask,
//! scaled to length 1.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, Module, VarBuilder, embedding, layer_norm, linear};

/// What `config.json` says about the shape; checked against the expected model at load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shape {
    pub(crate) vocab: usize,
    pub(crate) hidden: usize,
    pub(crate) layers: usize,
    pub(crate) heads: usize,
    pub(crate) intermediate: usize,
    pub(crate) positions: usize,
    pub(crate) token_types: usize,
    pub(crate) eps: f64,
}

impl Shape {
    pub(crate) fn from_config(config: &serde_json::Value) -> Option<Shape> {
        let n = |key: &str| config.get(key)?.as_u64().map(|v| v as usize);
        Some(Shape {
            vocab: n("vocab_size")?,
            hidden: n("hidden_size")?,
            layers: n("num_hidden_layers")?,
            heads: n("num_attention_heads")?,
            intermediate: n("intermediate_size")?,
            positions: n("max_position_embeddings")?,
            token_types: n("type_vocab_size")?,
            eps: config.get("layer_norm_eps")?.as_f64()?,
        })
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

pub(crate) struct Bert {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_size: usize,
}

impl Bert {
    /// The weights as the checkpoint names them (`embeddings.word_embeddings.weight`,
    /// `encoder.layer.0.attention.self.query.weight`, ...; no `bert.` prefix).
    pub(crate) fn load(vb: VarBuilder, shape: &Shape) -> Result<Bert> {
        let h = shape.hidden;
        let e = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(shape.layers);
        for i in 0..shape.layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let attention = l.pp("attention");
            layers.push(Layer {
                query: linear(h, h, attention.pp("self.query"))?,
                key: linear(h, h, attention.pp("self.key"))?,
                value: linear(h, h, attention.pp("self.value"))?,
                attention_out: linear(h, h, attention.pp("output.dense"))?,
                attention_norm: layer_norm(h, shape.eps, attention.pp("output.LayerNorm"))?,
                intermediate: linear(h, shape.intermediate, l.pp("intermediate.dense"))?,
                out: linear(shape.intermediate, h, l.pp("output.dense"))?,
                out_norm: layer_norm(h, shape.eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            words: embedding(shape.vocab, h, e.pp("word_embeddings"))?,
            positions: embedding(shape.positions, h, e.pp("position_embeddings"))?,
            token_types: embedding(shape.token_types, h, e.pp("token_type_embeddings"))?,
            embeddings_norm: layer_norm(h, shape.eps, e.pp("LayerNorm"))?,
            layers,
            heads: shape.heads,
            head_size: h / shape.heads,
        })
    }

    /// Sentence vectors for a padded batch: `ids` and `mask` are (batch, tokens), `mask` 1 for a
    /// token and 0 for padding. Each row of the answer has length 1.
    pub(crate) fn sentence_vectors(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        let device = ids.device();
        let positions = Tensor::arange(0u32, tokens as u32, device)?.unsqueeze(0)?;
        let types = ids.zeros_like()?;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .add(&self.token_types.forward(&types)?)?;
        let mut x = self.embeddings_norm.forward(&x)?;
        // Padding gets a large negative score before the softmax, so no token attends to it.
        let mask_f = mask.to_dtype(DType::F32)?;
        let bias =
            ((mask_f.ones_like()? - &mask_f)? * -10_000.0)?.reshape((batch, 1, 1, tokens))?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &bias, batch, tokens)?;
        }
        // Masked mean over the tokens, then L2 normalisation.
        let weights = mask_f.unsqueeze(2)?; // (batch, tokens, 1)
        let summed = x.broadcast_mul(&weights)?.sum(1)?; // (batch, hidden)
        let counts = weights.sum(1)?.clamp(1e-9, f64::MAX)?; // (batch, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norms)
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        bias: &Tensor,
        batch: usize,
        tokens: usize,
    ) -> Result<Tensor> {
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((batch, tokens, self.heads, self.head_size))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(dense(&layer.query, x)?)?;
        let k = split(dense(&layer.key, x)?)?;
        let v = split(dense(&layer.value, x)?)?;
        let scale = (self.head_size as f64).sqrt();
        let scores = (q.matmul(&k.t()?.contiguous()?)? / scale)?.broadcast_add(bias)?;
        let attention = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = attention
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch, tokens, self.heads * self.head_size))?;
        let attended = layer
            .attention_norm
            .forward(&(dense(&layer.attention_out, &context)? + x)?)?;
        // BERT's "gelu" is the exact (erf) one, not the tanh approximation.
        let inner = dense(&layer.intermediate, &attended)?.gelu_erf()?;
        layer
            .out_norm
            .forward(&(dense(&layer.out, &inner)? + &attended)?)
    }
}

/// A dense layer over (batch, tokens, features) as one 2-D matrix product: candle's `Linear`
/// on a 3-D input broadcasts the weight per batch row, which measured about twice as slow.
fn dense(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    let (batch, tokens, features) = x.dims3()?;
    layer
        .forward(&x.reshape((batch * tokens, features))?)?
        .reshape((batch, tokens, ()))
}

/// The device everything runs on: the CPU (no native accelerators are linked).
pub(crate) fn cpu() -> Device {
    Device::Cpu
}
