//! Talking to the server: authenticated requests, and any failure (unreachable,
//! refused, a 4xx/5xx with the native error body) turned into one clear line.

use super::ServerArgs;
use anyhow::{anyhow, Context};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(args: &ServerArgs) -> anyhow::Result<Client> {
        let base = args.server.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--server {base:?} must start with http:// or https://"
        );
        Ok(Client {
            base,
            token: args.token.clone().filter(|t| !t.is_empty()),
            http: reqwest::Client::builder()
                .user_agent(concat!("logbook-cli/", env!("CARGO_PKG_VERSION")))
                .build()?,
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends and returns the response if it is a success; otherwise the error line.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(anyhow!(failure(response).await))
    }

    pub async fn get_json(&self, path: &str, params: &[(String, String)]) -> anyhow::Result<Value> {
        let response = self
            .send(self.request(Method::GET, path).query(params))
            .await?;
        response
            .json()
            .await
            .with_context(|| format!("the server's answer to {path} is not JSON"))
    }

    pub fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        // reqwest's own message nests the cause; the innermost one is what a person needs.
        let mut cause: &dyn std::error::Error = &error;
        while let Some(next) = cause.source() {
            cause = next;
        }
        anyhow!("cannot reach the server at {}: {cause}", self.base)
    }
}

/// `error` led by `field`, once: the native error text already starts with its
/// field (`level: unknown level`), a dialect's may not.
pub fn with_field(field: &str, error: &str) -> String {
    if error.starts_with(&format!("{field}: ")) || error == field {
        error.to_string()
    } else {
        format!("{field}: {error}")
    }
}

/// `server answered 400 Bad Request: level: unknown level "LOUD"` from the native
/// error body `{"error", "status", "field"}`, or the status and a short body.
pub async fn failure(response: Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let detail = match serde_json::from_str::<Value>(&text) {
        Ok(body) => match (body["field"].as_str(), body["error"].as_str()) {
            // The server's `error` already starts with the field it names.
            (Some(field), Some(error)) => with_field(field, error),
            (None, Some(error)) => error.to_string(),
            _ => body.to_string(),
        },
        Err(_) => text.trim().chars().take(200).collect(),
    };
    let hint = match status.as_u16() {
        401 => " (give a token with --token or LOGBOOK_TOKEN)",
        _ => "",
    };
    if detail.is_empty() {
        format!("server answered {status}{hint}")
    } else {
        format!("server answered {status}: {detail}{hint}")
    }
}
