//! `stagegate cache clear`

use crate::cli::CacheAction;
use crate::error::{AppError, Exit};
use crate::output_style::info_line;
use crate::session::Session;

pub async fn cache(session: &Session, action: CacheAction) -> Result<Exit, AppError> {
    match action {
        CacheAction::Clear => {
            let removed = session.store.clear_cache().await?;
            info_line!("cleared the cache: {removed} answer(s) removed");
            Ok(Exit::Done)
        }
    }
}
