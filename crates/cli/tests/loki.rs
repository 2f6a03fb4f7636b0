//! The Loki query API and its LogQL subset, as Grafana's Loki data source and an
//! independent client written from Loki's documented HTTP API use them, against a
//! real server on every store.

mod access;
mod client;
mod conditions;
mod data;
mod errors;
mod grafana;
mod logql;
mod tail;

use access::a_domain_user_sees_only_its_domain_through_every_loki_endpoint;
use conditions::stores_answer_case_sensitive_substrings_and_negations;
use errors::bad_queries_and_parameters_get_lokis_400;
use grafana::{
    explore_log_query_with_a_line_filter_and_its_logs_volume, save_and_test_and_the_label_browser,
};
use logql::{
    lines_come_in_time_order_even_when_written_out_of_order,
    metric_queries_aggregations_and_arithmetic, selectors_line_filters_parsers_and_formatters,
};
use tail::{
    a_resumed_tail_loses_and_repeats_nothing_under_concurrent_writes,
    tail_sends_history_then_live_lines_in_lokis_shape,
};

store_tests!(
    lines_come_in_time_order_even_when_written_out_of_order,
    bad_queries_and_parameters_get_lokis_400,
    selectors_line_filters_parsers_and_formatters,
    metric_queries_aggregations_and_arithmetic,
    a_domain_user_sees_only_its_domain_through_every_loki_endpoint,
    tail_sends_history_then_live_lines_in_lokis_shape,
    a_resumed_tail_loses_and_repeats_nothing_under_concurrent_writes,
    stores_answer_case_sensitive_substrings_and_negations,
    save_and_test_and_the_label_browser,
    explore_log_query_with_a_line_filter_and_its_logs_volume,
);
