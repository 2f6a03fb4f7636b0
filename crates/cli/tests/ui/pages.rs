//! The UI's pages over HTTP: the shell at every UI path without credentials (it
//! holds no data), its strict headers, versioned assets cached for a year and
//! gzipped, and nothing served under another build's version.

use crate::support::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_and_its_assets_are_served_with_strict_headers() {
    let server = TestServer::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    let mut asset_base = None;
    for page in ["/", "/actions", "/objects", "/admin"] {
        let response = http.get(server.url(page)).send().await.expect("page");
        assert_eq!(response.status(), 200, "{page}");
        let headers = response.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(header("content-type").starts_with("text/html"), "{page}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{page}: {directive} missing in {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(
            header("cache-control"),
            "no-cache",
            "the shell is revalidated"
        );
        let html = response.text().await.expect("html");
        assert!(!html.contains("<script>"), "no inline script");
        let start = html.find("src=\"/ui/").expect("module script") + 5;
        let end = html[start..].find("/app.js").expect("app.js") + start;
        asset_base = Some(html[start..end].to_string());
    }
    let base = asset_base.expect("asset base");

    let response = http
        .get(server.url(&format!("{base}/search.js")))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .expect("asset");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("content-type").starts_with("text/javascript"));
    assert_eq!(header("content-encoding"), "gzip");
    assert_eq!(header("vary"), "accept-encoding");
    assert_eq!(
        header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip bytes");

    // Without gzip in Accept-Encoding, the plain file.
    let plain = http
        .get(server.url(&format!("{base}/style.css")))
        .send()
        .await
        .expect("asset");
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain
        .text()
        .await
        .expect("css")
        .contains("prefers-color-scheme: dark"));

    for missing in [
        "/ui/000000000000/app.js".to_string(),
        format!("{base}/nothing.js"),
        "/actions/extra".to_string(),
    ] {
        let response = http.get(server.url(&missing)).send().await.expect("get");
        assert_eq!(response.status(), 404, "{missing}");
    }
    // The data behind the pages still needs credentials.
    let response = http
        .get(server.url("/logbook/v1/records"))
        .send()
        .await
        .expect("records");
    assert_eq!(response.status(), 401);
    server.stop().await;
}
