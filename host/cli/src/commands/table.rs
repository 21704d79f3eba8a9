//! Readable renderings of API objects.

use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A price in credits, rounded to what a person reads (two decimals).
pub fn price(v: &Value) -> String {
    match v.as_f64() {
        Some(p) => format!("{p:.2}"),
        None => s(v),
    }
}

/// A task's output as bytes: base64 decoded, JSON as text, text as is;
/// with its media type.
pub fn output_bytes(t: &Value) -> anyhow::Result<(Vec<u8>, String)> {
    use base64::Engine as _;
    let raw = t["result"]["output"].as_str().ok_or_else(|| {
        anyhow::anyhow!(
            "task {} has no output (status {})",
            s(&t["id"]),
            s(&t["status"])
        )
    })?;
    let Ok(out) = serde_json::from_str::<Value>(raw) else {
        return Ok((raw.as_bytes().to_vec(), "text/plain".into()));
    };
    let media_type = out["media_type"]
        .as_str()
        .unwrap_or("application/octet-stream")
        .to_string();
    let bytes = if let Some(b64) = out["base64"].as_str() {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| anyhow::anyhow!("the output's base64 does not decode: {e}"))?
    } else if let Some(text) = out["text"].as_str() {
        text.as_bytes().to_vec()
    } else if !out["json"].is_null() {
        serde_json::to_vec_pretty(&out["json"])?
    } else {
        raw.as_bytes().to_vec()
    };
    Ok((bytes, media_type))
}

/// One task.
pub fn task(t: &Value) -> String {
    let mut out = format!(
        "task     {}\ntype     {} ({})\nstatus   {}\n",
        s(&t["id"]),
        s(&t["task_type"]),
        s(&t["capability"]),
        s(&t["status"])
    );
    if !t["reason"].is_null() {
        out += &format!("reason   {}\n", s(&t["reason"]));
    }
    if !t["node_id"].is_null() {
        out += &format!(
            "node     {}  price {}\n",
            s(&t["node_id"]),
            price(&t["price"])
        );
    }
    if let Some(why) = t["decision"]["chosen"]["why"].as_str() {
        out += &format!("why      {why}\n");
    }
    for m in t["group"]["members"].as_array().into_iter().flatten() {
        out += &format!(
            "member   shard {} {:<10} {}  output {}\n",
            s(&m["shard"]),
            s(&m["status"]),
            s(&m["node_id"]),
            s(&m["output_sha256"])
        );
    }
    if !t["result"].is_null() {
        match t["result"]["outputs"].as_array() {
            Some(outputs) => {
                for (i, o) in outputs.iter().enumerate() {
                    out += &format!("output   [{i}] {}\n", s(o));
                }
            }
            None => out += &format!("output   {}\n", s(&t["result"]["output"])),
        }
    }
    if let Some(proof) = t["result"]["proof_id"].as_str() {
        out += &format!("proof    {proof}  (greenmesh proof get {proof})\n");
    }
    out.trim_end().to_string()
}

/// A task list.
pub fn tasks(v: &Value) -> String {
    let mut out = format!("{:<24} {:<18} {:<10} {}\n", "ID", "TYPE", "STATUS", "NODE");
    for t in v["tasks"].as_array().into_iter().flatten() {
        out += &format!(
            "{:<24} {:<18} {:<10} {}\n",
            s(&t["id"]),
            s(&t["task_type"]),
            s(&t["status"]),
            s(&t["node_id"])
        );
    }
    out.trim_end().to_string()
}

/// A precheck decision.
pub fn decision(v: &Value) -> String {
    let d = &v["decision"];
    let mut out = format!("eligible {}\n", s(&v["eligible"]));
    if let Some(why) = d["chosen"]["why"].as_str() {
        out += &format!("chosen   {}: {why}\n", s(&d["chosen"]["node_id"]));
    }
    for x in d["declined"].as_array().into_iter().flatten() {
        out += &format!("declined {}: {}\n", s(&x["node_id"]), s(&x["reason"]));
    }
    if !d["reason"].is_null() {
        out += &format!("reason   {}\n", s(&d["reason"]));
    }
    out.trim_end().to_string()
}

/// A node list.
pub fn nodes(v: &Value) -> String {
    let mut out = format!(
        "{:<22} {:<20} {:<8} {:<8} {:>6} {}\n",
        "ID", "NAME", "REGION", "STATUS", "CLEAN", "CAPABILITIES"
    );
    for n in v["nodes"].as_array().into_iter().flatten() {
        let caps: Vec<String> = n["capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| s(&c["name"]))
            .collect();
        out += &format!(
            "{:<22} {:<20} {:<8} {:<8} {:>5.0}% {}\n",
            s(&n["id"]),
            s(&n["name"]),
            s(&n["region"]),
            s(&n["status"]),
            n["energy"]["clean_share"].as_f64().unwrap_or(0.0) * 100.0,
            caps.join(",")
        );
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_print_rounded_and_outputs_decode() {
        assert_eq!(price(&json!(1.234567)), "1.23");
        assert_eq!(price(&Value::Null), "-");
        let png = json!({ "result": { "output": json!({ "media_type": "image/png", "base64": "iVBORw==" }).to_string() } });
        assert_eq!(
            output_bytes(&png).unwrap(),
            (vec![0x89, b'P', b'N', b'G'], "image/png".to_string())
        );
        let answer = json!({ "result": { "output": json!({ "media_type": "application/json", "json": { "a": 1 } }).to_string() } });
        assert_eq!(output_bytes(&answer).unwrap().0, b"{\n  \"a\": 1\n}");
        assert!(output_bytes(&json!({ "id": "t", "status": "queued" })).is_err());
    }
}
