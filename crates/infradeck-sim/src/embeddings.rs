//! An OpenAI-compatible `/v1/embeddings` endpoint with deterministic vectors: words and character
//! trigrams hashed into signed buckets and L2-normalized, so texts that share words are close.

use super::http::json;
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

/// The dimension served when the request does not name one.
pub(crate) const DEFAULT_DIMENSIONS: usize = 384;

pub(crate) fn router() -> Router {
    Router::new().route("/v1/embeddings", post(embed))
}

fn bucket(token: &str, salt: u64) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ salt;
    for b in token.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// The vector for `text`: deterministic, unit length.
pub(crate) fn vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut v = vec![0f32; dimensions.max(1)];
    let lower = text.to_lowercase();
    for word in lower
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '.')
        .filter(|w| !w.is_empty())
    {
        let h = bucket(word, 1);
        v[(h % dimensions as u64) as usize] += if h & (1 << 63) == 0 { 1.0 } else { -1.0 };
        let chars: Vec<char> = word.chars().collect();
        for gram in chars.windows(3) {
            let g: String = gram.iter().collect();
            let h = bucket(&g, 2);
            v[(h % dimensions as u64) as usize] += if h & (1 << 63) == 0 { 0.3 } else { -0.3 };
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

async fn embed(body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                json!({"error": {"message": format!("invalid JSON: {e}"), "type": "invalid_request_error"}}),
            );
        }
    };
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            return json(
                StatusCode::BAD_REQUEST,
                json!({"error": {"message": "'input' must be a string or an array of strings", "type": "invalid_request_error"}}),
            );
        }
    };
    let dimensions = request["dimensions"]
        .as_u64()
        .map_or(DEFAULT_DIMENSIONS, |d| d as usize);
    let model = request["model"]
        .as_str()
        .unwrap_or("sim-minilm")
        .to_string();
    let tokens: usize = inputs.iter().map(|i| i.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": vector(text, dimensions)}))
        .collect();
    json(
        StatusCode::OK,
        json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}
