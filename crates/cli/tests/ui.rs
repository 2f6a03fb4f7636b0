//! The web UI and what it relies on: the embedded pages and their headers, the
//! protection of cookie sessions against cross-site requests, the native endpoints
//! added for the UI, and (in `ui/browser.rs`) the UI itself in a real Chromium.

mod browser;
mod cross_site;
mod native_apis;
mod pages;
