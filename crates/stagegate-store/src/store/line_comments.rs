//! The `line_comments` table: a person's comments on lines of the staged artifacts, written
//! in the transaction of the decision that sent them (append-only, as decisions are).

use sqlx::SqliteConnection;

use crate::error::StoreError;
use crate::records::{LineComment, LineCommentRecord};
use crate::store::Store;

impl Store {
    /// Records `comments` as sent by decision `decision_id` on `round` of the gate's artifacts.
    pub(crate) async fn record_line_comments_in(
        &self,
        connection: &mut SqliteConnection,
        decision_id: i64,
        run_id: &str,
        stage: &str,
        round: u32,
        comments: &[LineComment],
    ) -> Result<(), StoreError> {
        for (position, comment) in comments.iter().enumerate() {
            sqlx::query(
                "INSERT INTO line_comments (decision_id, position, run_id, stage, round, \
                 artifact, first_line, last_line, quoted, comment) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(decision_id)
            .bind(position as i64)
            .bind(run_id)
            .bind(stage)
            .bind(i64::from(round))
            .bind(&comment.artifact)
            .bind(i64::from(comment.first_line))
            .bind(i64::from(comment.last_line))
            .bind(&comment.quoted)
            .bind(&comment.comment)
            .execute(&mut *connection)
            .await
            .map_err(|error| self.write_error("recording line comments", run_id, error))?;
        }
        Ok(())
    }

    /// The line comments of run `run_id`, in the order they were sent.
    pub async fn line_comments(&self, run_id: &str) -> Result<Vec<LineCommentRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT decision_id, stage, round, artifact, first_line, last_line, quoted, comment \
             FROM line_comments WHERE run_id = ? ORDER BY decision_id, position",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading line comments", error))?;
        rows.iter()
            .map(|row| {
                let line = |column| {
                    self.column::<i64>(row, column)
                        .map(|value| u32::try_from(value).unwrap_or(u32::MAX))
                };
                Ok(LineCommentRecord {
                    decision_id: self.column(row, "decision_id")?,
                    stage: self.column(row, "stage")?,
                    round: line("round")?,
                    comment: LineComment {
                        artifact: self.column(row, "artifact")?,
                        first_line: line("first_line")?,
                        last_line: line("last_line")?,
                        quoted: self.column(row, "quoted")?,
                        comment: self.column(row, "comment")?,
                    },
                })
            })
            .collect()
    }
}
