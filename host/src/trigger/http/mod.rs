//! The HTTP trigger: a hyper server, Spin's router and the guest headers.

mod headers;
pub mod router;
mod server;

pub use server::{serve, Server};
