//! Node request authentication: a node signs method, path, time and body.
//!
//! Headers: `x-greenmesh-node` (node id), `x-greenmesh-timestamp` (ms since
//! the epoch), `x-greenmesh-signature` (hex). The broker accepts a timestamp
//! within [`REQUEST_MAX_SKEW_MS`] of its own clock.

use crate::{sha256_hex, sign, verify, ProtocolError};
use ed25519_compact::{PublicKey, SecretKey};

/// Largest accepted difference between the node's and the broker's clocks.
pub const REQUEST_MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// The exact bytes a node signs for one request (`path` includes the query).
pub fn request_signing_bytes(method: &str, path: &str, timestamp_ms: u64, body: &[u8]) -> Vec<u8> {
    format!(
        "greenmesh-request-v1\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        timestamp_ms,
        sha256_hex(body)
    )
    .into_bytes()
}

/// The signature header value for a request.
pub fn sign_request(
    key: &SecretKey,
    method: &str,
    path: &str,
    timestamp_ms: u64,
    body: &[u8],
) -> String {
    sign(
        key,
        &request_signing_bytes(method, path, timestamp_ms, body),
    )
}

/// Checks a request signature and its timestamp against `now_ms`.
pub fn verify_request(
    key: &PublicKey,
    method: &str,
    path: &str,
    timestamp_ms: u64,
    body: &[u8],
    signature_hex: &str,
    now_ms: u64,
) -> Result<(), ProtocolError> {
    if now_ms.abs_diff(timestamp_ms) > REQUEST_MAX_SKEW_MS {
        return Err(ProtocolError::Expired);
    }
    verify(
        key,
        &request_signing_bytes(method, path, timestamp_ms, body),
        signature_hex,
    )
}
