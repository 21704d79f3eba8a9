//! Store guest: drives sqlite and key-value through the spin-sdk v2
//! (fermyon:spin@2.0.0) APIs over HTTP, and Postgres through
//! `spin_sdk::pg4` (spin:postgres@4.0.0).

use serde::Deserialize;
use serde_json::{json, Value as Json};
use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::{self, Store};
use spin_sdk::sqlite::{self, Connection, Value};

#[http_component]
fn handle(req: Request) -> impl IntoResponse {
    let path = match req.header("spin-path-info").and_then(|v| v.as_str()) {
        Some(p) => p.to_owned(),
        None => req.path().to_owned(),
    };
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::Post, "/sql") => sql(req.body()),
        (Method::Post, "/sql3") => sql3(req.body()),
        (Method::Post, "/pg") => pg(req.body()),
        (Method::Get, "/read") => read(),
        (method, p) => match p.strip_prefix("/kv/") {
            Some(rest) => kv(method, rest, req.into_body()),
            None => json_response(404, json!({ "error": "not-found" })),
        },
    }
}

/// `POST /sql3` with `{"db", "sql", "params"}` (text, integer and null params)
/// through `spin_sdk::sqlite3` (spin:sqlite@3.0.0): returns the row count,
/// `last_insert_rowid` and `changes`.
fn sql3(body: &[u8]) -> Response {
    use spin_sdk::sqlite3::{Connection as Connection3, Value as Value3};
    let request: SqlRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(e.to_string()),
    };
    let params: Vec<Value3> = request
        .params
        .iter()
        .map(|p| match p {
            Json::Number(n) => Value3::Integer(n.as_i64().unwrap_or_default()),
            Json::String(s) => Value3::Text(s.clone()),
            _ => Value3::Null,
        })
        .collect();
    match Connection3::open(&request.db) {
        Ok(db) => match db.execute(&request.sql, &params) {
            Ok(result) => json_response(
                200,
                json!({
                    "rows": result.rows.len(),
                    "last_insert_rowid": db.last_insert_rowid(),
                    "changes": db.changes(),
                }),
            ),
            Err(e) => json_response(500, json!({ "error": format!("{e:?}") })),
        },
        Err(e) => {
            let status = if matches!(e, spin_sdk::sqlite3::Error::AccessDenied) {
                403
            } else {
                500
            };
            json_response(status, json!({ "error": format!("{e:?}") }))
        }
    }
}

#[derive(Deserialize)]
struct SqlRequest {
    db: String,
    sql: String,
    #[serde(default)]
    params: Vec<Json>,
}

/// `POST /sql` with `{"db", "sql", "params"}`: runs one statement and returns columns and rows.
fn sql(body: &[u8]) -> Response {
    let request: SqlRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(e.to_string()),
    };
    let mut params = Vec::with_capacity(request.params.len());
    for p in &request.params {
        params.push(match p {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Integer(*b as i64),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Value::Text(s.clone()),
            other => return bad_request(format!("unsupported parameter: {other}")),
        });
    }
    let result = Connection::open(&request.db).and_then(|db| db.execute(&request.sql, &params));
    match result {
        Ok(result) => {
            let rows: Vec<Json> = result
                .rows
                .iter()
                .map(|row| row.values.iter().map(to_json).collect())
                .collect();
            json_response(200, json!({ "columns": result.columns, "rows": rows }))
        }
        Err(e) => sqlite_error(e),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Integer(i) => json!(i),
        Value::Real(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Blob(b) => json!(b),
        Value::Null => Json::Null,
    }
}

/// `GET /read`: a fixed read of one row from "default" (benchmark path).
fn read() -> Response {
    let result = Connection::open("default").and_then(|db| {
        db.execute(
            "CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, v TEXT)",
            &[],
        )?;
        db.execute("INSERT OR IGNORE INTO bench VALUES (1, 'hello')", &[])?;
        db.execute("SELECT v FROM bench WHERE id = 1", &[])
    });
    match result {
        Ok(result) => {
            let text = match result.rows.first().and_then(|r| r.values.first()) {
                Some(Value::Text(s)) => s.clone(),
                _ => String::new(),
            };
            Response::new(200, text)
        }
        Err(e) => sqlite_error(e),
    }
}

/// `/kv/<store>` and `/kv/<store>/<key>`.
fn kv(method: Method, rest: &str, body: Vec<u8>) -> Response {
    let (label, key) = match rest.split_once('/') {
        Some((label, key)) => (label, Some(key)),
        None => (rest, None),
    };
    let store = match Store::open(label) {
        Ok(s) => s,
        Err(e) => return kv_error(e),
    };
    let result = match (method, key) {
        (Method::Get, None) => store.get_keys().map(|keys| json_response(200, json!(keys))),
        (Method::Get, Some(key)) => store.get(key).map(|value| match value {
            Some(bytes) => Response::new(200, bytes),
            None => json_response(404, json!({ "error": "not-found" })),
        }),
        (Method::Put, Some(key)) => store.set(key, &body).map(|()| Response::new(204, ())),
        (Method::Delete, Some(key)) => store.delete(key).map(|()| Response::new(204, ())),
        _ => Ok(json_response(405, json!({ "error": "method-not-allowed" }))),
    };
    result.unwrap_or_else(kv_error)
}

