//! Spin's HTTP route syntax and precedence.
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
    fn matches(&self, path: &str) -> Option<RouteMatch> {
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
    ranks: Vec<u8>,
}

/// Routes to targets (`T` is whatever the server dispatches to).
#[derive(Debug, Clone)]
pub struct Router<T> {
    routes: Vec<(RoutePattern, T)>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<T> Router<T> {
    /// Adds a route. A route string already present is replaced (as Spin
    /// does); the replaced target is returned so the caller can warn.
    pub fn add(&mut self, pattern: RoutePattern, target: T) -> Option<T> {
        if let Some(slot) = self.routes.iter_mut().find(|(p, _)| p.raw == pattern.raw) {
            return Some(std::mem::replace(&mut slot.1, target));
        }
        self.routes.push((pattern, target));
        None
    }

    /// The best route for `path`, by Spin's precedence.
    pub fn route(&self, path: &str) -> Option<(&RoutePattern, &T, RouteMatch)> {
        self.routes
            .iter()
            .filter_map(|(p, t)| p.matches(path).map(|m| (p, t, m)))
            .max_by(|a, b| a.2.ranks.cmp(&b.2.ranks))
    }

    /// Every route, in the order added.
    pub fn routes(&self) -> impl Iterator<Item = (&RoutePattern, &T)> {
        self.routes.iter().map(|(p, t)| (p, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router<String> {
        let mut r = Router::default();
        for route in routes {
            r.add(RoutePattern::parse(route).unwrap(), route.to_string());
        }
        r
    }

    fn best(r: &Router<String>, path: &str) -> Option<String> {
        r.route(path).map(|(_, t, _)| t.clone())
    }

    #[test]
    fn exact_beats_param_beats_wildcard() {
        let r = router(&["/...", "/users/...", "/users/:id", "/users/me"]);
        assert_eq!(best(&r, "/users/me").as_deref(), Some("/users/me"));
        assert_eq!(best(&r, "/users/42").as_deref(), Some("/users/:id"));
        assert_eq!(best(&r, "/users/42/cart").as_deref(), Some("/users/..."));
        assert_eq!(best(&r, "/other").as_deref(), Some("/..."));
    }

    #[test]
    fn longest_wildcard_prefix_wins() {
        let r = router(&["/a/...", "/a/b/..."]);
        assert_eq!(best(&r, "/a/b/c").as_deref(), Some("/a/b/..."));
        assert_eq!(best(&r, "/a/x").as_deref(), Some("/a/..."));
    }

    #[test]
    fn path_info_follows_spin() {
        let p = RoutePattern::parse("/foo/...").unwrap();
        let info = |path: &str| p.matches(path).unwrap().path_info;
        assert_eq!(info("/foo"), "");
        assert_eq!(info("/foo/"), "/");
        assert_eq!(info("/foo/bar"), "/bar");
        assert_eq!(info("/foo/bar/"), "/bar/");
        assert!(p.matches("/foobar").is_none());
    }

    #[test]
    fn params_are_captured() {
        let p = RoutePattern::parse("/users/:userid/cart/...").unwrap();
        let m = p.matches("/users/1/cart/items/3").unwrap();
        assert_eq!(m.params.get("userid").map(String::as_str), Some("1"));
        assert_eq!(m.path_info, "/items/3");
        assert_eq!(p.component_route(), "/users/:userid/cart");
    }

    #[test]
    fn exact_route_ignores_one_trailing_slash() {
        let r = router(&["/hello"]);
        assert!(best(&r, "/hello/").is_some());
        assert!(best(&r, "/hello/x").is_none());
    }

    #[test]
    fn bad_routes_are_refused() {
        assert_eq!(RoutePattern::parse("x"), Err(RouteError::NoLeadingSlash));
        assert_eq!(
            RoutePattern::parse("/.../a"),
            Err(RouteError::WildcardNotLast)
        );
        assert_eq!(RoutePattern::parse("/a/:"), Err(RouteError::EmptyParam));
        assert_eq!(
            RoutePattern::parse("/:a/:a"),
            Err(RouteError::DuplicateParam("a".into()))
        );
    }

    #[test]
    fn duplicate_route_replaces_and_reports() {
        let mut r = router(&["/a"]);
        let old = r.add(RoutePattern::parse("/a").unwrap(), "second".into());
        assert_eq!(old.as_deref(), Some("/a"));
        assert_eq!(best(&r, "/a").as_deref(), Some("second"));
    }
}
