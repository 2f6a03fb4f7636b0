//! The Loki query API beside the native API, for the same questions over the same
//! records: Grafana's Explore log query with a line filter, and its logs-volume
//! histogram (with and without the filter). Each pair is measured alternately so
//! both see the same share of a noisy machine.

use super::measure::{ms, percentile};
use super::node::Child;
use super::workload;
use super::BenchArgs;
use std::time::{Duration, Instant};

/// Histogram-sized questions cost more than a page of lines: fewer repetitions.
const HEAVY_REPEAT: usize = 30;

struct Case {
    name: &'static str,
    loki: String,
    native: String,
    repeat: usize,
}

/// `[start, end)` covering every record written (the workload stamps records
/// `TS_STEP_MICROS` apart, ending about when it was created) plus an hour: a bounded
/// range, as Grafana always sends one. (It assumed one millisecond apart, so with
/// several `--records` sizes the first stage's records fell before the range.)
fn range(total: u64) -> (i64, i64) {
    let now = logbook_core::Timestamp::now().micros();
    let span = (total as i64).saturating_mul(workload::TS_STEP_MICROS);
    (now - span - 3_600_000_000, now + 60_000_000)
}

fn cases(args: &BenchArgs, server: &Child, total: u64) -> anyhow::Result<Vec<Case>> {
    let (start, end) = range(total);
    let (start_ns, end_ns) = (i128::from(start) * 1000, i128::from(end) * 1000);
    let (since, until) = (start as f64 / 1e6, end as f64 / 1e6);
    let word = workload::COMMON_WORD;
    let base = server.url("/loki/api/v1/query_range");
    let loki = |query: String, extra: &str| -> anyhow::Result<String> {
        let url = reqwest::Url::parse_with_params(&base, [("query", query)])?;
        Ok(format!("{url}&start={start_ns}&end={end_ns}{extra}"))
    };
    let native = |filters: &str| server.url(&format!("{filters}&since={since}&until={until}"));
    Ok(vec![
        Case {
            name: "log query, line filter, newest 100",
            loki: loki(
                format!(r#"{{category="container"}} |= "{word}""#),
                "&limit=100&direction=backward",
            )?,
            native: native(&format!("/logbook/v1/records?category=container&q={word}&limit=100")),
            repeat: args.repeat,
        },
        Case {
            name: "logs volume by level, 1m steps",
            loki: loki(
                r#"sum by (level, detected_level) (count_over_time({category="container"} | drop __error__ [1m]))"#.into(),
                "&step=60000ms",
            )?,
            native: native("/logbook/v1/histogram?category=container&by=level&interval=1m"),
            repeat: args.repeat.min(HEAVY_REPEAT),
        },
        Case {
            name: "logs volume of a line filter, 1m steps",
            loki: loki(
                format!(
                    r#"sum by (level, detected_level) (count_over_time({{category="container"}} |= "{word}" | drop __error__ [1m]))"#
                ),
                "&step=60000ms",
            )?,
            native: native(&format!(
                "/logbook/v1/histogram?category=container&q={word}&by=level&interval=1m"
            )),
            repeat: args.repeat.min(HEAVY_REPEAT),
        },
    ])
}

async fn time_one(http: &reqwest::Client, server: &Child, url: &str) -> anyhow::Result<Duration> {
    Ok(answer(http, server, url).await?.0)
}

/// The answer's time and body; a body that must not be empty is checked once per
/// case, so that a question the workload has no records for is not timed as a fast one.
async fn answer(
    http: &reqwest::Client,
    server: &Child,
    url: &str,
) -> anyhow::Result<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let response = http.get(url).bearer_auth(server.token()).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    anyhow::ensure!(
        status == 200,
        "{url} answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let elapsed = started.elapsed();
    Ok((elapsed, body.to_vec()))
}

/// p50/p99 of each Loki query beside the native query asking the same.
pub async fn queries(
    http: &reqwest::Client,
    args: &BenchArgs,
    server: &Child,
    total: u64,
) -> anyhow::Result<()> {
    for case in cases(args, server, total)? {
        let (_, body) = answer(http, server, &case.loki).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)?;
        let result = &answer["data"]["result"];
        anyhow::ensure!(
            result.as_array().is_some_and(|r| !r.is_empty()),
            "the Loki query of {:?} found nothing in the workload: {result}",
            case.name
        );
        let (mut loki, mut native) = (Vec::new(), Vec::new());
        for i in 0..case.repeat + 2 {
            let l = time_one(http, server, &case.loki).await?;
            let n = time_one(http, server, &case.native).await?;
            if i >= 2 {
                loki.push(l);
                native.push(n);
            }
        }
        println!(
            "loki {:<40} p50 {:>8.2} ms   p99 {:>8.2} ms   (native p50 {:>8.2} ms, p99 {:>8.2} ms)",
            case.name,
            ms(percentile(&mut loki, 50.0)),
            ms(percentile(&mut loki, 99.0)),
            ms(percentile(&mut native, 50.0)),
            ms(percentile(&mut native, 99.0)),
        );
    }
    Ok(())
}
