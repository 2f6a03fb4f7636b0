//! The web UI and what it relies on: the embedded pages and their headers, the
//! protection of cookie sessions against cross-site requests, the native endpoints
//! added for the UI, and (in `ui/browser.rs`) the UI itself in a real Chromium.

mod accounts_support;
mod support;

#[path = "ui/browser.rs"]
mod browser;
#[path = "ui/cross_site.rs"]
mod cross_site;
#[path = "ui/native_apis.rs"]
mod native_apis;
#[path = "ui/pages.rs"]
mod pages;
