//! The repository's own manifests (`go.mod`, `Cargo.toml`, `package.json`, …): what they state
//! about the language, its version and the dependencies, each fact with the line it is on.
//!
//! Reading is line-based on purpose: a manifest that does not parse as TOML or JSON still
//! names its language by existing, and nothing here ever fails.

/// The manifest file names looked for at the repository root, with the language each implies.
pub const MANIFESTS: &[(&str, &str)] = &[
    ("go.mod", "Go"),
    ("Cargo.toml", "Rust"),
    ("package.json", "JavaScript"),
    ("pyproject.toml", "Python"),
    ("requirements.txt", "Python"),
    ("Gemfile", "Ruby"),
    ("pom.xml", "Java"),
    ("build.gradle", "Java"),
    ("build.gradle.kts", "Kotlin"),
    ("Package.swift", "Swift"),
    ("composer.json", "PHP"),
    ("mix.exs", "Elixir"),
    ("pubspec.yaml", "Dart"),
];

/// The language a manifest name implies, when it is one.
pub fn language_of(name: &str) -> Option<&'static str> {
    MANIFESTS
        .iter()
        .find(|(manifest, _)| *manifest == name)
        .map(|(_, language)| *language)
}

/// A fact read from a manifest, with where it was read (`go.mod:3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub value: String,
    pub source: String,
}

/// One manifest's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    /// `Go 1.21`, `TypeScript`, `Rust (edition 2021)`.
    pub language: Option<Fact>,
    /// Declared dependencies, in file order.
    pub dependencies: Vec<Fact>,
}

/// Test frameworks recognized among the dependencies.
pub const TEST_FRAMEWORKS: &[&str] = &[
    "jest",
    "vitest",
    "mocha",
    "@playwright/test",
    "cypress",
    "pytest",
    "rspec",
    "junit",
    "proptest",
    "testify",
];

impl Manifest {
    /// Reads `content` as the manifest `name` (a base name from [`MANIFESTS`]).
    pub fn parse(name: &str, content: &str) -> Manifest {
        let mut manifest = Manifest {
            name: name.to_owned(),
            ..Manifest::default()
        };
        let at = |line: usize| format!("{name}:{line}");
        let language = language_of(name).unwrap_or("unknown");
        let mut version: Option<(String, usize)> = None;
        let mut section = String::new();
        for (index, raw) in content.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            if line.starts_with('[') && line.ends_with(']') {
                section = line.trim_matches(['[', ']']).to_owned();
                continue;
            }
            match name {
                "go.mod" => {
                    if let Some(rest) = line.strip_prefix("go ") {
                        version = Some((rest.trim().to_owned(), number));
                    } else if let Some(module) = go_requirement(line) {
                        manifest.dependencies.push(Fact {
                            value: module,
                            source: at(number),
                        });
                    }
                }
                "Cargo.toml" => {
                    if let Some(value) = toml_value(line, "rust-version") {
                        version = Some((value, number));
                    } else if section.ends_with("dependencies")
                        && let Some(key) = toml_key(line)
                    {
                        manifest.dependencies.push(Fact {
                            value: key,
                            source: at(number),
                        });
                    }
                }
                "pyproject.toml" => {
                    if let Some(value) = toml_value(line, "requires-python") {
                        version = Some((value, number));
                    } else if let Some(dependency) = quoted_item(line)
                        && (section.contains("dependencies") || section == "project")
                    {
                        manifest.dependencies.push(Fact {
                            value: dependency,
                            source: at(number),
                        });
                    }
                }
                "requirements.txt" => {
                    let dependency: String = line
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        .collect();
                    if !dependency.is_empty() && !line.starts_with('#') {
                        manifest.dependencies.push(Fact {
                            value: dependency,
                            source: at(number),
                        });
                    }
                }
                "package.json" | "composer.json" => {
                    if let Some(key) = json_key(line) {
                        if matches!(
                            section.as_str(),
                            "dependencies" | "devDependencies" | "require" | "require-dev"
                        ) && key != "}"
                        {
                            manifest.dependencies.push(Fact {
                                value: key.clone(),
                                source: at(number),
                            });
                        }
                        if line.ends_with('{') {
                            section = key;
                        }
                    } else if line.starts_with('}') {
                        section.clear();
                    }
                }
                _ => {}
            }
        }
        let (language, source) = match name {
            "package.json"
                if let Some(typescript) = manifest
                    .dependencies
                    .iter()
                    .find(|dependency| dependency.value == "typescript") =>
            {
                ("TypeScript".to_owned(), typescript.source.clone())
            }
            _ => match &version {
                Some((version, line)) => (format!("{language} {version}"), at(*line)),
                None => (language.to_owned(), name.to_owned()),
            },
        };
        manifest.language = Some(Fact {
            value: language,
            source,
        });
        manifest
    }

    /// The dependencies that are test frameworks.
    pub fn test_frameworks(&self) -> Vec<&Fact> {
        self.dependencies
            .iter()
            .filter(|dependency| {
                let lower = dependency.value.to_lowercase();
                TEST_FRAMEWORKS.iter().any(|framework| {
                    lower == *framework || lower.ends_with(&format!("/{framework}"))
                })
            })
            .collect()
    }
}

