//! The Docker Cloud audit dialect and the native actions API, judged by the real
//! python-dockercloud 1.0.12 (scripts in `tests/python/dockercloud_*.py`) against a
//! live node; the platform side is driven through `/logbook/v1/actions`.

mod behind;
mod client_reads;
mod client_writes;
mod fixture;
mod wire;
