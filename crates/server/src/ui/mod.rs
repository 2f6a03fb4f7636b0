//! The web UI: an HTML shell, plain ES modules and one stylesheet, embedded in the
//! binary at compile time (no build step, so building needs no Node.js). The pages
//! only talk to the public APIs with the session cookie, like any other client; the
//! shell and its assets hold no data, so they are served without authentication
//! (the sign-in form is one of them).
//!
//! Assets live under `/ui/<version>/`, where the version is a digest of every
//! asset: their names change whenever their bytes do, so they are cached for a year
//! and never revalidated, while the shell itself is revalidated on every load. Each
//! is gzipped once, on first use. Every page is served with a strict
//! Content-Security-Policy: scripts and styles only from this origin, no inline
//! script, no `eval`, connections only to this origin, no framing.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

/// The pages the UI routes itself; each is the same shell.
pub const PAGES: [&str; 4] = ["/", "/actions", "/objects", "/admin"];

/// Where the versioned assets are served.
pub const ASSET_ROOT: &str = "/ui";

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("assets/", $name)),
        }
    };
}

/// Every file under `assets/` but the shell (a test checks none is forgotten).
const ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("search.js", "text/javascript; charset=utf-8"),
    asset!("histogram.js", "text/javascript; charset=utf-8"),
    asset!("live.js", "text/javascript; charset=utf-8"),
    asset!("panel.js", "text/javascript; charset=utf-8"),
    asset!("actions.js", "text/javascript; charset=utf-8"),
    asset!("objects.js", "text/javascript; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

const SHELL: &str = include_str!("assets/index.html");

/// A response body as stored and gzipped.
struct Prepared {
    content_type: &'static str,
    plain: Bytes,
    gzip: Bytes,
}

impl Prepared {
    fn new(content_type: &'static str, plain: Bytes) -> Prepared {
        let gzip = gzip(&plain).unwrap_or_else(|| plain.clone());
        Prepared {
            content_type,
            plain,
            gzip,
        }
    }
}

struct Bundle {
    version: String,
    shell: Prepared,
    assets: HashMap<&'static str, Prepared>,
}

static BUNDLE: LazyLock<Bundle> = LazyLock::new(|| {
    let mut digest = Sha256::new();
    for asset in ASSETS {
        digest.update(asset.name.as_bytes());
        digest.update([0]);
        digest.update(asset.bytes);
    }
    let version: String = digest
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let shell = SHELL.replace("{{assets}}", &format!("{ASSET_ROOT}/{version}"));
    Bundle {
        shell: Prepared::new("text/html; charset=utf-8", Bytes::from(shell)),
        assets: ASSETS
            .iter()
            .map(|a| {
                (
                    a.name,
                    Prepared::new(a.content_type, Bytes::from_static(a.bytes)),
                )
            })
            .collect(),
        version,
    }
});

fn gzip(bytes: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router.route(&format!("{ASSET_ROOT}/{{version}}/{{file}}"), get(asset))
}

/// The version segment of the asset URLs this build serves.
pub fn version() -> &'static str {
    &BUNDLE.version
}

async fn shell(headers: HeaderMap) -> Response {
    respond(&BUNDLE.shell, &headers, "no-cache")
}

async fn asset(Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    match BUNDLE.assets.get(file.as_str()) {
        Some(asset) if version == BUNDLE.version => {
            respond(asset, &headers, "public, max-age=31536000, immutable")
        }
        // Another build's asset (a node of another version behind the same name):
        // not found rather than the wrong bytes under a name cached for a year.
        _ => ([(header::CACHE_CONTROL, "no-store")], ApiError::not_found()).into_response(),
    }
}

fn respond(body: &Prepared, request: &HeaderMap, cache: &'static str) -> Response {
    let gzip = accepts_gzip(request);
    let mut response = if gzip {
        body.gzip.clone().into_response()
    } else {
        body.plain.clone().into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(body.content_type),
    );
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether `Accept-Encoding` lists gzip without refusing it (`gzip;q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// The names and compressed sizes of what a first visit loads, for the size target.
pub fn first_load_bytes() -> Vec<(&'static str, usize, usize)> {
    let mut sizes = vec![(
        "index.html",
        BUNDLE.shell.plain.len(),
        BUNDLE.shell.gzip.len(),
    )];
    for asset in ASSETS {
        if let Some(prepared) = BUNDLE.assets.get(asset.name) {
            sizes.push((asset.name, prepared.plain.len(), prepared.gzip.len()));
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_assets_folder_is_served() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui/assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
            .expect("assets folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "index.html")
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn gzip_is_chosen_unless_refused() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, value.parse().expect("header"));
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br, zstd"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("br, zstd"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_shell_names_the_versioned_assets() {
        let shell = std::str::from_utf8(&BUNDLE.shell.plain).expect("utf-8");
        assert!(!shell.contains("{{"), "placeholder left in the shell");
        assert!(shell.contains(&format!("/ui/{}/app.js", version())));
        assert!(!shell.contains("<script>"), "no inline script: {shell}");
    }
}
