//! The HTML templates of the review sections (a gate's staged artifacts, QA verdicts,
//! decisions with their comments), rendered by minijinja with HTML auto-escaping: a value
//! reaches the page escaped unless it went through the `markdown` filter (which drops raw
//! HTML, see [`super::markdown_html`]).

use std::sync::OnceLock;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::error::AppError;

const TEMPLATES: &[(&str, &str)] = &[
    ("artifacts.html", include_str!("templates/artifacts.html")),
    ("decisions.html", include_str!("templates/decisions.html")),
];

fn environment() -> Result<&'static Environment<'static>, AppError> {
    static ENVIRONMENT: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    let built = ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.set_auto_escape_callback(|_| AutoEscape::Html);
        environment.add_filter("markdown", |text: &str| {
            Value::from_safe_string(super::markdown_html::render(text))
        });
        for (name, source) in TEMPLATES {
            // Compiled in: a broken one fails every test that renders a page.
            environment
                .add_template(name, source)
                .map_err(|error| format!("template {name} does not parse: {error:#}"))?;
        }
        Ok(environment)
    });
    built
        .as_ref()
        .map_err(|error| AppError::internal(error.clone()))
}

/// Renders template `name` (one of [`TEMPLATES`]) with `context`.
pub fn render(name: &str, context: impl Serialize) -> Result<String, AppError> {
    environment()?
        .get_template(name)
        .and_then(|template| template.render(Value::from(Serde(context))))
        .map_err(|error| AppError::internal(format!("cannot render {name}: {error:#}")))
}
