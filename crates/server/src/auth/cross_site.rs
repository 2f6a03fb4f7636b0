//! Cross-site request forgery. A browser attaches the session cookie (and Basic
//! credentials it has cached) to requests that any other site makes it send, so a
//! request carrying such ambient credentials is refused when it changes something
//! (any method but GET, HEAD and OPTIONS) or opens a WebSocket, unless the browser
//! says that it comes from this origin.
//!
//! What the browser says is read as the Fetch Metadata standard and Go's
//! `net/http.CrossOriginProtection` read it: `Sec-Fetch-Site` (sent by every current
//! browser) must be `same-origin`, or `none` (the user typed it); without it, an
//! `Origin` header must name the host the request was sent to. A request with
//! neither comes from a program that is not a browser (curl, a client library), and
//! no other site can make such a program send anything, so it passes. Tokens in
//! `Authorization`/`X-Auth-Token` headers are never ambient: a page can only attach
//! them with script, and a cross-origin script cannot without CORS, which this
//! server never grants. This is a check of headers only, so it needs no token in
//! the pages and no state on the server.

use crate::error::ApiError;
use axum::http::{HeaderMap, Method};

/// Refuses a cross-site request that would act with ambient credentials.
pub fn check(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if !changes_something(method, headers) {
        return Ok(());
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return match site {
            "same-origin" | "none" => Ok(()),
            other => Err(refused(
                "Sec-Fetch-Site",
                format!("the request came from another site ({other})"),
            )),
        };
    }
    let Some(origin) = header("origin") else {
        return Ok(());
    };
    let host = header("host").unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    if origin_host.is_some_and(|o| o.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(refused(
            "Origin",
            format!("{origin} is not this server's origin"),
        ))
    }
}

fn changes_something(method: &Method, headers: &HeaderMap) -> bool {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let websocket = headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    !safe || websocket
}

fn refused(field: &str, why: String) -> ApiError {
    ApiError::forbidden(format!("cross-site request refused: {why}")).at(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", "logbook.example:8080".parse().expect("host"));
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn browsers_must_say_the_request_is_same_origin() {
        let post = Method::POST;
        for ok in [
            vec![("sec-fetch-site", "same-origin")],
            vec![("sec-fetch-site", "none")],
            vec![("origin", "http://logbook.example:8080")],
            vec![("origin", "https://LOGBOOK.example:8080")],
            // Not a browser: nothing another site could drive.
            vec![],
        ] {
            assert!(check(&post, &headers(&ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            // Sec-Fetch-Site wins over an Origin that would pass.
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://logbook.example:8080"),
            ],
            vec![("origin", "http://evil.example")],
            vec![("origin", "http://logbook.example:8081")],
            vec![("origin", "null")],
        ] {
            let error = check(&post, &headers(&bad)).expect_err("refused");
            assert_eq!(error.kind, crate::error::ErrorKind::Forbidden, "{bad:?}");
        }
    }

    #[test]
    fn reads_pass_but_websocket_handshakes_are_checked() {
        let cross = [("sec-fetch-site", "cross-site")];
        assert!(check(&Method::GET, &headers(&cross)).is_ok());
        assert!(check(&Method::HEAD, &headers(&cross)).is_ok());
        let upgrade = [("sec-fetch-site", "cross-site"), ("upgrade", "websocket")];
        assert!(check(&Method::GET, &headers(&upgrade)).is_err());
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(check(&method, &headers(&cross)).is_err(), "{method}");
        }
    }
}
