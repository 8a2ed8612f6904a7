//! Role agents' prompts filled in from a layout instead of rendered one by one.
//!
//! The role agents of a stage share all of their prompt's context but their own `agent`, and
//! most templates print that agent's id, role and task as they are (`{{ agent.role }}`) and
//! use it for nothing else. For such a template the prompt is the same text around the same
//! places for every agent: it is rendered twice with marker values, cut at the markers, and
//! each agent's prompt is the pieces joined with its own values. At 10,000 agents that is a
//! copy per agent instead of a template run, which was the engine's largest cost per agent.
//!
//! Whether a template is such a template is decided from its source, conservatively: the
//! template and everything it extends, includes or imports (by literal names only) may name
//! `agent` only in a plain `{{ agent.id }}`, `{{ agent.role }}` or `{{ agent.task }}`, and may
//! not capture or transform output (`set` blocks, `filter`, macros and `call`, `self`,
//! `caller`, `super()` but plain, `recursive` loops, `debug()`). Anything else, or any doubt,
//! renders each prompt as before. The two marker renders must also agree piece for piece,
//! which catches escaping and a marker that happened to be in the inputs.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use minijinja::Environment;

use crate::prompt::{AgentView, PromptError};

/// An agent's value a prompt shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Role,
    Task,
}

impl Field {
    const ALL: [Field; 3] = [Field::Id, Field::Role, Field::Task];

    fn of<'a>(self, agent: &AgentView<'a>) -> &'a str {
        match self {
            Field::Id => agent.id,
            Field::Role => agent.role,
            Field::Task => agent.task,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Role => "role",
            Field::Task => "task",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A role agent's prompt as fixed text and the places its own values go.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AgentLayout {
    pieces: Vec<Piece>,
    text_bytes: usize,
    /// The key of its prompts' digests: a hash of the pieces ([`AgentLayout::digest`]).
    key: [u8; 32],
}

impl AgentLayout {
    /// The layout of the prompts `render` makes, if it shows an agent's values only as they
    /// are. `render` renders the template for a given agent; call it only for a template that
    /// [`shows_agent_as_text`] accepted.
    pub(crate) fn probe(
        render: impl Fn(&AgentView<'_>) -> Result<String, PromptError>,
    ) -> Result<Option<Self>, PromptError> {
        let nonce = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        // Two sets of markers of different lengths, with the characters escaping would change.
        let first = Markers::new(nonce, "a");
        let second = Markers::new(nonce, "bb");
        let first_layout = Self::cut(&render(&first.view())?, &first);
        let second_layout = Self::cut(&render(&second.view())?, &second);
        Ok(first_layout.filter(|layout| Some(layout) == second_layout.as_ref()))
    }

    /// What stands for `agent`'s prompt in its cache key, in place of a hash of the whole
    /// text: the values, hashed with a key that is the hash of the layout's pieces. The prompt
    /// is a function of the two, so a digest never stands for two prompts; the same prompt
    /// rendered without a layout has another (a key of another kind), and is only not found.
    pub(crate) fn digest(&self, agent: &AgentView<'_>) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        for piece in &self.pieces {
            if let Piece::Field(field) = piece {
                let value = field.of(agent);
                hasher.update(&(value.len() as u64).to_le_bytes());
                hasher.update(value.as_bytes());
            }
        }
        *hasher.finalize().as_bytes()
    }

    /// `agent`'s prompt, and the offsets where each of its values starts and ends (see
    /// [`crate::prompt::RenderedPrompt::joints`]).
    pub(crate) fn fill(&self, agent: &AgentView<'_>) -> (String, Vec<usize>) {
        let values: usize = self
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Field(field) => field.of(agent).len(),
                Piece::Text(_) => 0,
            })
            .sum();
        let mut prompt = String::with_capacity(self.text_bytes + values);
        let mut joints = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => prompt.push_str(text),
                Piece::Field(field) => {
                    joints.push(prompt.len());
                    prompt.push_str(field.of(agent));
                    joints.push(prompt.len());
                }
            }
        }
        (prompt, joints)
    }

    /// `rendered` cut at `markers`; none when something looks like a marker but is not one.
    fn cut(rendered: &str, markers: &Markers) -> Option<Self> {
        let mut pieces = Vec::new();
        let mut text_bytes = 0;
        let mut rest = rendered;
        while let Some(start) = rest.find(&markers.prefix) {
            let (field, marker) = markers
                .values
                .iter()
                .find(|(_, marker)| rest[start..].starts_with(marker.as_str()))?;
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
                text_bytes += start;
            }
            pieces.push(Piece::Field(*field));
            rest = &rest[start + marker.len()..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
            text_bytes += rest.len();
        }
        let key = layout_key(&pieces);
        Some(AgentLayout {
            pieces,
            text_bytes,
            key,
        })
    }
}

