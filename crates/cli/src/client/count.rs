//! `logbook count [filters]`: how many records match.

use super::http::Client;
use super::{Filters, ServerArgs};
use clap::Args;

#[derive(Args, Debug)]
pub struct CountArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub filters: Filters,
}

pub async fn run(args: CountArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let answer = client
        .get_json("/logbook/v1/records/count", &args.filters.params())
        .await?;
    let count = answer["count"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("the server's count answer has no count: {answer}"))?;
    println!("{count}");
    Ok(())
}
