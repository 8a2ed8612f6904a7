//! A small JSON Schema validator for the keywords `docs/events.schema.json` uses: `$ref` (to
//! `#/$defs/…`), `oneOf`, `type`, `const`, `enum`, `properties`, `required`,
//! `additionalProperties: false`, `items`, `minimum` and `maximum`. Annotations (`title`,
//! `description`, `$schema`, `$id`) are ignored; any other keyword is refused, so that the
//! schema cannot grow a rule this checker would silently skip.
//!
//! Hand-written rather than the `jsonschema` crate, which would add dozens of crates (regex
//! engines, an HTTP client for remote references) to the test build for these few keywords.

use serde_json::Value;

const ANNOTATIONS: &[&str] = &["title", "description", "$schema", "$id", "$defs"];

/// What is wrong with `instance`, at which path; empty when it conforms to `schema` (whose
/// `$defs` are looked up in `root`).
pub fn violations(root: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(root, schema, instance, "$", &mut found);
    found
}

fn check(root: &Value, schema: &Value, instance: &Value, path: &str, found: &mut Vec<String>) {
    let Some(rules) = schema.as_object() else {
        found.push(format!("{path}: the schema is not an object: {schema}"));
        return;
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            "$ref" => match resolve(root, rule) {
                Some(target) => check(root, target, instance, path, found),
                None => found.push(format!("{path}: unresolvable $ref {rule}")),
            },
            "oneOf" => {
                let options = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                let matching = options
                    .iter()
                    .filter(|option| violations(root, option, instance).is_empty())
                    .count();
                if matching != 1 {
                    found.push(format!(
                        "{path}: matches {matching} of the oneOf alternatives, not exactly 1: {instance}"
                    ));
                }
            }
            "type" => {
                let allowed: Vec<&str> = match rule {
                    Value::String(name) => vec![name.as_str()],
                    Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                if !allowed.iter().any(|name| has_type(instance, name)) {
                    found.push(format!("{path}: expected {allowed:?}, found {instance}"));
                }
            }
            "const" if instance != rule => {
                found.push(format!("{path}: expected {rule}, found {instance}"));
            }
            "enum" => {
                let values = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                if !values.contains(instance) {
                    found.push(format!("{path}: {instance} is not one of {rule}"));
                }
            }
            "properties" => {
                if let (Some(properties), Some(object)) = (rule.as_object(), instance.as_object()) {
                    for (name, value) in object {
                        if let Some(property) = properties.get(name) {
                            check(root, property, value, &format!("{path}.{name}"), found);
                        }
                    }
                }
            }
            "required" => {
                if let Some(object) = instance.as_object() {
                    for name in rule
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !object.contains_key(name) {
                            found.push(format!("{path}: missing required field {name}"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if rule != &Value::Bool(false) {
                    found.push(format!(
                        "{path}: only `additionalProperties: false` is supported"
                    ));
                }
                let known = rules.get("properties").and_then(Value::as_object);
                if let Some(object) = instance.as_object() {
                    for name in object.keys() {
                        if !known.is_some_and(|known| known.contains_key(name)) {
                            found.push(format!("{path}: field {name} is not in the schema"));
                        }
                    }
                }
            }
            "items" => {
                if let Some(elements) = instance.as_array() {
                    for (index, element) in elements.iter().enumerate() {
                        check(root, rule, element, &format!("{path}[{index}]"), found);
                    }
                }
            }
            "minimum" => {
                if let (Some(bound), Some(number)) = (rule.as_f64(), instance.as_f64())
                    && number < bound
                {
                    found.push(format!("{path}: {number} is below the minimum {bound}"));
                }
            }
            "maximum" => {
                if let (Some(bound), Some(number)) = (rule.as_f64(), instance.as_f64())
                    && number > bound
                {
                    found.push(format!("{path}: {number} is above the maximum {bound}"));
                }
            }
            "const" => {}
            other if ANNOTATIONS.contains(&other) => {}
            other => found.push(format!("{path}: keyword {other} is not supported")),
        }
    }
}

fn resolve<'a>(root: &'a Value, reference: &Value) -> Option<&'a Value> {
    let name = reference.as_str()?.strip_prefix("#/$defs/")?;
    root.get("$defs")?.get(name)
}

fn has_type(instance: &Value, name: &str) -> bool {
    match name {
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "string" => instance.is_string(),
        "integer" => instance.is_i64() || instance.is_u64(),
        "number" => instance.is_number(),
        "boolean" => instance.is_boolean(),
        "null" => instance.is_null(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::violations;

    /// The checker itself can fail: each rule it claims to apply rejects what it should.
    #[test]
    fn the_checker_rejects_what_each_keyword_forbids() {
        let schema = json!({
            "$defs": {"small": {"type": "integer", "minimum": 0, "maximum": 9}},
            "type": "object",
            "properties": {
                "kind": {"const": "a"},
                "colour": {"enum": ["red", "green"]},
                "n": {"$ref": "#/$defs/small"},
                "list": {"type": "array", "items": {"type": "string"}},
                "either": {"oneOf": [{"type": "string"}, {"type": ["integer", "null"]}]}
            },
            "required": ["kind"],
            "additionalProperties": false
        });
        let good = json!({"kind": "a", "colour": "red", "n": 3, "list": ["x"], "either": null});
        assert_eq!(violations(&schema, &schema, &good), Vec::<String>::new());
        for bad in [
            json!([]),
            json!({"colour": "red"}),
            json!({"kind": "b"}),
            json!({"kind": "a", "colour": "blue"}),
            json!({"kind": "a", "n": 10}),
            json!({"kind": "a", "n": -1}),
            json!({"kind": "a", "n": 1.5}),
            json!({"kind": "a", "list": [1]}),
            json!({"kind": "a", "either": true}),
            json!({"kind": "a", "extra": 1}),
        ] {
            assert!(
                !violations(&schema, &schema, &bad).is_empty(),
                "accepted {bad}"
            );
        }
        let unsupported = json!({"pattern": "^a"});
        assert!(!violations(&unsupported, &unsupported, &json!("a")).is_empty());
    }
}