/// A hash of `pieces`, each told apart from the next (texts by their length, places by their
/// field).
fn layout_key(pieces: &[Piece]) -> [u8; 32] {
    let mut hasher =
        blake3::Hasher::new_derive_key("stagegate 2026-12-03 role agent prompt layout");
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                hasher.update(b"t");
                hasher.update(&(text.len() as u64).to_le_bytes());
                hasher.update(text.as_bytes());
            }
            Piece::Field(field) => {
                hasher.update(b"f");
                hasher.update(field.name().as_bytes());
            }
        }
    }
    *hasher.finalize().as_bytes()
}

/// Marker values standing in for an agent's own.
struct Markers {
    prefix: String,
    values: Vec<(Field, String)>,
}

impl Markers {
    fn new(nonce: u64, probe: &str) -> Self {
        // The probes differ from their first character on, and in length.
        let prefix = format!("\u{2}{probe}-stagegate-{nonce:016x}-");
        let values = Field::ALL
            .iter()
            .map(|field| (*field, format!("{prefix}{}<&\"'`\u{3}", field.name())))
            .collect();
        Markers { prefix, values }
    }

    fn view(&self) -> AgentView<'_> {
        let value = |wanted: Field| {
            self.values
                .iter()
                .find(|(field, _)| *field == wanted)
                .map_or("", |(_, value)| value.as_str())
        };
        AgentView {
            id: value(Field::Id),
            role: value(Field::Role),
            task: value(Field::Task),
        }
    }
}

/// Whether template `name`, and every template it extends, includes or imports, uses `agent`
/// only to print its values as they are (see the module documentation).
pub(crate) fn shows_agent_as_text(environment: &Environment<'static>, name: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut waiting = vec![name.to_owned()];
    while let Some(name) = waiting.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Ok(template) = environment.get_template(&name) else {
            return false;
        };
        let Some(tags) = tags(template.source()) else {
            return false;
        };
        for tag in tags {
            match judge(&tag) {
                Verdict::Fine => {}
                Verdict::Uses(other) => waiting.push(other),
                Verdict::Doubtful => return false,
            }
        }
    }
    true
}

/// A `{{ … }}` or `{% … %}` tag of a template's source, without its delimiters and trim marks.
#[derive(Debug, PartialEq, Eq)]
struct Tag<'a> {
    statement: bool,
    body: &'a str,
}

/// The tags of `source`, skipping comments and `raw` blocks; none when a tag or a string in
/// one does not end.
fn tags(source: &str) -> Option<Vec<Tag<'_>>> {
    let mut tags = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.as_bytes().first() {
            Some(b'#') => {
                let end = after.find("#}")?;
                rest = &after[end + 2..];
            }
            Some(delimiter @ (b'{' | b'%')) => {
                let statement = *delimiter == b'%';
                let close = if statement { "%}" } else { "}}" };
                let inside = &after[1..];
                let end = end_of_tag(inside, close)?;
                let body = inside[..end]
                    .trim_start_matches(['-', '+'])
                    .trim_end_matches(['-', '+'])
                    .trim();
                rest = &inside[end + 2..];
                if statement && first_word(body) == "raw" {
                    rest = after_endraw(rest)?;
                }
                tags.push(Tag { statement, body });
            }
            _ => rest = after,
        }
    }
    Some(tags)
}

/// Where `close` ends the tag that `inside` starts in, outside its strings.
fn end_of_tag(inside: &str, close: &str) -> Option<usize> {
    let bytes = inside.as_bytes();
    let mut quote = None;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match quote {
            Some(_) if byte == b'\\' => index += 1,
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if inside[index..].starts_with(close) => return Some(index),
            None => {}
        }
        index += 1;
    }
    None
}

/// What follows the `{% endraw %}` tag that closes a raw block.
fn after_endraw(source: &str) -> Option<&str> {
    let mut rest = source;
    loop {
        let open = rest.find("{%")?;
        let inside = &rest[open + 2..];
        let end = inside.find("%}")?;
        let body = inside[..end]
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+'])
            .trim();
        rest = &inside[end + 2..];
        if body == "endraw" {
            return Some(rest);
        }
    }
}

enum Verdict {
    Fine,
    Uses(String),
    Doubtful,
}

