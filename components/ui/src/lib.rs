//! The web dashboard's static files (issue 22), served by the coordinator
//! app itself: `/` redirects to `/ui/`, and `/ui/...` answers the files of
//! `assets/`, compiled into the component (no file system, no network).
//! The browser calls the coordinator's JSON API (`/api/v1`); nothing is
//! rendered here.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles
//! and connections from this origin only, no inline script, no framing),
//! and files are revalidated by ETag (`304` when unchanged).

mod assets;

use assets::Asset;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// The policy every answer carries: nothing from other origins, no inline
/// script or style element, no plugins, no framing. (Scripts may still set
/// element styles through the DOM, which charts and Preact do.)
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; \
     connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Where the dashboard lives.
const PREFIX: &str = "/ui/";

#[http_component]
fn handle(req: Request) -> Response {
    let if_none_match = req
        .header("if-none-match")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let answer = answer(req.method(), req.path(), if_none_match.as_deref());
    let mut builder = Response::builder();
    builder.status(answer.status);
    for (name, value) in answer.headers {
        builder.header(name, value);
    }
    builder.body(answer.body).build()
}

/// An answer, independent of the HTTP types (so it is tested natively).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Answers `method path` (with the request's `If-None-Match`).
pub fn answer(method: &Method, path: &str, if_none_match: Option<&str>) -> Answer {
    let head = matches!(method, Method::Head);
    if !matches!(method, Method::Get | Method::Head) {
        let mut a = error(405, &format!("{method:?} is not allowed here; use GET"));
        a.headers.push(("allow", "GET, HEAD".into()));
        return a;
    }
    if path == "/" || path == "/ui" {
        let mut a = Answer {
            status: 302,
            headers: security_headers(),
            body: Vec::new(),
        };
        a.headers.push(("location", PREFIX.into()));
        return a;
    }
    let Some(file) = path.strip_prefix(PREFIX) else {
        return error(404, &format!("no dashboard file at {path}"));
    };
    // The page is one document; its views are `#/...` fragments.
    let file = if file.is_empty() { "index.html" } else { file };
    let Some(asset) = assets::find(file) else {
        return error(404, &format!("no dashboard file at {path}"));
    };
    let etag = etag(asset);
    let mut headers = security_headers();
    headers.push(("content-type", asset.content_type.into()));
    headers.push(("etag", etag.clone()));
    // Revalidated every time (cheap: a 304), so a new coordinator's files
    // are seen at once.
    headers.push(("cache-control", "no-cache".into()));
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        return Answer {
            status: 304,
            headers,
            body: Vec::new(),
        };
    }
    headers.push(("content-length", asset.bytes.len().to_string()));
    Answer {
        status: 200,
        headers,
        body: if head {
            Vec::new()
        } else {
            asset.bytes.to_vec()
        },
    }
}

fn security_headers() -> Vec<(&'static str, String)> {
    vec![
        ("content-security-policy", CONTENT_SECURITY_POLICY.into()),
        ("x-content-type-options", "nosniff".into()),
        ("referrer-policy", "no-referrer".into()),
        ("x-frame-options", "DENY".into()),
    ]
}

/// A JSON error, as the API answers them.
fn error(status: u16, message: &str) -> Answer {
    let body = format!("{{\"error\":{}}}", spin_sdk_json_string(message));
    let mut headers = security_headers();
    headers.push(("content-type", "application/json".into()));
    Answer {
        status,
        headers,
        body: body.into_bytes(),
    }
}

/// `s` as a JSON string literal.
fn spin_sdk_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A strong ETag: the FNV-1a hash of the file's bytes.
fn etag(asset: &Asset) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in asset.bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
        a.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_page_and_its_files_are_served_with_the_policy() {
        let page = answer(&Method::Get, "/ui/", None);
        assert_eq!(page.status, 200);
        assert_eq!(
            header(&page, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            header(&page, "content-security-policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        let html = String::from_utf8(page.body).unwrap();
        assert!(
            html.contains(r#"<script type="module" src="app.js">"#),
            "{html}"
        );
        let script = answer(&Method::Get, "/ui/app.js", None);
        assert_eq!(script.status, 200);
        assert_eq!(
            header(&script, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_no_other_origin() {
        let script_src = CONTENT_SECURITY_POLICY
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap();
        assert_eq!(script_src, "script-src 'self'");
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        // And no served HTML file carries an inline script or handler.
        for a in assets::ASSETS.iter().filter(|a| a.path.ends_with(".html")) {
            let html = std::str::from_utf8(a.bytes).unwrap();
            for tag in html.split("<script").skip(1) {
                assert!(
                    tag.trim_start().starts_with("type=\"module\" src="),
                    "{}: {tag}",
                    a.path
                );
            }
            assert!(!html.contains(" onclick="), "{}", a.path);
        }
    }

    #[test]
    fn unchanged_files_answer_304_and_others_404_405_or_redirect() {
        let first = answer(&Method::Get, "/ui/style.css", None);
        let tag = header(&first, "etag").unwrap().to_string();
        let again = answer(&Method::Get, "/ui/style.css", Some(&tag));
        assert_eq!((again.status, again.body.len()), (304, 0));
        assert_eq!(answer(&Method::Get, "/ui/../spin.toml", None).status, 404);
        assert_eq!(answer(&Method::Get, "/ui/nope.js", None).status, 404);
        let post = answer(&Method::Post, "/ui/", None);
        assert_eq!(
            (post.status, header(&post, "allow")),
            (405, Some("GET, HEAD"))
        );
        let root = answer(&Method::Get, "/", None);
        assert_eq!(
            (root.status, header(&root, "location")),
            (302, Some("/ui/"))
        );
        let head = answer(&Method::Head, "/ui/app.js", None);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
    }

    #[test]
    fn every_file_in_assets_is_served() {
        // A file added to assets/ but not to the table would 404 in the
        // browser: the table and the folder agree.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(
                        p.strip_prefix(&dir)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        on_disk.retain(|p| !p.ends_with("README.md"));
        on_disk.sort();
        let mut served: Vec<String> = assets::ASSETS.iter().map(|a| a.path.to_string()).collect();
        served.sort();
        assert_eq!(on_disk, served);
    }
}
