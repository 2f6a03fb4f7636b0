//! An independent Loki client, written from Loki's documented HTTP API
//! (docs/sources/reference/loki-http-api.md of grafana/loki) because the real
//! `logcli` cannot be installed here: every answer is decoded into the documented
//! shapes, strictly (unknown fields refused where the documents list every field),
//! so a shape Logbook gets wrong fails the decode, not just an assertion.

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct LokiClient {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    /// Send `X-Loki-Response-Encoding-Flags: categorize-labels`, as Grafana does.
    pub categorize: bool,
}

/// `{"status": "success", "data": ...}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    pub status: String,
    pub data: T,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryData {
    #[serde(rename = "resultType")]
    pub result_type: String,
    pub result: Value,
    pub stats: Stats,
    #[serde(rename = "encodingFlags", default)]
    pub encoding_flags: Vec<String>,
}

/// The documented statistics; `summary` is what Grafana shows.
#[derive(Debug, Deserialize)]
pub struct Stats {
    pub summary: Summary,
    pub ingester: Value,
    pub store: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub bytes_processed_per_second: u64,
    pub exec_time: f64,
    pub lines_processed_per_second: u64,
    pub queue_time: f64,
    pub total_bytes_processed: u64,
    pub total_lines_processed: u64,
    pub total_entries_returned: u64,
}

/// `{"stream": {...}, "values": [[ns, line], ...]}`; with categorised labels each
/// value has a third element `{"structuredMetadata": {...}, "parsed": {...}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    pub stream: Labels,
    pub values: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Entry {
    Plain(String, String),
    Categorized(String, String, Categories),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Categories {
    #[serde(rename = "structuredMetadata", default)]
    pub structured_metadata: Labels,
    #[serde(default)]
    pub parsed: Labels,
}

impl Entry {
    pub fn nanos(&self) -> &str {
        match self {
            Entry::Plain(ts, _) | Entry::Categorized(ts, _, _) => ts,
        }
    }

    pub fn line(&self) -> &str {
        match self {
            Entry::Plain(_, line) | Entry::Categorized(_, line, _) => line,
        }
    }

    pub fn categories(&self) -> Option<&Categories> {
        match self {
            Entry::Plain(..) => None,
            Entry::Categorized(_, _, c) => Some(c),
        }
    }
}

/// `{"metric": {...}, "values": [[seconds, "value"], ...]}`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSeries {
    pub metric: Labels,
    pub values: Vec<(f64, String)>,
}

