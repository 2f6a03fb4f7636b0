//! Waldur's page-number paging: `page` and `page_size` in, a `Link` header with
//! first/prev/next/last and an `X-Result-Count` header out, body a bare JSON array.
//!
//! The client's `sync_all` reads only `page` from the `next` link and splits the header
//! on `,` and `;`, so links are built with every other character percent-encoded.

use super::DrfError;
use crate::error::{ApiError, ErrorKind};
use crate::params::Params;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

/// Rows per page when `page_size` is not given (Waldur's `PAGE_SIZE`).
pub(super) const DEFAULT_PAGE_SIZE: u64 = 10;
/// Larger `page_size` values are lowered to this, as DRF's `max_page_size` does.
pub(super) const MAX_PAGE_SIZE: u64 = 300;

#[derive(Debug, Clone, Copy)]
pub(super) struct Paging {
    pub page: u64,
    pub size: u64,
}

impl Paging {
    pub(super) fn parse(params: &Params) -> Result<Paging, DrfError> {
        let positive = |name: &str| -> Result<Option<u64>, DrfError> {
            params
                .non_empty(name)
                .map(|text| {
                    text.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            DrfError::field(name, "A valid positive integer is required.")
                        })
                })
                .transpose()
        };
        Ok(Paging {
            page: positive("page")?.unwrap_or(1),
            size: positive("page_size")?
                .unwrap_or(DEFAULT_PAGE_SIZE)
                .min(MAX_PAGE_SIZE),
        })
    }

    pub(super) fn last_page(&self, total: u64) -> u64 {
        total.div_ceil(self.size).max(1)
    }

    /// DRF answers a page past the end with 404 `{"detail": "Invalid page."}`.
    pub(super) fn check(&self, total: u64) -> Result<(), DrfError> {
        if self.page > self.last_page(total) {
            return Err(DrfError(ApiError::new(
                ErrorKind::NotFound,
                "Invalid page.",
            )));
        }
        Ok(())
    }

    /// Rows to skip; only meaningful after [`Paging::check`].
    pub(super) fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.size)
    }
}

/// Where the links point: the request's own path and parameters, `page` replaced.
pub(super) struct LinkBase<'a> {
    pub path: &'a str,
    pub raw_query: Option<&'a str>,
    pub request_headers: &'a HeaderMap,
    pub tls: bool,
}

impl LinkBase<'_> {
    fn url(&self, page: u64) -> String {
        let mut pairs: Vec<(String, String)> = self
            .raw_query
            .and_then(|raw| serde_urlencoded::from_str(raw).ok())
            .unwrap_or_default();
        pairs.retain(|(k, _)| k != "page");
        pairs.push(("page".into(), page.to_string()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}{}?{query}", self.origin(), self.path)
    }

    /// `http://host` when the Host header is plain enough to copy into a header
    /// safely; otherwise the links are relative, which the client handles as well.
    fn origin(&self) -> String {
        let host = self
            .request_headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            });
        match host {
            Some(host) => format!("{}://{host}", if self.tls { "https" } else { "http" }),
            None => String::new(),
        }
    }
}

/// The list response: body, `Link` and `X-Result-Count`.
pub(super) fn respond(
    body: Vec<Value>,
    paging: &Paging,
    total: u64,
    base: &LinkBase<'_>,
) -> Response {
    let mut response = Json(Value::Array(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-result-count", HeaderValue::from(total));
    let last = paging.last_page(total);
    let mut links = vec![format!("<{}>; rel=\"first\"", base.url(1))];
    if paging.page > 1 {
        let prev = paging.page.min(last + 1) - 1;
        links.push(format!("<{}>; rel=\"prev\"", base.url(prev)));
    }
    if paging.page < last {
        links.push(format!("<{}>; rel=\"next\"", base.url(paging.page + 1)));
    }
    links.push(format!("<{}>; rel=\"last\"", base.url(last)));
    if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
        headers.insert("link", value);
    }
    response
}
