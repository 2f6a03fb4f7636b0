//! The `logbook` binary: wires the store, the server and the command line together.

mod accounts;
mod backup;
mod bench;
mod client;
mod config;
mod serve;
mod store;
mod syslog;
mod tls;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: under a steady mixed load glibc's per-thread
/// arenas kept freed memory (the hot tier's pages, request bodies) resident, so the
/// server's RSS was about twice its live heap and kept rising (ARCHITECTURE.md,
/// "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's own figures, as of now (its statistics are a snapshot taken when the
/// epoch advances), for `/metrics`; `None` if it cannot say.
fn allocator_stats() -> Option<logbook_server::metrics::AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    let read = |value: tikv_jemalloc_ctl::Result<usize>| value.ok().map(|v| v as u64);
    Some(logbook_server::metrics::AllocatorStats {
        allocated: read(stats::allocated::read())?,
        active: read(stats::active::read())?,
        resident: read(stats::resident::read())?,
        retained: read(stats::retained::read())?,
    })
}

#[derive(Parser)]
#[command(
    name = "logbook",
    version,
    about = "Logbook: a self-hosted log, event and audit-journal service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (native API and every dialect on one port).
    Serve(serve::ServeArgs),
    /// Manage accounts in the data directory (works while the server runs).
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// Manage API tokens in the data directory (works while the server runs).
    #[command(subcommand)]
    Token(accounts::TokenCommand),
    /// Write a consistent copy of the embedded store (also while the server runs).
    Backup(backup::BackupArgs),
    /// Put a backup in place of the embedded store (the server must be stopped).
    Restore(backup::RestoreArgs),
    /// Measure ingest, queries, export, disk and memory of a real server against
    /// baselines from the same run, and print the figures.
    Bench(bench::BenchArgs),
    /// Print matching records (newest first) as a table, JSON or CSV.
    Query(client::QueryArgs),
    /// Print the latest matching records; with -f keep following new ones.
    Tail(client::TailArgs),
    /// Download every matching record as CSV or NDJSON.
    Export(client::ExportArgs),
    /// Upload records from an NDJSON file in batches (resumable).
    Import(client::ImportArgs),
    /// Print how many records match.
    Count(client::CountArgs),
    /// Check every record against its leaf, the tree against every signed
    /// checkpoint; exit 1 naming the first record that disagrees.
    Verify(verify::VerifyArgs),
    /// Measure live streams: delivery latency p50/p99 and the ingest rate with and
    /// without ten thousand subscribers (as a ratio), against a real server process.
    BenchStreams(bench::streams::StreamBenchArgs),
    /// Measure what tamper evidence costs: leaf hashing against ingest, `verify` of
    /// the store, inclusion proofs.
    BenchIntegrity(bench::integrity::IntegrityBenchArgs),
    /// A steady mixed load for a long time (`--duration 20m`): the server's RSS and
    /// open descriptors over time, and whether every acknowledged record was kept.
    BenchSoak(bench::soak::SoakArgs),
    /// Overload: an open-loop arrival rate at twice the measured capacity (admitted
    /// p99, shed share, peak RSS, recovery), and eight concurrent 15 MB batches.
    BenchLoad(bench::load::LoadArgs),
    /// The trivial handler `bench` compares single-record POSTs with.
    #[command(hide = true)]
    BenchNoop(bench::NoopArgs),
}

fn main() -> ExitCode {
    // `serve --config FILE` fills in the environment before the command line is read.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(path) = config::config_path(&argv) {
        match config::settings(std::path::Path::new(&path)) {
            Ok(settings) => config::apply(settings),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGBOOK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let log_format = match &cli.command {
        Command::Serve(args) => args.log_format,
        _ => serve::LogFormat::Text,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log_format {
        // One JSON object a line: timestamp, level, target, fields, span.
        serve::LogFormat::Json => logs.json().init(),
        serve::LogFormat::Text => logs.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::User(cmd) => accounts::user(cmd).await,
            Command::Token(cmd) => accounts::token(cmd).await,
            Command::Backup(args) => backup::backup(args),
            Command::Restore(args) => backup::restore(args),
            Command::Bench(args) => bench::run(args).await,
            Command::BenchNoop(args) => bench::run_noop(args).await,
            Command::BenchStreams(args) => bench::streams::run(args).await,
            Command::BenchIntegrity(args) => bench::integrity::run(args).await,
            Command::BenchSoak(args) => bench::soak::run(args).await,
            Command::BenchLoad(args) => bench::load::run(args).await,
            Command::Query(args) => client::query(args).await,
            Command::Tail(args) => client::tail(args).await,
            Command::Export(args) => client::export(args).await,
            Command::Import(args) => client::import(args).await,
            Command::Count(args) => client::count(args).await,
            Command::Verify(args) => verify::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The summary line already said what disagrees.
        Err(e) if e.is::<verify::Failed>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
