//! The console's files, compiled into the binary (no CDN, no build step): two HTML pages, one
//! stylesheet, one script. Served with a strict Content-Security-Policy (scripts and styles
//! only from these files, no inline code) and an ETag so browsers revalidate cheaply.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// One embedded file.
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(body: &'static [u8], content_type: &'static str) -> Asset {
        Asset {
            body,
            content_type,
            etag: OnceLock::new(),
        }
    }

    /// A strong ETag from the content: a new binary with a changed file gets a new one.
    fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.body);
            format!("\"{}\"", hex::encode(&digest[..12]))
        })
    }
}

pub static LOGIN_HTML: Asset = Asset::new(
    include_bytes!("assets/login.html"),
    "text/html; charset=utf-8",
);
pub static CONSOLE_HTML: Asset = Asset::new(
    include_bytes!("assets/index.html"),
    "text/html; charset=utf-8",
);
pub static CONSOLE_CSS: Asset = Asset::new(
    include_bytes!("assets/console.css"),
    "text/css; charset=utf-8",
);
pub static CONSOLE_JS: Asset = Asset::new(
    include_bytes!("assets/console.js"),
    "text/javascript; charset=utf-8",
);

/// No inline script or style, nothing from elsewhere, no framing; the page talks only to this
/// origin (the JSON API and the event stream).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The headers every console response carries.
pub fn security_headers(headers: &mut HeaderMap) {
    let fixed: [(header::HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Not `no-referrer`: under it browsers send `Origin: null` on the console's own POSTs,
        // and the CSRF check (same Origin as Host) refuses them.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// `asset` with its type and security headers, or `304` when the browser's copy is current.
pub fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = asset.etag();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    security_headers(headers);
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(asset: &Asset) -> &str {
        std::str::from_utf8(asset.body).unwrap()
    }

    #[test]
    fn the_pages_have_no_inline_script_or_style_for_the_policy_to_block() {
        let handler = regex::Regex::new(r"\son[a-z]+=").unwrap();
        for page in [&LOGIN_HTML, &CONSOLE_HTML] {
            let html = text(page);
            for script in html.split("<script").skip(1) {
                let tag = &script[..script.find('>').unwrap()];
                assert!(tag.contains("src=\"/console/"), "inline script: {tag}");
                assert!(script[script.find('>').unwrap() + 1..].starts_with("</script>"));
            }
            assert!(!html.contains("<style"), "inline <style> in a page");
            assert!(
                !html.contains("style=\""),
                "inline style attribute in a page"
            );
            assert!(!handler.is_match(html), "inline event handler in a page");
            assert!(!html.contains("http://") && !html.contains("https://"));
        }
    }

    #[test]
    fn every_form_field_has_a_label() {
        for page in [&LOGIN_HTML, &CONSOLE_HTML] {
            let html = text(page);
            for opener in ["<input", "<textarea"] {
                for field in html.split(opener).skip(1) {
                    let tag = &field[..field.find('>').unwrap()];
                    if tag.contains("type=\"hidden\"") {
                        continue;
                    }
                    let id = tag.split("id=\"").nth(1).expect("field has an id");
                    let id = &id[..id.find('"').unwrap()];
                    assert!(html.contains(&format!("for=\"{id}\"")), "no label for {id}");
                }
            }
        }
    }

    #[test]
    fn the_script_never_writes_markup_from_data() {
        let js = text(&CONSOLE_JS);
        assert!(!js.contains("innerHTML") && !js.contains("outerHTML"));
        assert!(!js.contains("insertAdjacentHTML") && !js.contains("document.write"));
    }
}
