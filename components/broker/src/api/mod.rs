//! The HTTP layer: routes, request parsing, authentication and JSON
//! responses. Handlers parse and check what the client sent, call one
//! domain operation, and shape its answer; they hold no rules and never
//! call one another.

mod admin;
mod auth;
mod blobs;
mod delegations;
mod governance;
mod leases;
mod network;
mod nodes;
mod tasks;
mod users;
mod votes;

use crate::db::Db;
use crate::error::ApiError;
use crate::model::User;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use spin_sdk::http::{Method, Request, Response};

/// What handlers return.
pub type ApiResult = Result<Response, ApiError>;

impl ApiError {
    pub fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        // A busy answer says when to come back (the client's retry reads it).
        let retry_after = self
            .details
            .as_ref()
            .filter(|_| self.status == 503)
            .and_then(|d| d["retry_after_s"].as_u64());
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let body = json!({ "error": error }).to_string();
        let mut response = Response::builder();
        response
            .status(self.status)
            .header("content-type", "application/json");
        if let Some(s) = retry_after {
            response.header("retry-after", s.to_string());
        }
        response.body(body).build()
    }
}

/// Answers one request.
pub fn handle(req: Request) -> Response {
    match route(&req) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn route(req: &Request) -> ApiResult {
    let path = req
        .header("spin-path-info")
        .and_then(|h| h.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| req.path().trim_start_matches("/api/v1").to_string());
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    let query = req.query().to_string();
    let body = req.body();

    if let (Method::Get, ["health"]) = (&method, segments.as_slice()) {
        return network::health();
    }
    let db = Db::open()?;
    crate::domain::settings::configure_dependencies();
    let user = || auth::user(&db, req);
    match (method, segments.as_slice()) {
        (Method::Get, ["keys", "broker"]) => network::broker_key(&db),
        (Method::Post, ["users"]) => users::register(&db, req, body),
        (Method::Put, ["admin", "regions", region, "signal"]) => {
            admin::require(req)?;
            nodes::region_signal(&db, region, body)
        }
        (Method::Post, ["admin", "invites"]) => {
            admin::require(req)?;
            users::invite(&db, body)
        }
        (Method::Get, ["users", "me"]) => users::me(&user()?),
        (Method::Patch, ["users", "me"]) => users::update(&db, &user()?, body),
        (Method::Get, ["users", id, "quota"]) => users::quota(&db, &user()?, id),
        (Method::Get, ["users", id, "impact"]) => users::impact(&db, &user()?, id),
        (Method::Get, ["users", id, "nodes"]) => users::nodes(&db, &user()?, id),
        (Method::Post, ["users", id, "donations"]) => {
            admin::require(req)?;
            governance::donate(&db, id, body)
        }

        (Method::Get, ["governance"]) => governance::rules(),
        (Method::Put, ["governance", "voting-scheme"]) => {
            admin::require(req)?;
            governance::set_scheme(&db, body)
        }
        (Method::Get, ["polls"]) => {
            user()?;
            votes::list_open(&db)
        }
        (Method::Post, ["tasks", id, "votes"]) => votes::cast(&db, &user()?, id, body),
        (Method::Get, ["tasks", id, "votes"]) => {
            user()?;
            votes::get(&db, id)
        }

        (Method::Post, ["grants"]) => governance::grant(&db, &user()?, body),
        (Method::Get, ["grants"]) => governance::grants(&db, &user()?),
        (Method::Delete, ["grants", id]) => governance::revoke_grant(&db, &user()?, id),
        (Method::Get, ["delegations", id]) => delegations::get(&db, &user()?, id),
        (Method::Post, ["delegations", id, "veto"]) => delegations::veto(&db, &user()?, id),

        (Method::Post, ["nodes"]) => nodes::register(&db, &user()?, body),
        (Method::Get, ["nodes"]) => nodes::list(),
        (Method::Get, ["nodes", id]) => nodes::get(&db, id),
        (Method::Delete, ["nodes", id]) => nodes::withdraw(&db, &user()?, id, &query),
        (Method::Put, ["nodes", id, "heartbeat"]) => {
            let node = auth::node(req, &db, id)?;
            nodes::heartbeat(&db, &node, body)
        }
        (Method::Get, ["nodes", id, "leases"]) => {
            auth::node(req, &db, id)?;
            leases::poll(&db, id, &query)
        }
        (Method::Post, ["leases", id, "result"]) => {
            let lease = leases::authorize(req, &db, id)?;
            leases::result(&db, &lease, body)
        }
        (Method::Get, ["leases", id, "roster"]) => {
            let lease = leases::authorize(req, &db, id)?;
            leases::roster(&db, &lease)
        }
        (Method::Post, ["leases", id, "refuse"]) => {
            let lease = leases::authorize(req, &db, id)?;
            leases::refuse(&db, &lease, body)
        }

        (Method::Post, ["tasks"]) => tasks::submit(&db, &user()?, body),
        (Method::Post, ["tasks", "precheck"]) => tasks::precheck(&db, &user()?, body),
        (Method::Get, ["tasks"]) => tasks::list(&db, &user()?, &query),
        (Method::Get, ["tasks", id]) => tasks::get(&db, &user()?, id, &query),
        (Method::Delete, ["tasks", id]) => tasks::cancel(&db, &user()?, id),
        (Method::Get, ["proofs", id]) => tasks::proof(&db, &user()?, id),

        (Method::Get, ["queue"]) => network::queue(&db),
        (Method::Get, ["events"]) => network::events(&db, &query),
        (Method::Get, ["ledger"]) => network::ledger(&db, &query),
        (Method::Post, ["blobs"]) => blobs::put(&db, &user()?, body),
        (Method::Get, ["blobs", sha]) => {
            let caller = auth::user_or_node(&db, req)?;
            blobs::get(&db, &caller, sha)
        }
        (_, segs) => match allowed_methods(segs) {
            // RFC 9110: a 405 lists the methods the resource has.
            Some(allow) => {
                let mut resp = ApiError::new(
                    405,
                    "method_not_allowed",
                    format!(
                        "{} is not allowed on {path} (allowed: {allow})",
                        req.method()
                    ),
                )
                .into_response();
                resp.set_header("allow", allow);
                Ok(resp)
            }
            None => Err(ApiError::not_found(format!("no endpoint {path}"))),
        },
    }
}

/// The methods a path has (the `Allow` of a 405), or `None` when no
/// endpoint has the path (404).
fn allowed_methods(segs: &[&str]) -> Option<&'static str> {
    Some(match segs {
        ["health"] | ["keys", "broker"] | ["nodes", _, "leases"] | ["leases", _, "roster"] => "GET",
        ["proofs", _] | ["queue"] | ["events"] | ["ledger"] | ["governance"] | ["polls"] => "GET",
        ["users", _, "quota"]
        | ["users", _, "impact"]
        | ["users", _, "nodes"]
        | ["delegations", _] => "GET",
        ["blobs", _] => "GET",
        ["users"] | ["admin", "invites"] | ["leases", _, "result"] | ["leases", _, "refuse"] => {
            "POST"
        }
        ["tasks", "precheck"] | ["users", _, "donations"] | ["delegations", _, "veto"] => "POST",
        ["blobs"] => "POST",
        ["admin", "regions", _, "signal"] | ["nodes", _, "heartbeat"] => "PUT",
        ["governance", "voting-scheme"] => "PUT",
        ["users", "me"] => "GET, PATCH",
        ["nodes"] | ["tasks"] | ["tasks", _, "votes"] | ["grants"] => "GET, POST",
        ["nodes", _] | ["tasks", _] => "GET, DELETE",
        ["grants", _] => "DELETE",
        _ => return None,
    })
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

/// Parses a JSON body into `T`; a wrong type or missing field names the field.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else if path.is_empty() || path == "." {
            ApiError::bad_request(inner.to_string())
        } else {
            ApiError::invalid(path, inner.to_string())
        }
    })
}

/// The value of query parameter `name`.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if kv == name => Some(""),
        _ => None,
    })
}

/// `?wait=SECONDS`, capped at [`MAX_WAIT_SECS`].
pub fn wait_param(query: &str) -> Result<u64, ApiError> {
    match query_param(query, "wait") {
        None => Ok(0),
        Some(v) => v
            .parse::<u64>()
            .map(|s| s.min(MAX_WAIT_SECS))
            .map_err(|_| ApiError::invalid("wait", "wait must be a whole number of seconds")),
    }
}

/// `?limit=N` within 1..=1000 (default 100).
pub fn limit_param(query: &str) -> Result<u64, ApiError> {
    match query_param(query, "limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "limit must be between 1 and 1000")),
    }
}

/// Longest long-poll, kept under the component's time limit.
pub const MAX_WAIT_SECS: u64 = 25;

/// `id`, or the caller's own id for `me`; another user's is `403`.
fn own_id<'a>(caller: &'a User, id: &'a str, what: &str) -> Result<&'a str, ApiError> {
    let id = if id == "me" { caller.id.as_str() } else { id };
    if id != caller.id {
        return Err(ApiError::forbidden(format!(
            "a user can only read their own {what}"
        )));
    }
    Ok(id)
}
