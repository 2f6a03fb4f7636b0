//! `logbook query [filters] [--output table|json|csv]`: one page of matching records
//! (or several, for a `--limit` above the server's page maximum).

use super::http::Client;
use super::{Filters, ServerArgs};
use clap::{Args, ValueEnum};
use logbook_core::spreadsheet::neutralise_formula;
use logbook_server::native::export::CSV_HEADER;
use serde_json::Value;
use std::io::Write;

/// The server's largest page; bigger limits are fetched page by page.
const PAGE_MAX: u64 = 10_000;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub filters: Filters,
    /// How many records at most.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Newest first (the default) or oldest first.
    #[arg(long, value_enum, default_value = "desc")]
    pub order: Order,
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: Output,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.limit > 0, "--limit must be at least 1");
    let client = Client::new(&args.server)?;
    let records = fetch(&client, &args).await?;
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, &records)?;
            writeln!(out)?;
        }
        Output::Csv => write_csv(&mut out, &records)?,
        Output::Table => write_table(&mut out, &records)?,
    }
    out.flush()?;
    Ok(())
}

async fn fetch(client: &Client, args: &QueryArgs) -> anyhow::Result<Vec<Value>> {
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let left = args.limit - records.len() as u64;
        let mut params = args.filters.params();
        params.push(("limit".into(), left.min(PAGE_MAX).to_string()));
        let order = match args.order {
            Order::Asc => "asc",
            Order::Desc => "desc",
        };
        params.push(("order".into(), order.into()));
        if let Some(cursor) = &cursor {
            params.push(("cursor".into(), cursor.clone()));
        }
        let page = client.get_json("/logbook/v1/records", &params).await?;
        let batch = page["records"].as_array().cloned().unwrap_or_default();
        let got = batch.len();
        records.extend(batch);
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if got == 0 || records.len() as u64 >= args.limit || cursor.is_none() {
            return Ok(records);
        }
    }
}

/// The same columns as the server's CSV export.
pub fn write_csv(out: &mut impl Write, records: &[Value]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    for record in records {
        let row = CSV_HEADER.iter().map(|name| {
            let text = match &record[*name] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            neutralise_formula(&text).into_owned()
        });
        writer.write_record(row)?;
    }
    writer.flush()?;
    Ok(())
}

fn write_table(out: &mut impl Write, records: &[Value]) -> anyhow::Result<()> {
    const HEADERS: [&str; 6] = ["ID", "TIME", "LEVEL", "KIND", "CATEGORY", "USER"];
    /// Wider cells are cut (with `…`) so one long value does not push every row.
    const MAX_WIDTH: usize = 40;
    let cell = |record: &Value, name: &str| -> String {
        let text = match &record[name] {
            Value::String(s) => s.clone(),
            Value::Null => "-".to_string(),
            other => other.to_string(),
        };
        if text.chars().count() > MAX_WIDTH {
            let cut: String = text.chars().take(MAX_WIDTH - 1).collect();
            format!("{cut}…")
        } else {
            text
        }
    };
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| ["id", "ts", "level", "kind", "category", "user"].map(|name| cell(r, name)))
        .collect();
    // Each column as wide as its widest cell (counted in characters, not bytes).
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let pad = |text: &str, width: usize, right: bool| {
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        if right {
            format!("{fill}{text}")
        } else {
            format!("{text}{fill}")
        }
    };
    let line = |cells: [&str; 6], message: &str| {
        let mut text = String::new();
        for (i, (value, width)) in cells.iter().zip(widths).enumerate() {
            text.push_str(&pad(value, width, i == 0));
            text.push_str("  ");
        }
        text.push_str(message);
        text
    };
    writeln!(out, "{}", line(HEADERS, "MESSAGE"))?;
    for (record, row) in records.iter().zip(&rows) {
        let message = record["message"].as_str().unwrap_or("-").replace('\n', " ");
        let cells = [
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
            row[4].as_str(),
            row[5].as_str(),
        ];
        writeln!(out, "{}", line(cells, &message))?;
    }
    Ok(())
}
