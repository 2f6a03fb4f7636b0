//! Reading credentials from request headers, in one place for every API.
//! Elasticsearch clients send `Authorization: ApiKey ...`: either base64 of
//! `user:token` (the client's `(id, key)` form) or a token as it is.

use axum::http::HeaderMap;
use base64::Engine;

pub(super) const SESSION_COOKIE: &str = "logbook_session";

#[derive(Debug, Clone, PartialEq)]
pub enum Presented {
    Token(String),
    Basic { user: String, secret: String },
    Session(String),
}

impl Presented {
    /// The first credential found, in order: Authorization, X-Auth-Token, cookie.
    pub fn from_headers(headers: &HeaderMap) -> Option<Presented> {
        if let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
            let (scheme, rest) = value.trim().split_once(' ')?;
            let rest = rest.trim();
            return match scheme.to_ascii_lowercase().as_str() {
                "bearer" | "token" if !rest.is_empty() => Some(Presented::Token(rest.to_string())),
                "basic" => basic(rest),
                // Elasticsearch clients: `ApiKey base64(id:key)`, or the key as given.
                "apikey" if !rest.is_empty() => {
                    basic(rest).or_else(|| Some(Presented::Token(rest.to_string())))
                }
                _ => None,
            };
        }
        if let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
            let token = token.trim();
            return (!token.is_empty()).then(|| Presented::Token(token.to_string()));
        }
        session_cookie(headers).map(Presented::Session)
    }
}

impl Presented {
    /// Whether a browser attaches these credentials by itself, to requests any site
    /// makes it send (a cookie, cached Basic credentials): see [`super::cross_site`].
    pub fn is_ambient(&self) -> bool {
        matches!(self, Presented::Session(_) | Presented::Basic { .. })
    }
}

fn basic(encoded: &str) -> Option<Presented> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret) = text.split_once(':')?;
    Some(Presented::Basic {
        user: user.to_string(),
        secret: secret.to_string(),
    })
}

/// The session id from the `Cookie` header(s), if present.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn every_header_form_is_read() {
        let token = Some(Presented::Token("abc".into()));
        assert_eq!(
            Presented::from_headers(&headers(&[("authorization", "Bearer abc")])),
            token
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("authorization", "Token abc")])),
            token
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("x-auth-token", "abc")])),
            token
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("authorization", "Basic YWxpY2U6czNjcjN0")])),
            Some(Presented::Basic {
                user: "alice".into(),
                secret: "s3cr3t".into()
            })
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("cookie", "a=b; logbook_session=xyz")])),
            Some(Presented::Session("xyz".into()))
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("authorization", "ApiKey abc")])),
            token
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("authorization", "ApiKey YWxpY2U6czNjcjN0")])),
            Some(Presented::Basic {
                user: "alice".into(),
                secret: "s3cr3t".into()
            })
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("authorization", "Negotiate x")])),
            None
        );
        assert_eq!(
            Presented::from_headers(&headers(&[("authorization", "Basic !!!")])),
            None
        );
    }
}
