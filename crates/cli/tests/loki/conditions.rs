//! The core conditions the Loki dialect needs (a case-sensitive substring for `|=`,
//! negation for `!=` and absent labels), asked of each store directly: every store
//! answers `query`, `count` and `histogram` exactly as `Query::matches` defines.

use crate::support::{Backend, TestServer};
use logbook_core::histogram::Histogram;
use logbook_core::query::{Comparison, Scalar};
use logbook_core::{Condition, Field, Query, Record};
use serde_json::json;

pub async fn stores_answer_case_sensitive_substrings_and_negations(backend: Backend) {
    let server = TestServer::start(backend).await;
    let messages = [
        Some("Pull TIMEOUT on registry"),
        Some("pull timeout on registry"),
        Some("Disk full"),
        Some("Größe ÜBER Limit"),
        Some("to"),
        None,
    ];
    let records: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let mut record = json!({"kind": "log", "ts": 1_700_000_000 + i as i64 * 60});
            if let Some(message) = message {
                record["message"] = json!(message);
            }
            if i % 2 == 0 {
                record["category"] = json!("image");
            }
            record
        })
        .collect();
    server.ingest(json!(records)).await;
    let all = server
        .store
        .query(&Query::oldest_first())
        .await
        .expect("read back")
        .records;
    assert_eq!(all.len(), messages.len());

    let exact = |needle: &str| Condition::ContainsCaseSensitive(Field::Message, needle.into());
    let not = |c: Condition| Condition::Not(Box::new(c));
    let absent = |field: Field| {
        not(Condition::Compare(
            field,
            Comparison::Gt,
            Scalar::Text("".into()),
        ))
    };
    let cases = [
        vec![exact("TIMEOUT")],
        vec![exact("timeout")],
        vec![exact("ÜBER")],
        vec![exact("to")],
        vec![not(exact("TIMEOUT"))],
        vec![not(exact("timeout")), not(exact("full"))],
        vec![not(Condition::Contains(Field::Message, "TIMEOUT".into()))],
        vec![absent(Field::Category)],
        vec![absent(Field::Message)],
        vec![not(Condition::In(
            Field::Category,
            vec![Scalar::Text("image".into())],
        ))],
        vec![exact("registry"), not(absent(Field::Category))],
    ];
    for conditions in cases {
        let query = Query {
            conditions: conditions.clone(),
            ..Query::oldest_first()
        };
        let expected: Vec<i64> = all
            .iter()
            .filter(|r| query.matches(r))
            .map(|r| r.id)
            .collect();
        let found: Vec<i64> = ids(&server.store.query(&query).await.expect("query").records);
        assert_eq!(found, expected, "query {conditions:?}");
        let newest = Query {
            limit: Some(2),
            ..Query {
                conditions: conditions.clone(),
                ..Query::newest_first()
            }
        };
        let newest_found = ids(&server.store.query(&newest).await.expect("query").records);
        let newest_expected: Vec<i64> = expected.iter().rev().take(2).copied().collect();
        assert_eq!(newest_found, newest_expected, "newest {conditions:?}");
        let count = server.store.count(&query).await.expect("count");
        assert_eq!(count, expected.len() as u64, "count {conditions:?}");
        let histogram = Histogram::new(120_000_000, None).expect("histogram");
        let matching: Vec<&Record> = all.iter().filter(|r| query.matches(r)).collect();
        assert_eq!(
            server
                .store
                .histogram(&query, &histogram)
                .await
                .expect("histogram"),
            histogram.count(matching),
            "histogram {conditions:?}"
        );
    }
    server.stop().await;
}

fn ids(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}
