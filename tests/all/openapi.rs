//! The server against `docs/openapi.json`: a scenario calls every documented
//! operation; each response's status must be documented for that operation
//! and its JSON body must match the documented schema; every documented
//! operation must have been exercised.

use bytes::Bytes;
use greenmesh_tests::node::{register_user, TestNode};
use greenmesh_tests::{send_with, tests_dir, Reply, Start};
use serde_json::{json, Value};
use std::collections::BTreeSet;

struct Spec {
    doc: Value,
    seen: BTreeSet<(String, String)>,
}

impl Spec {
    fn load() -> Self {
        let text = std::fs::read_to_string(tests_dir().join("../docs/openapi.json")).unwrap();
        Self {
            doc: serde_json::from_str(&text).unwrap(),
            seen: BTreeSet::new(),
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &self.doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn validate(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if let Some(all) = schema["allOf"].as_array() {
            for part in all {
                self.validate(part, v, at)?;
            }
            return Ok(());
        }
        if let Some(options) = schema["oneOf"].as_array() {
            return if options.iter().any(|o| self.validate(o, v, at).is_ok()) {
                Ok(())
            } else {
                Err(format!("{at}: {v} matches none of oneOf"))
            };
        }
        let type_ok = |t: &str| match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => true,
        };
        match &schema["type"] {
            Value::String(t) if !type_ok(t) => return Err(format!("{at}: expected {t}, got {v}")),
            Value::Array(ts) if !ts.iter().any(|t| type_ok(t.as_str().unwrap_or(""))) => {
                return Err(format!("{at}: expected one of {ts:?}, got {v}"))
            }
            _ => {}
        }
        if let Some(values) = schema["enum"].as_array() {
            if !values.contains(v) {
                return Err(format!("{at}: {v} not in {values:?}"));
            }
        }
        if let Some(obj) = v.as_object() {
            for req in schema["required"].as_array().into_iter().flatten() {
                let key = req.as_str().unwrap();
                if !obj.contains_key(key) {
                    return Err(format!("{at}: missing required `{key}`"));
                }
            }
            if let Some(props) = schema["properties"].as_object() {
                for (k, sub) in props {
                    if let Some(child) = obj.get(k) {
                        self.validate(sub, child, &format!("{at}.{k}"))?;
                    }
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
            for (i, child) in arr.iter().enumerate() {
                self.validate(items, child, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    /// Checks one exchange against the operation `method template`.
    fn check(&mut self, method: &str, template: &str, reply: &Reply) {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        self.seen
            .insert((method.to_ascii_lowercase(), template.to_string()));
        let documented = &op["responses"][reply.status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {template} answered {} which is not documented: {}",
            reply.status,
            reply.text()
        );
        if let Some(schema) = documented["content"]["application/json"].get("schema") {
            let body: Value = serde_json::from_slice(&reply.body)
                .unwrap_or_else(|e| panic!("{method} {template}: not JSON ({e})"));
            self.validate(schema, &body, "body")
                .unwrap_or_else(|e| panic!("{method} {template} {}: {e}", reply.status));
        }
    }

    fn unexercised(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for (path, ops) in self.doc["paths"].as_object().unwrap() {
            for method in ops
                .as_object()
                .unwrap()
                .keys()
                .filter(|m| *m != "parameters")
            {
                if !self.seen.contains(&(method.clone(), path.clone())) {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        missing
    }
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::coordinator(dir.path()).env("SPIN_VARIABLE_ADMIN_TOKEN", "openapi-admin");
    let app = start.start().await.unwrap();
    let mut spec = Spec::load();
    let addr = app.addr;
    let call = |method: &'static str, path: String, body: Value, token: Option<String>| async move {
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("authorization", auth.as_str())]
        };
        send_with(addr, method, &path, body, &headers)
            .await
            .unwrap()
    };

    spec.check(
        "GET",
        "/api/v1/health",
        &call("GET", "/api/v1/health".into(), Value::Null, None).await,
    );
    spec.check(
        "GET",
        "/api/v1/keys/broker",
        &call("GET", "/api/v1/keys/broker".into(), Value::Null, None).await,
    );
    let bad_user = call("POST", "/api/v1/users".into(), json!({ "name": "" }), None).await;
    spec.check("POST", "/api/v1/users", &bad_user);
    let token = register_user(addr, "olga").await.unwrap();
    let t = || Some(token.clone());
    spec.check(
        "GET",
        "/api/v1/users/me",
        &call("GET", "/api/v1/users/me".into(), Value::Null, t()).await,
    );
    spec.check(
        "GET",
        "/api/v1/users/me",
        &call("GET", "/api/v1/users/me".into(), Value::Null, None).await,
    );

    let node = TestNode::register(
        addr,
        &token,
        21,
        &[("image-filter", 1.0), ("audio-denoise", 1.0)],
    )
    .await
    .unwrap();
    spec.check(
        "GET",
        "/api/v1/nodes",
        &call("GET", "/api/v1/nodes".into(), Value::Null, None).await,
    );
    spec.check(
        "GET",
        "/api/v1/nodes/{id}",
        &call(
            "GET",
            format!("/api/v1/nodes/{}", node.id),
            Value::Null,
            None,
        )
        .await,
    );
    spec.check(
        "GET",
        "/api/v1/nodes/{id}",
        &call("GET", "/api/v1/nodes/node-none".into(), Value::Null, None).await,
    );
    let reg = call("POST", "/api/v1/nodes".into(), json!({ "name": "x" }), t()).await;
    spec.check("POST", "/api/v1/nodes", &reg);
    spec.check(
        "PUT",
        "/api/v1/nodes/{id}/heartbeat",
        &node.heartbeat(0.2).await.unwrap(),
    );
    spec.check(
        "DELETE",
        "/api/v1/nodes/{id}",
        &call(
            "DELETE",
            format!("/api/v1/nodes/{}?capability=audio-denoise", node.id),
            Value::Null,
            t(),
        )
        .await,
    );

    let task = json!({ "task_type": "image-filter", "inputs": { "x": 1 }, "max_price": 20.0 });
    spec.check(
        "POST",
        "/api/v1/tasks/precheck",
        &call("POST", "/api/v1/tasks/precheck".into(), task.clone(), t()).await,
    );
    let submitted = call("POST", "/api/v1/tasks".into(), task.clone(), t()).await;
    spec.check("POST", "/api/v1/tasks", &submitted);
    spec.check(
        "POST",
        "/api/v1/tasks",
        &call(
            "POST",
            "/api/v1/tasks".into(),
            json!({ "task_type": 3 }),
            t(),
        )
        .await,
    );
    let task_id = submitted.json()["id"].as_str().unwrap().to_string();
    let leases = node
        .signed(
            "GET",
            &format!("/api/v1/nodes/{}/leases?wait=2", node.id),
            Value::Null,
        )
        .await
        .unwrap();
    spec.check("GET", "/api/v1/nodes/{id}/leases", &leases);
    let lease: greenmesh_protocol::Lease =
        serde_json::from_value(leases.json()["leases"][0]["lease"].clone()).unwrap();
    let receipt = node.receipt(&lease, "done");
    spec.check(
        "POST",
        "/api/v1/leases/{id}/result",
        &node
            .post_result(&lease.lease_id, &receipt, "done")
            .await
            .unwrap(),
    );
    spec.check(
        "POST",
        "/api/v1/leases/{id}/result",
        &node
            .post_result(&lease.lease_id, &receipt, "done")
            .await
            .unwrap(),
    );
    spec.check(
        "GET",
        "/api/v1/tasks/{id}",
        &call(
            "GET",
            format!("/api/v1/tasks/{task_id}?wait=1"),
            Value::Null,
            t(),
        )
        .await,
    );
    spec.check(
        "GET",
        "/api/v1/tasks",
        &call("GET", "/api/v1/tasks".into(), Value::Null, t()).await,
    );
    spec.check(
        "DELETE",
        "/api/v1/tasks/{id}",
        &call(
            "DELETE",
            format!("/api/v1/tasks/{task_id}"),
            Value::Null,
            t(),
        )
        .await,
    );

    let second = call("POST", "/api/v1/tasks".into(), task, t()).await.json();
    let polled = node.poll(2).await.unwrap();
    // Not a federated round's lease: no roster for it.
    let roster = node
        .signed(
            "GET",
            &format!("/api/v1/leases/{}/roster", polled[0].0.lease_id),
            Value::Null,
        )
        .await
        .unwrap();
    assert_eq!(roster.status, 410, "{}", roster.text());
    spec.check("GET", "/api/v1/leases/{id}/roster", &roster);
    let refuse = node
        .signed(
            "POST",
            &format!("/api/v1/leases/{}/refuse", polled[0].0.lease_id),
            json!({ "reason": "busy" }),
        )
        .await
        .unwrap();
    spec.check("POST", "/api/v1/leases/{id}/refuse", &refuse);
    spec.check(
        "DELETE",
        "/api/v1/tasks/{id}",
        &call(
            "DELETE",
            format!("/api/v1/tasks/{}", second["id"].as_str().unwrap()),
            Value::Null,
            t(),
        )
        .await,
    );

    let blob = send_with(
        addr,
        "POST",
        "/api/v1/blobs",
        Bytes::from_static(b"blob!"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap();
    spec.check("POST", "/api/v1/blobs", &blob);
    let sha = blob.json()["sha256"].as_str().unwrap().to_string();
    spec.check(
        "GET",
        "/api/v1/blobs/{sha256}",
        &call("GET", format!("/api/v1/blobs/{sha}"), Value::Null, t()).await,
    );
    spec.check(
        "GET",
        "/api/v1/events",
        &call("GET", "/api/v1/events?limit=5".into(), Value::Null, None).await,
    );
    spec.check(
        "GET",
        "/api/v1/events",
        &call("GET", "/api/v1/events?limit=0".into(), Value::Null, None).await,
    );
    spec.check(
        "GET",
        "/api/v1/queue",
        &call("GET", "/api/v1/queue".into(), Value::Null, None).await,
    );

    // Governance.
    let admin = || Some("openapi-admin".to_string());
    spec.check(
        "GET",
        "/api/v1/governance",
        &call("GET", "/api/v1/governance".into(), Value::Null, None).await,
    );
    for (body, who) in [
        (json!({ "scheme": "hybrid" }), admin()),
        (json!({ "scheme": "x" }), admin()),
        (json!({ "scheme": "stake" }), t()),
    ] {
        let r = call("PUT", "/api/v1/governance/voting-scheme".into(), body, who).await;
        spec.check("PUT", "/api/v1/governance/voting-scheme", &r);
    }
    let me = call("GET", "/api/v1/users/me".into(), Value::Null, t())
        .await
        .json();
    let me_id = me["id"].as_str().unwrap().to_string();
    for (body, who) in [
        (json!({ "credits": 3.0 }), admin()),
        (json!({ "credits": 0 }), admin()),
        (json!({ "credits": 3.0 }), t()),
    ] {
        let r = call(
            "POST",
            format!("/api/v1/users/{me_id}/donations"),
            body,
            who,
        )
        .await;
        spec.check("POST", "/api/v1/users/{id}/donations", &r);
    }
    for (body, who) in [
        (json!({ "note": "for a colleague" }), admin()),
        (json!({ "note": 7 }), admin()),
        (json!({}), t()),
    ] {
        let r = call("POST", "/api/v1/admin/invites".into(), body, who).await;
        spec.check("POST", "/api/v1/admin/invites", &r);
    }
    for (csv, token) in [
        (
            "Time,Carbon Intensity\n2020-01-01 00:00:00,250.5\n",
            "openapi-admin".to_string(),
        ),
        ("nothing here", "openapi-admin".to_string()),
        ("Time,Carbon Intensity\n", t().unwrap()),
    ] {
        let r = send_with(
            addr,
            "PUT",
            "/api/v1/admin/regions/XX/signal",
            Bytes::from(csv),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
        .unwrap();
        spec.check("PUT", "/api/v1/admin/regions/{region}/signal", &r);
    }
    for id in [me_id.as_str(), "user-someone-else"] {
        let r = call("GET", format!("/api/v1/users/{id}/quota"), Value::Null, t()).await;
        spec.check("GET", "/api/v1/users/{id}/quota", &r);
    }
    let key = greenmesh_protocol::key_pair_from_seed([77; 32]);
    let key_hex = greenmesh_protocol::public_key_hex(&key.pk);
    for body in [
        json!({ "timezone": "Nowhere/Land" }),
        json!({ "timezone": "Europe/Paris", "public_key": key_hex }),
    ] {
        let r = call("PATCH", "/api/v1/users/me".into(), body, t()).await;
        spec.check("PATCH", "/api/v1/users/me", &r);
    }
    let voted = call(
        "POST",
        "/api/v1/tasks".into(),
        json!({ "task_type": "video-stabilize", "name": "archive-transcode" }),
        t(),
    )
    .await
    .json();
    let voted_id = voted["id"].as_str().unwrap().to_string();
    spec.check(
        "GET",
        "/api/v1/polls",
        &call("GET", "/api/v1/polls".into(), Value::Null, t()).await,
    );
    for importance in ["high", "low", "urgent"] {
        let r = call(
            "POST",
            format!("/api/v1/tasks/{voted_id}/votes"),
            json!({ "importance": importance }),
            t(),
        )
        .await;
        spec.check("POST", "/api/v1/tasks/{id}/votes", &r);
    }
    for id in [voted_id.as_str(), "task-none"] {
        let r = call("GET", format!("/api/v1/tasks/{id}/votes"), Value::Null, t()).await;
        spec.check("GET", "/api/v1/tasks/{id}/votes", &r);
    }
    let g = greenmesh_protocol::Grant {
        node_id: node.id.clone(),
        user_id: me_id.clone(),
        task_pattern: "image-*".into(),
        expires_at: None,
        issued_at: 1,
    };
    let grant_body = |signature: String| json!({ "node_id": g.node_id, "user_id": g.user_id, "task_pattern": g.task_pattern, "issued_at": 1, "signature": signature });
    let granted = call(
        "POST",
        "/api/v1/grants".into(),
        grant_body(g.sign(&key.sk)),
        t(),
    )
    .await;
    spec.check("POST", "/api/v1/grants", &granted);
    let bad = call(
        "POST",
        "/api/v1/grants".into(),
        grant_body("00".repeat(64)),
        t(),
    )
    .await;
    spec.check("POST", "/api/v1/grants", &bad);
    spec.check(
        "GET",
        "/api/v1/grants",
        &call("GET", "/api/v1/grants".into(), Value::Null, t()).await,
    );
    let grant_id = granted.json()["id"].as_str().unwrap().to_string();
    for id in [grant_id.as_str(), "grant-none"] {
        let r = call("DELETE", format!("/api/v1/grants/{id}"), Value::Null, t()).await;
        spec.check("DELETE", "/api/v1/grants/{id}", &r);
    }
    let leased = call(
        "POST",
        "/api/v1/tasks".into(),
        json!({ "task_type": "image-filter", "max_price": 20.0 }),
        t(),
    )
    .await
    .json();
    let lease_id = leased["lease_id"].as_str().unwrap().to_string();
    for id in [lease_id.as_str(), "lease-none"] {
        let r = call("GET", format!("/api/v1/delegations/{id}"), Value::Null, t()).await;
        spec.check("GET", "/api/v1/delegations/{id}", &r);
        let r = call(
            "POST",
            format!("/api/v1/delegations/{id}/veto"),
            Value::Null,
            t(),
        )
        .await;
        spec.check("POST", "/api/v1/delegations/{id}/veto", &r);
    }

    // A require_proof task on two owners' nodes, and its proof bundle.
    let piet = register_user(addr, "piet").await.unwrap();
    let other = TestNode::register(addr, &piet, 22, &[("image-filter", 1.0)])
        .await
        .unwrap();
    let proof_task = json!({ "task_type": "image-filter", "inputs": { "text": "x" }, "max_price": 50.0,
                             "sla": "urgent", "importance": "normal",
                             "requirements": { "require_proof": true } });
    let r = call("POST", "/api/v1/tasks".into(), proof_task, t()).await;
    spec.check("POST", "/api/v1/tasks", &r);
    let group_id = r.json()["id"].as_str().unwrap().to_string();
    for n in [&node, &other] {
        for (lease, _) in n.poll(2).await.unwrap() {
            let receipt = n.receipt(&lease, "same");
            let r = n
                .post_result(&lease.lease_id, &receipt, "same")
                .await
                .unwrap();
            spec.check("POST", "/api/v1/leases/{id}/result", &r);
        }
    }
    let done = call("GET", format!("/api/v1/tasks/{group_id}"), Value::Null, t()).await;
    spec.check("GET", "/api/v1/tasks/{id}", &done);
    let proof_id = done.json()["result"]["proof_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", done.text()))
        .to_string();
    for id in [proof_id.as_str(), "proof-nothing"] {
        let r = call("GET", format!("/api/v1/proofs/{id}"), Value::Null, t()).await;
        spec.check("GET", "/api/v1/proofs/{id}", &r);
    }
    spec.check(
        "GET",
        "/api/v1/proofs/{id}",
        &call(
            "GET",
            format!("/api/v1/proofs/{proof_id}"),
            Value::Null,
            None,
        )
        .await,
    );

    // Carbon.
    for q in ["limit=5", "limit=0"] {
        let r = call("GET", format!("/api/v1/ledger?{q}"), Value::Null, None).await;
        spec.check("GET", "/api/v1/ledger", &r);
    }
    for id in ["me", "user-someone-else"] {
        let r = call(
            "GET",
            format!("/api/v1/users/{id}/impact"),
            Value::Null,
            t(),
        )
        .await;
        spec.check("GET", "/api/v1/users/{id}/impact", &r);
    }
    for id in ["me", "user-someone-else"] {
        let r = call("GET", format!("/api/v1/users/{id}/nodes"), Value::Null, t()).await;
        spec.check("GET", "/api/v1/users/{id}/nodes", &r);
    }

    let missing = spec.unexercised();
    assert!(
        missing.is_empty(),
        "documented but never exercised: {missing:?}"
    );
    app.stop().await;
}
