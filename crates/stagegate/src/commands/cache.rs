//! `stagegate cache clear`

use crate::cli::CacheAction;
use crate::error::{AppError, Exit};
use crate::session::Session;

pub async fn cache(session: &Session, action: CacheAction) -> Result<Exit, AppError> {
    match action {
        CacheAction::Clear => {
            let removed = session.store.clear_cache().await?;
            eprintln!("cleared the cache: {removed} answer(s) removed");
            Ok(Exit::Done)
        }
    }
}