fn sqlite_error(e: sqlite::Error) -> Response {
    let (status, name) = match &e {
        sqlite::Error::NoSuchDatabase => (404, "no-such-database"),
        sqlite::Error::AccessDenied => (403, "access-denied"),
        sqlite::Error::InvalidConnection => (500, "invalid-connection"),
        sqlite::Error::DatabaseFull => (500, "database-full"),
        sqlite::Error::Io(_) => (500, "io"),
    };
    json_response(status, json!({ "error": name, "detail": format!("{e:?}") }))
}

fn kv_error(e: key_value::Error) -> Response {
    let (status, name) = match &e {
        key_value::Error::StoreTableFull => (500, "store-table-full"),
        key_value::Error::NoSuchStore => (404, "no-such-store"),
        key_value::Error::AccessDenied => (403, "access-denied"),
        key_value::Error::Other(_) => (500, "other"),
    };
    json_response(status, json!({ "error": name, "detail": format!("{e:?}") }))
}

fn bad_request(detail: String) -> Response {
    json_response(400, json!({ "error": "bad-request", "detail": detail }))
}

fn json_response(status: u16, body: Json) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

#[derive(Deserialize)]
struct PgRequest {
    address: String,
    /// Statements run in order on one connection; the last one's rows (or
    /// row count, for `execute`) are answered.
    statements: Vec<PgStatement>,
    /// Connections to open, all held until the answer, instead of one to
    /// `address`; a statement runs on the one its `on` names.
    #[serde(default)]
    open: Vec<String>,
    /// Answer every statement's outcome, in order, not only the last.
    #[serde(default)]
    all: bool,
}

#[derive(Deserialize)]
struct PgStatement {
    sql: String,
    #[serde(default)]
    params: Vec<Json>,
    /// `execute` (a row count) rather than `query` (rows).
    #[serde(default)]
    execute: bool,
    /// Which of `open`'s connections runs it.
    #[serde(default)]
    on: usize,
}

/// `POST /pg`: runs statements on one `spin_sdk::pg4` connection. Integers
/// go as int64, other numbers as float64, strings as str, `null` as null,
/// `{"binary": [..]}` as binary. The answer: `{"columns", "rows"}` or
/// `{"changed"}`; `403` when the address is not allowed, `502` otherwise.
fn pg(body: &[u8]) -> Response {
    use spin_sdk::pg4::{Connection, DbValue, ParameterValue};
    let request: PgRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad_request(e.to_string()),
    };
    let addresses = if request.open.is_empty() {
        vec![request.address.clone()]
    } else {
        request.open.clone()
    };
    let mut connections = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        match Connection::open(address) {
            Ok(db) => connections.push(db),
            Err(e) => {
                let text = format!("{e:?}");
                let status = if text.contains("allowed_outbound_hosts") {
                    403
                } else {
                    502
                };
                return json_response(status, json!({ "error": text, "opening": i }));
            }
        }
    }
    let mut answer = json!(null);
    let mut answers = Vec::new();
    for st in &request.statements {
        let Some(db) = connections.get(st.on) else {
            return bad_request(format!("no connection {}", st.on));
        };
        let params: Vec<ParameterValue> = st
            .params
            .iter()
            .map(|p| match p {
                Json::Number(n) if n.is_i64() => {
                    ParameterValue::Int64(n.as_i64().unwrap_or_default())
                }
                Json::Number(n) => ParameterValue::Floating64(n.as_f64().unwrap_or_default()),
                Json::String(s) => ParameterValue::Str(s.clone()),
                Json::Bool(b) => ParameterValue::Boolean(*b),
                Json::Object(o) if o.contains_key("binary") => ParameterValue::Binary(
                    serde_json::from_value(o["binary"].clone()).unwrap_or_default(),
                ),
                _ => ParameterValue::DbNull,
            })
            .collect();
        let outcome = if st.execute {
            db.execute(&st.sql, &params)
                .map(|n| json!({ "changed": n }))
        } else {
            db.query(&st.sql, &params).map(|set| {
                let value = |v: &DbValue| match v {
                    DbValue::Boolean(b) => json!(b),
                    DbValue::Int16(i) => json!(i),
                    DbValue::Int32(i) => json!(i),
                    DbValue::Int64(i) => json!(i),
                    DbValue::Floating64(f) => json!(f),
                    DbValue::Str(s) => json!(s),
                    DbValue::Binary(b) => json!({ "binary": b }),
                    DbValue::Decimal(d) => json!({ "decimal": format!("{d:?}") }),
                    DbValue::Jsonb(b) => json!({ "jsonb": String::from_utf8_lossy(b) }),
                    DbValue::DbNull => json!(null),
                    other => json!({ "other": format!("{other:?}") }),
                };
                json!({
                    "columns": set.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    "rows": set.rows.iter().map(|r| r.iter().map(value).collect::<Vec<_>>()).collect::<Vec<_>>(),
                })
            })
        };
        match outcome {
            Ok(v) => {
                answers.push(v.clone());
                answer = v;
            }
            Err(e) => {
                return json_response(502, json!({ "error": format!("{e:?}"), "sql": st.sql }))
            }
        }
    }
    if request.all {
        answer = Json::Array(answers);
    }
    json_response(200, answer)
}
