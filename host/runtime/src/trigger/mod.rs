//! Triggers: what makes components run. Only HTTP for now.

pub mod http;
