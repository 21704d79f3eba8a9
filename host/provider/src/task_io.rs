//! How a task's `inputs` become kernel bytes, and kernel bytes a result.
//!
//! Inputs (the task's `inputs` object):
//! - `data`: the bytes, base64, or `{"blob": "sha256:<hex>"}` for an
//!   uploaded blob; or `text`: a UTF-8 string (default type `text/plain`);
//! - `media_type`: their type (default: the kernel's first input type);
//! - `params`: the kernel's parameters (an object; default `{}`).
//!
//! With neither `data` nor `text`, the kernel receives the whole `inputs`
//! object as `application/json`. `wasm_module` (base64) is the component
//! for `wasm_execution` tasks.
//!
//! The result's `output` is JSON text: `{"media_type", "json"}` when the
//! kernel answered JSON, else `{"media_type", "base64"}`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

/// Where the task's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Inline(Vec<u8>),
    /// A blob to fetch, by SHA-256 (hex).
    Blob(String),
}

/// A decoded task input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInput {
    pub data: Data,
    pub media_type: Option<String>,
    /// The `params` object as JSON text.
    pub params: String,
    /// The user's component, for `wasm_execution`.
    pub wasm_module: Option<Vec<u8>>,
}

/// Decodes the lease's input text (`{"inputs": ..., "wasm_module": ...}`).
pub fn parse(input_text: &str) -> Result<TaskInput, String> {
    let v: Value =
        serde_json::from_str(input_text).map_err(|e| format!("input is not JSON: {e}"))?;
    let inputs = &v["inputs"];
    let wasm_module = match &v["wasm_module"] {
        Value::Null => None,
        Value::String(s) => Some(
            BASE64
                .decode(s.trim())
                .map_err(|e| format!("wasm_module is not base64: {e}"))?,
        ),
        _ => return Err("wasm_module must be a base64 string".into()),
    };
    let media_type = match &inputs["media_type"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => return Err("inputs.media_type must be a string".into()),
    };
    let params = match &inputs["params"] {
        Value::Null => "{}".to_string(),
        p @ Value::Object(_) => p.to_string(),
        _ => return Err("inputs.params must be an object".into()),
    };
    let (data, media_type) = match (&inputs["data"], &inputs["text"]) {
        (Value::String(s), _) => (
            Data::Inline(
                BASE64
                    .decode(s.trim())
                    .map_err(|e| format!("inputs.data is not base64: {e}"))?,
            ),
            media_type,
        ),
        (Value::Object(o), _) => {
            let reference = o
                .get("blob")
                .and_then(Value::as_str)
                .ok_or("inputs.data must be base64 or {\"blob\": \"sha256:<hex>\"}")?;
            let hex = reference
                .strip_prefix("sha256:")
                .ok_or("inputs.data.blob must look like sha256:<hex>")?;
            (Data::Blob(hex.to_string()), media_type)
        }
        (Value::Null, Value::String(t)) => (
            Data::Inline(t.clone().into_bytes()),
            media_type.or(Some("text/plain".into())),
        ),
        (Value::Null, Value::Null) => (
            Data::Inline(inputs.to_string().into_bytes()),
            media_type.or(Some("application/json".into())),
        ),
        _ => {
            return Err(
                "inputs.data must be base64 or a blob reference; inputs.text a string".into(),
            )
        }
    };
    Ok(TaskInput {
        data,
        media_type,
        params,
        wasm_module,
    })
}

/// The result's `output` text for a kernel's answer.
pub fn output_text(media_type: &str, bytes: &[u8]) -> String {
    if media_type == "application/json" {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            return json!({ "media_type": media_type, "json": value }).to_string();
        }
    }
    json!({ "media_type": media_type, "base64": BASE64.encode(bytes) }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_decode_inline_blob_text_and_json() {
        let png = BASE64.encode([0x89, b'P', b'N', b'G']);
        let t = parse(&format!(
            r#"{{"inputs":{{"data":"{png}","media_type":"image/png","params":{{"filter":"sobel"}}}},"wasm_module":null}}"#
        ))
        .unwrap();
        assert_eq!(t.data, Data::Inline(vec![0x89, b'P', b'N', b'G']));
        assert_eq!(t.media_type.as_deref(), Some("image/png"));
        assert_eq!(t.params, r#"{"filter":"sobel"}"#);

        let t =
            parse(r#"{"inputs":{"data":{"blob":"sha256:abcd"}},"wasm_module":"AAEC"}"#).unwrap();
        assert_eq!(t.data, Data::Blob("abcd".into()));
        assert_eq!(t.wasm_module, Some(vec![0, 1, 2]));
        assert_eq!(t.params, "{}");

        let t = parse(r#"{"inputs":{"text":"hi"}}"#).unwrap();
        assert_eq!(
            (t.data, t.media_type.as_deref()),
            (Data::Inline(b"hi".to_vec()), Some("text/plain"))
        );

        let t = parse(r#"{"inputs":{"n":1}}"#).unwrap();
        assert_eq!(t.data, Data::Inline(br#"{"n":1}"#.to_vec()));
        assert_eq!(t.media_type.as_deref(), Some("application/json"));
    }

    #[test]
    fn bad_inputs_name_the_field() {
        for (text, needle) in [
            (r#"{"inputs":{"data":"***"}}"#, "inputs.data"),
            (r#"{"inputs":{"data":{"blob":"md5:x"}}}"#, "sha256"),
            (r#"{"inputs":{"params":[1]}}"#, "inputs.params"),
            (r#"{"inputs":{},"wasm_module":"%%"}"#, "wasm_module"),
            ("nope", "not JSON"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn json_outputs_stay_readable_and_others_are_base64() {
        let v: Value = serde_json::from_str(&output_text(
            "application/json",
            br#"{"bounding_boxes":[]}"#,
        ))
        .unwrap();
        assert_eq!(v["json"]["bounding_boxes"], json!([]));
        let v: Value = serde_json::from_str(&output_text("image/png", &[1, 2])).unwrap();
        assert_eq!(v["base64"], "AQI=");
    }
}
