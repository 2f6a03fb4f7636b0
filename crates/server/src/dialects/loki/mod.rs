//! The Loki query API (`/loki/api/v1/...`) for Grafana's Loki data source and
//! Loki's clients: LogQL parsed properly, translated onto the core query and the
//! store's count, group and histogram paths. See `docs/loki.md`.

pub mod logql;
