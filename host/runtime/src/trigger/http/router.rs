//! Routes requests to targets by Spin's precedence (the route patterns
//! themselves are [`crate::manifest::route`]).

pub use crate::manifest::route::{RouteMatch, RoutePattern};

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
        if let Some(slot) = self
            .routes
            .iter_mut()
            .find(|(p, _)| p.raw() == pattern.raw())
        {
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
    use crate::manifest::route::RouteError;

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