/// Statements that capture or transform what their body renders.
const CAPTURING: [&str; 4] = ["macro", "call", "filter", "autoescape"];
/// Names that reach the context as a whole, or output the template does not print verbatim.
const OPAQUE_NAMES: [&str; 5] = ["debug", "self", "caller", "super", "recursive"];
const PLAIN_AGENT: [&str; 3] = ["agent.id", "agent.role", "agent.task"];

fn judge(tag: &Tag<'_>) -> Verdict {
    if !tag.statement && (PLAIN_AGENT.contains(&tag.body) || tag.body == "super()") {
        return Verdict::Fine;
    }
    let names = names(tag.body);
    if names
        .iter()
        .any(|name| *name == "agent" || OPAQUE_NAMES.contains(name))
    {
        return Verdict::Doubtful;
    }
    if !tag.statement {
        return Verdict::Fine;
    }
    let keyword = first_word(tag.body);
    if CAPTURING.contains(&keyword) || (keyword == "set" && !has_assignment(tag.body)) {
        return Verdict::Doubtful;
    }
    if ["extends", "include", "import", "from"].contains(&keyword) {
        return literal_use(&tag.body[keyword.len()..]);
    }
    Verdict::Fine
}

/// The template a use statement names, when it names one by a literal and adds only words.
fn literal_use(rest: &str) -> Verdict {
    let rest = rest.trim_start();
    let Some(quote @ ('"' | '\'')) = rest.chars().next() else {
        return Verdict::Doubtful;
    };
    let Some(end) = rest[1..].find(quote) else {
        return Verdict::Doubtful;
    };
    let name = &rest[1..=end];
    let tail = &rest[end + 2..];
    let only_words = tail
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ',' || c.is_whitespace());
    let conditional = names(tail).iter().any(|word| ["if", "else"].contains(word));
    if name.contains('\\') || !only_words || conditional {
        return Verdict::Doubtful;
    }
    Verdict::Uses(name.to_owned())
}

fn first_word(body: &str) -> &str {
    body.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("")
}

/// Whether a `set` statement assigns (`{% set x = … %}`) rather than captures a block.
fn has_assignment(body: &str) -> bool {
    outside_strings(body).contains('=')
}

/// The names an expression refers to: identifiers outside strings and not after a dot.
fn names(body: &str) -> Vec<&str> {
    let code = outside_strings(body);
    let mut names = Vec::new();
    let mut index = 0;
    let bytes = code.as_bytes();
    while index < bytes.len() {
        let byte = bytes[index];
        if byte.is_ascii_alphabetic() || byte == b'_' {
            let start = index;
            while index < bytes.len()
                && (bytes[index].is_ascii_alphanumeric() || bytes[index] == b'_')
            {
                index += 1;
            }
            let after_dot = code[..start].trim_end().ends_with('.');
            if !after_dot {
                names.push(&body[start..index]);
            }
        } else if byte.is_ascii_digit() {
            while index < bytes.len()
                && (bytes[index].is_ascii_alphanumeric() || bytes[index] == b'_')
            {
                index += 1;
            }
        } else {
            index += 1;
        }
    }
    names
}

