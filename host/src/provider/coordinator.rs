//! The node's side of the coordinator API: user-authenticated registration,
//! then requests signed with the node key (`x-greenmesh-*` headers).

use crate::client::http::{send, send_bytes};
use greenmesh_protocol::ed25519_compact::KeyPair;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// A status and JSON body from the coordinator.
pub type Reply = (u16, Value);

pub struct Coordinator {
    base: String,
    token: String,
    key: KeyPair,
    node_id: String,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Coordinator {
    pub fn new(base: &str, token: &str, key: KeyPair) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            node_id: String::new(),
            key,
        }
    }

    pub fn set_node_id(&mut self, id: &str) {
        self.node_id = id.to_string();
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// An unauthenticated request.
    pub async fn public(&self, method: &str, path: &str) -> anyhow::Result<Reply> {
        send(&self.base, method, path, &[], Vec::new()).await
    }

    /// A request as the node's owner (registration).
    pub async fn as_owner(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<Reply> {
        let auth = format!("Bearer {}", self.token);
        send(
            &self.base,
            method,
            path,
            &[("authorization", &auth)],
            body.to_string().into_bytes(),
        )
        .await
    }

    /// A request signed with the node key.
    pub async fn signed(&self, method: &str, path: &str, body: Vec<u8>) -> anyhow::Result<Reply> {
        let (status, bytes) = self.signed_bytes(method, path, body).await?;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((status, value))
    }

    /// A signed request whose answer is raw bytes (a blob).
    pub async fn signed_bytes(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, bytes::Bytes)> {
        let ts = now_ms();
        let sig = greenmesh_protocol::sign_request(&self.key.sk, method, path, ts, &body);
        let ts = ts.to_string();
        send_bytes(
            &self.base,
            method,
            path,
            &[
                ("x-greenmesh-node", &self.node_id),
                ("x-greenmesh-timestamp", &ts),
                ("x-greenmesh-signature", &sig),
            ],
            body,
        )
        .await
    }
}
