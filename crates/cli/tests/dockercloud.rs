//! The Docker Cloud audit dialect and the native actions API, judged by the real
//! python-dockercloud 1.0.12 (scripts in `tests/python/dockercloud_*.py`) against a
//! live node; the platform side is driven through `/logbook/v1/actions`.

mod support;

#[path = "dockercloud/client_reads.rs"]
mod client_reads;
#[path = "dockercloud/client_writes.rs"]
mod client_writes;
#[path = "dockercloud/fixture.rs"]
mod fixture;
#[path = "dockercloud/wire.rs"]
mod wire;