/// `body` with each string literal's characters blanked out (same length, same offsets).
fn outside_strings(body: &str) -> String {
    let mut code = String::with_capacity(body.len());
    let mut quote = None;
    let mut escaped = false;
    for c in body.chars() {
        let blank = match quote {
            Some(_) if escaped => {
                escaped = false;
                true
            }
            Some(_) if c == '\\' => {
                escaped = true;
                true
            }
            Some(open) if c == open => {
                quote = None;
                false
            }
            Some(_) => true,
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                false
            }
            None => false,
        };
        if blank {
            // Same byte length, so that offsets into `body` stay valid.
            code.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            code.push(c);
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(templates: &[(&'static str, &'static str)]) -> Environment<'static> {
        let mut environment = Environment::new();
        for (name, source) in templates {
            environment
                .add_template(name, source)
                .expect("the test template compiles");
        }
        environment
    }

    fn verbatim(source: &'static str) -> bool {
        shows_agent_as_text(&environment(&[("t", source)]), "t")
    }

    #[test]
    fn plain_values_and_other_names_are_text() {
        assert!(verbatim(
            "You are the {{ agent.role }}.\n{{- agent.task -}} {{agent.id}}"
        ));
        assert!(verbatim(
            "{% for failure in failures %}{{ failure.agent }}: {{ failure.reason | trim }}{% endfor %}"
        ));
        assert!(verbatim(
            "{% set n = outputs | length %}{{ n }} {# agent.role | upper #}"
        ));
        assert!(verbatim("{{ '{% if agent.role %}' }} {{ agent.role }}"));
        assert!(verbatim(
            "{% raw %}{{ agent.role | upper }}{% if agent %}{% endraw %}{{ agent.task }}"
        ));
    }

    #[test]
    fn any_other_use_of_the_agent_or_of_captured_output_is_doubtful() {
        for source in [
            "{% if agent.role == 'Security' %}s{% endif %}",
            "{{ agent.role | upper }}",
            "{{ agent }}",
            "{{ agent.id[:3] }}",
            "{% set prefix = agent.id %}",
            "{% for agent in outputs %}{% endfor %}",
            "{% set captured %}{{ agent.role }}{% endset %}{{ captured | upper }}",
            "{% filter upper %}{{ agent.role }}{% endfilter %}",
            "{{ debug() }}",
            "{% for x in outputs recursive %}{{ loop(x) }}{% endfor %}",
            "{% block b %}{{ agent.role }}{% endblock %}{{ self.b() | upper }}",
        ] {
            assert!(!verbatim(source), "{source}");
        }
        for unterminated in [
            "{{ agent.role ",
            "{{ 'a }}",
            "{# a",
            "{% raw %}{{ agent.role }}",
        ] {
            assert_eq!(tags(unterminated), None, "{unterminated}");
        }
    }

    #[test]
    fn what_a_template_uses_is_judged_with_it() {
        let env = environment(&[
            ("plain", "{{ agent.role }}"),
            ("upper", "{{ agent.role | upper }}"),
            ("includes_plain", "{% include 'plain' %}"),
            ("includes_upper", "{% include \"upper\" ignore missing %}"),
            ("extends_upper", "{% extends 'upper' %}"),
            ("imports_upper", "{% from 'upper' import x %}"),
            ("chooses", "{% include 'plain' if stage else 'upper' %}"),
            ("computed", "{% include stage.id %}"),
        ]);
        assert!(shows_agent_as_text(&env, "plain"));
        assert!(shows_agent_as_text(&env, "includes_plain"));
        for name in [
            "upper",
            "includes_upper",
            "extends_upper",
            "imports_upper",
            "chooses",
            "computed",
            "missing",
        ] {
            assert!(!shows_agent_as_text(&env, name), "{name}");
        }
    }

    #[test]
    fn a_layout_fills_in_each_agents_values_where_the_markers_were() {
        let render = |agent: &AgentView<'_>| {
            Ok(format!(
                "You are {}.\n{}\n{} again: {}",
                agent.role, agent.task, agent.role, agent.id
            ))
        };
        let layout = AgentLayout::probe(render)
            .expect("renders")
            .expect("shows the values as text");
        let agent = AgentView {
            id: "a1",
            role: "the {{ Security }} <Analyst>",
            task: "",
        };
        let (prompt, joints) = layout.fill(&agent);
        assert_eq!(prompt, render(&agent).expect("renders"));
        let between: Vec<&str> = joints
            .windows(2)
            .map(|pair| &prompt[pair[0]..pair[1]])
            .collect();
        assert_eq!(
            between,
            [
                agent.role, ".\n", "", "\n", agent.role, " again: ", agent.id
            ]
        );
    }

    #[test]
    fn a_layouts_digest_tells_every_set_of_values_apart() {
        let render =
            |agent: &AgentView<'_>| Ok(format!("{}|{}|{}", agent.id, agent.role, agent.task));
        let layout = AgentLayout::probe(render)
            .expect("renders")
            .expect("shows the values as text");
        let agent = |id, role, task| AgentView { id, role, task };
        let digest = layout.digest(&agent("a1", "ab", "c"));
        assert_eq!(digest, layout.digest(&agent("a1", "ab", "c")));
        for other in [
            agent("a2", "ab", "c"),
            agent("a1", "a", "bc"),
            agent("a1", "ab", ""),
        ] {
            assert_ne!(digest, layout.digest(&other));
        }
        // Another layout with the same values: another digest.
        let other_render =
            |agent: &AgentView<'_>| Ok(format!("{}/{}/{}", agent.id, agent.role, agent.task));
        let other = AgentLayout::probe(other_render)
            .expect("renders")
            .expect("a layout");
        assert_ne!(digest, other.digest(&agent("a1", "ab", "c")));
    }

    #[test]
    fn a_render_that_changes_the_values_has_no_layout() {
        let escaped = |agent: &AgentView<'_>| Ok(agent.role.replace('<', "&lt;"));
        assert_eq!(AgentLayout::probe(escaped).expect("renders"), None);
        let shortened = |agent: &AgentView<'_>| Ok(agent.role[..10].to_owned());
        assert_eq!(AgentLayout::probe(shortened).expect("renders"), None);
    }
}
