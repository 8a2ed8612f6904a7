//! `stagegate runs [--json]`: the history, newest first, with each run's last decision (from
//! its folded log, see `run_view`).

use serde_json::json;

use crate::error::{AppError, Exit};
use crate::output_style::{Stream, state_tone};
use crate::run_view::RunView;
use crate::session::Session;
use crate::text_table::TextTable;

pub async fn runs(session: &Session, json: bool) -> Result<Exit, AppError> {
    let store = &session.store;
    let runs = store.runs().await?;
    let views = RunView::load_all(store, &runs).await?;
    let mut rows = Vec::new();
    for (run, view) in runs.iter().zip(views) {
        let last = view.last_decision.as_ref().map(|decision| {
            let detail = decision
                .why()
                .map(|text| format!(": {text}"))
                .unwrap_or_default();
            format!("{} {}{detail}", decision.stage, decision.kind.as_str())
        });
        rows.push((run, last, view.decisions));
    }
    if json {
        let values: Vec<_> = rows
            .iter()
            .map(|(run, last, count)| {
                json!({
                    "id": run.id,
                    "stages": run.stages,
                    "feature_dir": run.feature_dir,
                    "state": run.state.as_str(),
                    "created_at_ms": run.created_at_ms,
                    "last_decision": last,
                    "decisions": count,
                })
            })
            .collect();
        stdout_line!(
            "{}",
            crate::terminal_text::escape_json(
                serde_json::to_string_pretty(&json!({ "runs": values })).unwrap_or_default()
            )
        );
        return Ok(Exit::Done);
    }
    if rows.is_empty() {
        stdout_line!("no runs yet\nhint: `stagegate run plan` starts one");
        return Ok(Exit::Done);
    }
    let mut table = TextTable::new();
    table.row(["run", "stages", "state", "feature", "started", "decision"]);
    for (run, last, _) in rows {
        let started = u64::try_from(run.created_at_ms)
            .map(|millis| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis),
                )
                .to_string()
            })
            .unwrap_or_default();
        let state = run.state.as_str();
        table.toned_row([
            (run.id.clone(), None),
            (run.stages.join(","), None),
            (state.to_owned(), state_tone(state)),
            (run.feature_dir.clone(), None),
            (started, None),
            (last.unwrap_or_else(|| "-".to_owned()), None),
        ]);
    }
    stdout_text!("{}", table.render("", Stream::Stdout));
    Ok(Exit::Done)
}
