//! One `allowed_outbound_hosts` entry (`scheme://host[:port]`) and what it
//! allows.
//!
//! Like Spin: the scheme may be `*`; the host may be `*`, `*.suffix`, a name
//! or an IP literal; the port may be a number, `*` or a range `a..b`
//! (end exclusive). An omitted port means the scheme's well-known port.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any name ending in `.example.com`.
    Suffix(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// Half-open `start..end`.
    Range(u16, u16),
    /// The well-known port of whichever scheme the request uses.
    Default,
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    raw: String,
    /// `None` = any scheme.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

impl AllowedHost {
    /// Parses an entry, explaining what is wrong with a bad one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| format!("{raw:?} has no scheme: write it as \"https://{raw}\""))?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" | "postgres" => Some(scheme.to_string()),
            other => {
                return Err(format!(
                    "{raw:?}: unsupported scheme {other:?} (use http, https, postgres or *)"
                ))
            }
        };
        if rest.contains('/') {
            return Err(format!("{raw:?}: an allowed host has no path"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || !p.is_empty() => (h, Some(p)),
            _ => (rest, None),
        };
        let host = match host {
            "" => return Err(format!("{raw:?}: missing host")),
            "self" | "self.alt" => {
                return Err(format!(
                    "{raw:?}: self-requests are not supported by greenmesh"
                ))
            }
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => {
                return Err(format!(
                    "{raw:?}: `*` may only be a whole host or a `*.` prefix"
                ))
            }
            h => HostPattern::Exact(
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
            ),
        };
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => PortPattern::Range(parse_port(raw, a)?, parse_port(raw, b)?),
                None => {
                    let n = parse_port(raw, p)?;
                    PortPattern::Range(n, n.saturating_add(1))
                }
            },
        };
        Ok(Self {
            raw: raw.to_string(),
            scheme,
            host,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Suffix(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Exact(h) => *h == host,
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Range(a, b) => (a..b).contains(&port),
            PortPattern::Default => default_port(scheme) == Some(port),
        };
        scheme_ok && host_ok && port_ok
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn parse_port(raw: &str, p: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("{raw:?}: invalid port {p:?}"))
}

/// The well-known port of `http`, `https` and `postgres`.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        _ => None,
    }
}
