//! Placeholder until the metrics module lands (being written now).
use crate::cli::MetricsFormat;
use crate::error::{AppError, Exit};
use crate::session::Session;

pub async fn metrics(_session: &Session, _format: MetricsFormat) -> Result<Exit, AppError> {
    Err(AppError::internal("metrics are not available yet"))
}