/// `{"metric": {...}, "value": [seconds, "value"]}`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub metric: Labels,
    pub value: (f64, String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexStats {
    pub streams: u64,
    pub chunks: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    #[serde(rename = "buildUser")]
    pub build_user: String,
    #[serde(rename = "buildDate")]
    pub build_date: String,
    #[serde(rename = "goVersion")]
    pub go_version: String,
}

/// A refusal: the status and the body text.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl LokiClient {
    pub fn new(base: &str, token: &str) -> LokiClient {
        LokiClient {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
            categorize: true,
        }
    }

    pub fn plain(mut self) -> LokiClient {
        self.categorize = false;
        self
    }

    fn get(&self, path: &str, params: &[(&str, String)]) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(params);
        if self.categorize {
            request = request.header("X-Loki-Response-Encoding-Flags", "categorize-labels");
        }
        request
    }

    pub async fn raw(&self, path: &str, params: &[(&str, String)]) -> Result<Value, Refused> {
        decode(self.get(path, params).send().await.expect("request")).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, String)]) -> Result<Value, Refused> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .form(form)
            .send()
            .await
            .expect("request");
        decode(response).await
    }

    pub async fn query_range(&self, params: &[(&str, String)]) -> Result<QueryData, Refused> {
        let value = self.raw("/loki/api/v1/query_range", params).await?;
        Ok(envelope(value))
    }

    pub async fn query(&self, params: &[(&str, String)]) -> Result<QueryData, Refused> {
        let value = self.raw("/loki/api/v1/query", params).await?;
        Ok(envelope(value))
    }

    pub async fn labels(&self, params: &[(&str, String)]) -> Vec<String> {
        envelope(
            self.raw("/loki/api/v1/labels", params)
                .await
                .expect("labels"),
        )
    }

    pub async fn label_values(&self, name: &str, params: &[(&str, String)]) -> Vec<String> {
        let path = format!("/loki/api/v1/label/{name}/values");
        envelope(self.raw(&path, params).await.expect("label values"))
    }

    pub async fn series(&self, params: &[(&str, String)]) -> Vec<Labels> {
        envelope(
            self.raw("/loki/api/v1/series", params)
                .await
                .expect("series"),
        )
    }

    pub async fn index_stats(&self, params: &[(&str, String)]) -> IndexStats {
        let value = self
            .raw("/loki/api/v1/index/stats", params)
            .await
            .expect("index stats");
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("index stats {value}: {e}"))
    }

    pub async fn buildinfo(&self) -> BuildInfo {
        let value = self
            .raw("/loki/api/v1/status/buildinfo", &[])
            .await
            .expect("buildinfo");
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("buildinfo {value}: {e}"))
    }

    /// Opens `/loki/api/v1/tail`.
    pub async fn tail(&self, params: &[(&str, String)]) -> Tail {
        let query = serde_urlencoded::to_string(params).expect("encode");
        let url = format!(
            "{}/loki/api/v1/tail?{query}",
            self.base.replacen("http://", "ws://", 1)
        );
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        if self.categorize {
            request.headers_mut().insert(
                "x-loki-response-encoding-flags",
                "categorize-labels".parse().expect("header"),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("tail connects");
        Tail { socket }
    }
}

async fn decode(response: reqwest::Response) -> Result<Value, Refused> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    if status != 200 {
        return Err(Refused {
            status,
            content_type,
            text,
        });
    }
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

fn envelope<T: serde::de::DeserializeOwned>(value: Value) -> T {
    let envelope: Envelope<T> = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("not Loki's documented shape ({e}): {value}"));
    assert_eq!(envelope.status, "success");
    envelope.data
}

impl QueryData {
    pub fn streams(&self) -> Vec<Stream> {
        assert_eq!(self.result_type, "streams");
        serde_json::from_value(self.result.clone())
            .unwrap_or_else(|e| panic!("streams ({e}): {}", self.result))
    }

    pub fn matrix(&self) -> Vec<MatrixSeries> {
        assert_eq!(self.result_type, "matrix");
        serde_json::from_value(self.result.clone())
            .unwrap_or_else(|e| panic!("matrix ({e}): {}", self.result))
    }

    pub fn vector(&self) -> Vec<Sample> {
        assert_eq!(self.result_type, "vector");
        serde_json::from_value(self.result.clone())
            .unwrap_or_else(|e| panic!("vector ({e}): {}", self.result))
    }

    /// Every entry of every stream, with its stream, in answer order.
    pub fn entries(&self) -> Vec<(Labels, Entry)> {
        self.streams()
            .into_iter()
            .flat_map(|s| {
                let labels = s.stream.clone();
                s.values.into_iter().map(move |e| (labels.clone(), e))
            })
            .collect()
    }
}

/// A live tail, message by message.
pub struct Tail {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// One tail message: `{"streams": [...]}` and the `cursor` Logbook adds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailMessage {
    pub streams: Vec<Stream>,
    #[serde(default)]
    pub dropped_entries: Vec<Value>,
    pub cursor: String,
    #[serde(rename = "encodingFlags", default)]
    pub encoding_flags: Vec<String>,
}

impl Tail {
    /// The next message, or `None` when the server closed the tail.
    pub async fn next(&mut self) -> Option<TailMessage> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => {
                    return Some(
                        serde_json::from_str(&text)
                            .unwrap_or_else(|e| panic!("tail message ({e}): {text}")),
                    )
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.send(Message::Close(None)).await;
    }
}
