//! `stagegate worker`: hosts stage workflows and their agents for the cluster in `[cluster]`.

use crate::cli::WorkerArgs;
use crate::error::{AppError, Exit};
use crate::session::Session;

pub async fn worker(session: &Session, args: &WorkerArgs) -> Result<Exit, AppError> {
    let Some(cluster) = &session.settings.cluster else {
        return Err(AppError::usage(
            "stagegate worker needs a Temporal cluster\nhint: set [cluster] temporal = \"host:port\" in stagegate.toml, STAGEGATE_TEMPORAL_ADDRESS, or --temporal host:port",
        ));
    };
    let repositories = args
        .repositories
        .iter()
        .map(|text| crate::cluster::served_repository(text))
        .collect::<Result<Vec<_>, _>>()?;
    crate::cluster::run_worker(cluster, args.name.clone(), repositories).await?;
    Ok(Exit::Done)
}
