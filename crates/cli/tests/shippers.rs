//! Ingest from shippers (issue 17), judged by the real clients: syslog-ng and
//! `logger` over syslog, the OpenTelemetry Python SDK and JS exporter, the Loki
//! logging handler and a protobuf push built from Loki's definitions, the
//! elasticsearch and opensearch-py bulk helpers, and systemd-journal-upload. Each
//! test checks the documented field mapping (`docs/ingest.md`), the protocol's
//! error answers, and that nothing is written twice or half.

mod clients;
mod elastic;
mod journald;
mod limits;
mod loki;
mod otlp;
mod syslog;
