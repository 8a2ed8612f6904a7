//! The one path from agent text to HTML, shared by the dashboard and `stagegate report`:
//! markdown rendered with raw HTML dropped ([`markdown_html`]), diffs as line tables
//! ([`diff_html`]), and pages filled by templates that escape every value
//! ([`templates`]) unless it came out of the two renderers above.

pub mod artifact_view;
pub mod diff_html;
pub mod markdown_html;
pub mod templates;

/// The look of rendered artifacts, diffs and comments, on every page that shows them.
pub const REVIEW_STYLE: &str = include_str!("review.css");
