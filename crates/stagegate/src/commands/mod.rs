//! One module per command that decides or reports; `run`, `resume` and `modify` live in the
//! runner, which they share.

pub mod approve;
pub mod cache;
pub mod completions;
pub mod init;
pub mod man_page;
pub mod metrics;
pub mod reject;
pub mod report;
pub mod restore;
pub mod runs;
pub mod show;
pub mod status;
pub mod unlock;
pub mod worker;