/// `require github.com/x/y v1.2.3` or an indented `github.com/x/y v1.2.3` inside `require (`.
fn go_requirement(line: &str) -> Option<String> {
    let line = line.strip_prefix("require ").unwrap_or(line);
    let mut words = line.split_whitespace();
    let module = words.next()?;
    let version = words.next()?;
    (module.contains('.') && version.starts_with('v')).then(|| module.to_owned())
}

/// `key = "value"` → `value`.
fn toml_value(line: &str, key: &str) -> Option<String> {
    let (name, value) = line.split_once('=')?;
    (name.trim() == key).then(|| value.trim().trim_matches(['"', '\'']).to_owned())
}

/// `serde = { … }` / `serde = "1"` → `serde`.
fn toml_key(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let (name, _) = line.split_once('=')?;
    let name = name.trim();
    (!name.is_empty() && !name.contains(' ')).then(|| name.to_owned())
}

/// `"fastapi>=0.100",` → `fastapi`.
fn quoted_item(line: &str) -> Option<String> {
    let inner = line
        .trim_end_matches(',')
        .strip_prefix('"')?
        .strip_suffix('"')?;
    let name: String = inner
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// `"react": "^18",` → `react`.
fn json_key(line: &str) -> Option<String> {
    let rest = line.strip_prefix('"')?;
    let (key, after) = rest.split_once('"')?;
    after.trim_start().starts_with(':').then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_mod_gives_the_version_and_the_modules_with_their_lines() {
        let manifest = Manifest::parse(
            "go.mod",
            "module example.com/svc\n\ngo 1.21\n\nrequire (\n\tgoogle.golang.org/grpc v1.60.0\n\tgorm.io/gorm v1.25.5\n)\n",
        );
        let language = manifest.language.expect("a language");
        assert_eq!(language.value, "Go 1.21");
        assert_eq!(language.source, "go.mod:3");
        let modules: Vec<&str> = manifest
            .dependencies
            .iter()
            .map(|fact| fact.value.as_str())
            .collect();
        assert_eq!(modules, ["google.golang.org/grpc", "gorm.io/gorm"]);
        assert_eq!(manifest.dependencies[1].source, "go.mod:7");
    }

    #[test]
    fn package_json_is_typescript_only_when_it_depends_on_typescript() {
        let plain = Manifest::parse(
            "package.json",
            "{\n  \"name\": \"app\",\n  \"dependencies\": {\n    \"react\": \"^18\"\n  }\n}\n",
        );
        assert_eq!(plain.language.expect("a language").value, "JavaScript");
        let typed = Manifest::parse(
            "package.json",
            "{\n  \"dependencies\": {\n    \"react\": \"^18\"\n  },\n  \"devDependencies\": {\n    \"typescript\": \"^5\",\n    \"vitest\": \"^1\"\n  }\n}\n",
        );
        let language = typed.language.clone().expect("a language");
        assert_eq!(
            (language.value.as_str(), language.source.as_str()),
            ("TypeScript", "package.json:6")
        );
        let names: Vec<&str> = typed
            .dependencies
            .iter()
            .map(|fact| fact.value.as_str())
            .collect();
        assert_eq!(names, ["react", "typescript", "vitest"]);
        assert_eq!(typed.test_frameworks()[0].value, "vitest");
    }

    #[test]
    fn cargo_and_pyproject_name_their_dependencies() {
        let cargo = Manifest::parse(
            "Cargo.toml",
            "[package]\nname = \"x\"\nrust-version = \"1.80\"\n\n[dependencies]\nserde = \"1\"\n",
        );
        assert_eq!(cargo.language.expect("a language").value, "Rust 1.80");
        assert_eq!(cargo.dependencies[0].value, "serde");
        let python = Manifest::parse(
            "pyproject.toml",
            "[project]\nrequires-python = \">=3.11\"\ndependencies = [\n  \"fastapi>=0.100\",\n]\n",
        );
        assert_eq!(python.language.expect("a language").value, "Python >=3.11");
        assert_eq!(python.dependencies[0].value, "fastapi");
    }
}
