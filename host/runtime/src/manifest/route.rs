//! A Spin HTTP route (`[[trigger.http]] route`): its syntax, what it
//! captures from a path, and the precedence of matches.
//!
//! A route is `/exact/path`, may contain `:name` segments (one path segment
//! each) and may end in `/...` (any number of further segments). When several
//! routes match, segments are compared left to right: at the first
//! difference a literal beats a `:param`, which beats the wildcard; when one
//! route is a prefix of the other the longer route wins. So an exact route
//! beats `/:x`, which beats `/...`, and `/a/b/...` beats `/a/...`.

use std::collections::BTreeMap;
use std::fmt;

/// One parsed route segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// The trailing `...`: zero or more segments.
    Wildcard,
}

impl Segment {
    /// Higher ranks win at the first differing position.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Wildcard => 0,
        }
    }
}

/// A route pattern as written in `[[trigger.http]] route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    raw: String,
    segments: Vec<Segment>,
}

/// Why a route string is not a valid route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route must start with `/`")]
    NoLeadingSlash,
    #[error("`...` may only be the last segment of a route")]
    WildcardNotLast,
    #[error("`:` must be followed by a parameter name")]
    EmptyParam,
    #[error("parameter `:{0}` appears twice")]
    DuplicateParam(String),
    #[error("routes under `/.well-known/spin/` are reserved by Spin")]
    Reserved,
}

impl RoutePattern {
    /// Parses a route such as `/users/:id/cart/...`.
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        if !raw.starts_with('/') {
            return Err(RouteError::NoLeadingSlash);
        }
        if raw.starts_with("/.well-known/spin/") {
            return Err(RouteError::Reserved);
        }
        // Spin strips one trailing slash, so `/a/` is `/a` and `/` is the root.
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed[1..].split('/').collect()
        };
        let mut segments = Vec::with_capacity(parts.len());
        let mut params = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let segment = if *part == "..." || *part == "*" {
                if i + 1 != parts.len() {
                    return Err(RouteError::WildcardNotLast);
                }
                Segment::Wildcard
            } else if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() {
                    return Err(RouteError::EmptyParam);
                }
                if params.contains(&name) {
                    return Err(RouteError::DuplicateParam(name.to_string()));
                }
                params.push(name);
                Segment::Param(name.to_string())
            } else {
                Segment::Literal((*part).to_string())
            };
            segments.push(segment);
        }
        Ok(Self {
            raw: raw.to_string(),
            segments,
        })
    }

    /// The route exactly as written in the manifest.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route without its trailing wildcard (`spin-component-route`).
    pub fn component_route(&self) -> &str {
        let r = self.raw.strip_suffix('/').unwrap_or(&self.raw);
        r.strip_suffix("/...")
            .or_else(|| r.strip_suffix("..."))
            .unwrap_or(r)
    }

    /// Matches a request path (no query string); `None` when it does not match.
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.strip_prefix('/')?.split('/').collect()
        };
        let mut params = BTreeMap::new();
        let mut ranks = Vec::with_capacity(self.segments.len());
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Wildcard => {
                    // path-info is what follows the consumed prefix, kept verbatim.
                    let consumed: usize = parts[..i].iter().map(|p| p.len() + 1).sum();
                    ranks.push(segment.rank());
                    return Some(RouteMatch {
                        path_info: path[consumed.min(path.len())..].to_string(),
                        params,
                        ranks,
                    });
                }
                Segment::Literal(lit) => {
                    if parts.get(i) != Some(&lit.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = parts.get(i).filter(|p| !p.is_empty())?;
                    params.insert(name.clone(), (*value).to_string());
                }
            }
            ranks.push(segment.rank());
        }
        (parts.len() == self.segments.len()).then(|| RouteMatch {
            path_info: String::new(),
            params,
            ranks,
        })
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// What a matching route captured from a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The rest of the path after a wildcard route's prefix (`spin-path-info`).
    pub path_info: String,
    /// `:name` → segment value (`spin-path-match-<name>`).
    pub params: BTreeMap<String, String>,
    /// Per-segment ranks, compared to pick the best of several matches.
    pub(crate) ranks: Vec<u8>,
}
