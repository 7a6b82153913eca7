//! The dashboard: a few static files compiled into the binary and served at `/` (the page) and `/ui/…` (its
//! script, style and icon) by `dreamops serve` and by the `api` function. The page is a client of the public
//! `/v1` API and nothing else: it holds no privilege an API client lacks.
//!
//! Safe by construction: every answer carries a Content-Security-Policy that allows only this origin's own
//! script and style (no inline script or style, no `eval`), requires Trusted Types for every HTML sink (so the
//! script cannot parse a string as HTML even by mistake: it builds nodes and sets `textContent`), refuses to be
//! framed, and sends no referrer. The script keeps its credential in `sessionStorage`, sends it as a bearer
//! header (no cookies, so no CSRF), and never puts it in a URL.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Every file the dashboard has. The page is `/`; the others are under `/ui/`.
pub static ASSETS: &[Asset] = &[
    Asset {
        path: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../assets/index.html"),
    },
    Asset { path: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../assets/app.js") },
    Asset { path: "app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../assets/app.css") },
    Asset { path: "icon.svg", content_type: "image/svg+xml", body: include_bytes!("../assets/icon.svg") },
];

/// What the policy must allow beyond this origin.
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// Origins the page may call besides its own: the OIDC issuer (discovery and token endpoint).
    pub connect_origins: Vec<String>,
}

impl DashboardConfig {
    /// The configuration for an OIDC issuer URL (its origin is allowed; a URL that does not parse adds nothing).
    pub fn with_issuer(issuer: Option<&str>) -> Self {
        let connect_origins = issuer.and_then(origin).into_iter().collect();
        Self { connect_origins }
    }

    /// The Content-Security-Policy every dashboard answer carries.
    pub fn policy(&self) -> String {
        let mut connect = String::from("'self'");
        for o in &self.connect_origins {
            connect.push(' ');
            connect.push_str(o);
        }
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
             form-action 'none'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; \
             trusted-types 'none'"
        )
    }
}

/// `scheme://host[:port]` of an http(s) URL, when it is one (and contains nothing a policy could misread).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let ok = !host.is_empty()
        && !host.contains('@')
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then(|| format!("{scheme}://{host}"))
}

/// The headers of every dashboard answer.
pub fn security_headers(config: &DashboardConfig, headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, &config.policy());
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(headers, header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
    set(headers, header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()");
}

fn serve(config: &DashboardConfig, name: &str, req: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == name) else {
        let mut resp = (StatusCode::NOT_FOUND, "not found\n").into_response();
        security_headers(config, resp.headers_mut());
        return resp;
    };
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(asset.body))[..24]);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag));
    let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = resp.headers_mut();
    security_headers(config, h);
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    // Revalidated on every load (a new binary's assets apply at once), 304 when unchanged.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// `GET /` and `GET /ui/{file}`.
pub fn router(config: DashboardConfig) -> Router {
    let page = config.clone();
    Router::new()
        .route("/", get(move |h: HeaderMap| async move { serve(&page, "index.html", &h) }))
        .route("/ui/{file}", get(move |Path(f): Path<String>, h: HeaderMap| async move { serve(&config, &f, &h) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, inm: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(t) = inm {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        router(DashboardConfig::with_issuer(Some("https://login.example.com/realms/ops")))
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_answer_carries_the_policy_and_assets_revalidate() {
        let page = get("/", None).await;
        assert_eq!(page.status(), 200);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe"), "{csp}");
        assert!(csp.contains("connect-src 'self' https://login.example.com;"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("require-trusted-types-for 'script'"));
        assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let tag = page.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(get("/", Some(&tag)).await.status(), 304);
        let js = get("/ui/app.js", None).await;
        assert_eq!(js.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        let missing = get("/ui/../Cargo.toml", None).await;
        assert_eq!(missing.status(), 404);
        let missing = get("/ui/secret.txt", None).await;
        assert_eq!(missing.status(), 404);
        assert!(missing.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }

    #[test]
    fn origins_are_parsed_strictly() {
        assert_eq!(origin("https://id.example.com/realms/x").as_deref(), Some("https://id.example.com"));
        assert_eq!(origin("http://127.0.0.1:9000").as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(origin("https://a.com; script-src *"), None);
        assert_eq!(origin("javascript:alert(1)"), None);
        assert_eq!(origin("https://user@evil.com"), None);
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains("<style"), "{html}");
        assert!(html.contains("<script type=\"module\" src=\"/ui/app.js\"></script>"));
    }
}
