//! The Loki query API and its LogQL subset, as Grafana's Loki data source and an
//! independent client written from Loki's documented HTTP API use them, against a
//! real server on every store.

#[path = "loki/conditions.rs"]
mod conditions;
mod support;

use conditions::stores_answer_case_sensitive_substrings_and_negations;

store_tests!(stores_answer_case_sensitive_substrings_and_negations,);
