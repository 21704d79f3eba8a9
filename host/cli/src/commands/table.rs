//! Readable renderings of API objects.

use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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
        out += &format!("node     {}  price {}\n", s(&t["node_id"]), s(&t["price"]));
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
