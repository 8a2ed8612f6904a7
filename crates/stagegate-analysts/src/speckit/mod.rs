//! Readers for spec-kit's files: one module per file kind. Each reader takes any text, never
//! fails and never panics; what it could not read is listed in the result's `notes`.

pub mod checklist;
pub mod constitution;
pub mod feature;
pub mod manifest;
pub mod plan;
pub mod spec;
pub mod tasks;
pub mod template;

pub use checklist::{Checklist, ChecklistItem};
pub use constitution::{Constitution, Principle};
pub use feature::{EXISTING_PREFIX, Feature};
pub use manifest::{MANIFESTS, Manifest};
pub use plan::Plan;
pub use spec::{Entity, OpenQuestion, Requirement, Scenario, Spec, UserStory};
pub use tasks::{Task, TaskList};
pub use template::{Template, TemplateSection};
