//! A node's side of the coordinator API: requests as the node's owner
//! (registration), then requests signed with the node key
//! (`x-greenmesh-*` headers over method, API path, timestamp and body).

use crate::{Client, Error, Reply, RequestBuilder, Retry};
use bytes::Bytes;
use greenmesh_protocol::ed25519_compact::{KeyPair, SecretKey};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The coordinator as one node sees it.
pub struct NodeClient {
    client: Client,
    token: String,
    key: KeyPair,
    node_id: String,
}

impl NodeClient {
    /// A node owned by the user holding `token`, signing with `key`.
    pub fn new(client: Client, token: &str, key: KeyPair) -> Self {
        Self {
            client,
            token: token.to_string(),
            node_id: String::new(),
            key,
        }
    }

    /// Sets the id the coordinator gave the node at registration.
    pub fn set_node_id(&mut self, id: &str) {
        self.node_id = id.to_string();
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// An unauthenticated request.
    pub async fn public(&self, method: &str, path: &str) -> Result<(u16, Value), Error> {
        let reply = self.client.request(method, path).send().await?;
        Ok((reply.status, reply.json()))
    }

    /// A request as the node's owner (registration).
    pub async fn as_owner(
        &self,
        method: &str,
        path: &str,
        body: &Value,
    ) -> Result<(u16, Value), Error> {
        let mut req = self.client.request(method, path).bearer(&self.token);
        if !body.is_null() {
            req = req.json(body);
        }
        let reply = req.send().await?;
        Ok((reply.status, reply.json()))
    }

    /// A request signed with the node key: status and JSON body.
    pub async fn signed(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Value), Error> {
        let reply = self
            .signed_with(method, path, body, Signed::default())
            .await?;
        Ok((reply.status, reply.json()))
    }

    /// A signed request with its own timeout and retries. Each try is
    /// signed afresh (the coordinator refuses stale timestamps).
    pub async fn signed_with(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        how: Signed,
    ) -> Result<Reply, Error> {
        let body = Bytes::from(body);
        how.retry
            .run(|| {
                let mut req = signed_request(
                    &self.client,
                    &self.key.sk,
                    &self.node_id,
                    now_ms(),
                    method,
                    path,
                    body.clone(),
                );
                if let Some(t) = how.timeout {
                    req = req.timeout(t);
                }
                req.send()
            })
            .await
    }
}

/// A request signed as node `node_id` with `key` at `timestamp_ms` (the
/// coordinator refuses a timestamp far from its clock): the signature
/// covers method, API path (with query), timestamp and body.
pub fn signed_request<'a>(
    client: &'a Client,
    key: &SecretKey,
    node_id: &str,
    timestamp_ms: u64,
    method: &str,
    path: &str,
    body: Bytes,
) -> RequestBuilder<'a> {
    let sig = greenmesh_protocol::sign_request(key, method, path, timestamp_ms, &body);
    client
        .request(method, path)
        .header("x-greenmesh-node", node_id)
        .header("x-greenmesh-timestamp", &timestamp_ms.to_string())
        .header("x-greenmesh-signature", &sig)
        .header("content-type", "application/json")
        .body(body)
}

/// Options of one signed request.
#[derive(Debug, Clone, Copy)]
pub struct Signed {
    /// Overrides the client's request timeout (a long-poll).
    pub timeout: Option<Duration>,
    pub retry: Retry,
}

impl Default for Signed {
    fn default() -> Self {
        Self {
            timeout: None,
            retry: Retry::NONE,
        }
    }
}
