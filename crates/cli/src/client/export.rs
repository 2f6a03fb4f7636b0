//! `logbook export --format csv|ndjson [filters] [-o FILE]`: every matching record,
//! oldest first, streamed to a file (or stdout). A file is written under a
//! temporary name and renamed only when complete, so a failed export never leaves
//! a truncated file that looks finished.

use super::http::Client;
use super::{Filters, Progress, ServerArgs};
use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use reqwest::Method;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub filters: Filters,
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: Format,
    /// The file to write; `-` or absent for stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let mut params = args.filters.params();
    let format = match args.format {
        Format::Csv => "csv",
        Format::Ndjson => "ndjson",
    };
    params.push(("format".into(), format.into()));
    let response = client
        .send(
            client
                .request(Method::GET, "/logbook/v1/export")
                .query(&params),
        )
        .await?;
    let file = args.output.filter(|p| p.as_os_str() != "-").map(|path| {
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        (path, PathBuf::from(partial))
    });
    let mut out: Box<dyn Write> = match &file {
        Some((_, partial)) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(partial)
                .with_context(|| format!("cannot create {}", partial.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut progress = Progress::new("exported lines", None);
    let mut lines = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("the export broke off: {e}"))?;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        out.write_all(&chunk)?;
        progress.update(lines);
    }
    out.flush()?;
    drop(out);
    progress.finish(lines);
    if let Some((path, partial)) = file {
        std::fs::rename(&partial, &path)
            .with_context(|| format!("cannot move the export into {}", path.display()))?;
    }
    Ok(())
}
