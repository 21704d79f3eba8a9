//! The HTTP trigger: a hyper server, Spin's router and the guest headers.

mod headers;
pub mod router;
mod server;
mod tls;

pub use server::{serve, ServeLimits};
pub use tls::server_config;
