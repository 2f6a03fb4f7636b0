//! Logbook's integration tests, in one binary (as ripgrep keeps its `tests/tests.rs`)
//! so the harness in `support/` compiles and links once. Each module starts the real
//! server (in process on an ephemeral port, or the real binary for restarts and
//! signals) and talks to it as a client would; `store_tests!` runs a behavioural test
//! once per store. Run one area with `cargo test -p logbook --test integration native::`.

#[macro_use]
mod support;

mod accounts_support;

mod access_matrix;
mod accounts;
mod accounts_cli;
mod backup;
mod cli_client;
mod crash;
mod disk_full;
mod dockercloud;
mod durability;
mod errors;
mod fsync_failure;
mod hostile;
mod idempotency;
mod integrity;
mod journal;
mod limits;
mod loki;
mod metrics;
mod native;
mod openapi;
mod ops;
mod postgres;
mod postgres_restart;
mod qnap;
mod sessions;
mod shippers;
mod store;
mod stream;
mod tokens;
mod ui;
mod waldur;
