//! The outbound hosts one component was granted (entries are
//! [`crate::manifest::allowed_host::AllowedHost`]).

pub use crate::manifest::allowed_host::{default_port, AllowedHost};

/// All entries granted to one component.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(pub Vec<AllowedHost>);

impl AllowedHosts {
    /// Whether any entry allows the destination.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.0.iter().any(|h| h.allows(scheme, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, scheme: &str, host: &str, port: u16) -> bool {
        AllowedHost::parse(entry)
            .unwrap()
            .allows(scheme, host, port)
    }

    #[test]
    fn matches_like_spin() {
        assert!(allows("https://example.com", "https", "example.com", 443));
        assert!(!allows("https://example.com", "https", "example.com", 8443));
        assert!(!allows("https://example.com", "http", "example.com", 80));
        assert!(allows("*://*:*", "http", "anything", 1));
        assert!(allows(
            "http://*.svc.local:8000..8010",
            "http",
            "a.svc.local",
            8009
        ));
        assert!(!allows(
            "http://*.svc.local:8000..8010",
            "http",
            "a.svc.local",
            8010
        ));
        assert!(allows("http://127.0.0.1:*", "http", "127.0.0.1", 4000));
    }

    #[test]
    fn bad_entries_explain_themselves() {
        assert!(AllowedHost::parse("example.com")
            .unwrap_err()
            .contains("no scheme"));
        assert!(AllowedHost::parse("ftp://x")
            .unwrap_err()
            .contains("unsupported scheme"));
        assert!(AllowedHost::parse("http://x:port")
            .unwrap_err()
            .contains("invalid port"));
        assert!(AllowedHost::parse("http://x/path").is_err());
    }
}
