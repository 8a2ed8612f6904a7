//! The last load's result, kept beside the repository's state so that the next command over
//! the same files, environment and flags does not parse and validate them again.
//!
//! A stage of 10,000 agents has a `stagegate.toml` of 700 KB: parsing, merging and validating
//! it took 30 ms of every command, longer than `stagegate status` is allowed in all. Reading
//! the resolved settings back takes a fraction of that.
//!
//! The entry is keyed by a blake3 hash of everything loading reads: this binary (its path,
//! size and modification time, so that a rebuilt stagegate never reads what another build
//! resolved), the embedded defaults, each file's path and text, the `STAGEGATE_*` variables
//! that configure (not `STAGEGATE_NO_PROGRESS` and the like) and the flags. Any change to
//! any of them is a miss, and a miss loads as if there were no cache. An entry that cannot be
//! read or does not parse is a miss too: the cache can only make loading faster, never
//! different.
//!
//! The entry is the key's hex line, then the settings and warnings in postcard's compact
//! binary form: read back at 10,000 agents in 6 ms, where JSON took 11.
//!
//! Settings that hold a secret's value (a `command` backend's `env` entry named in its
//! `secret_env`) are never written: secrets do not reach `.stagegate/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::environment::ENVIRONMENT_VARIABLES;
use crate::load::{LoadOptions, Loaded};
use crate::settings::{BackendSettings, Settings};
use crate::source_file::{SourceFile, Sources};

/// Bumped when the entry's layout changes (the binary's identity covers the types' shape).
const FORMAT: &str = "stagegate-settings-cache-v2";

/// The entry of one load: its key and the file it is kept in.
pub(crate) struct CachedLoad {
    file: PathBuf,
    key: String,
}

impl CachedLoad {
    /// The entry for loading `sources` with `options`; `None` when this binary cannot say
    /// what it is (then nothing could tell its entries from another build's).
    pub(crate) fn new(file: &Path, sources: &Sources, options: &LoadOptions) -> Option<Self> {
        let mut hasher = KeyHasher(blake3::Hasher::new());
        hasher.part(FORMAT.as_bytes());
        hasher.binary_identity()?;
        hasher.part(options.repo_root.as_os_str().as_encoded_bytes());
        for source in [
            Some(&sources.defaults),
            sources.user_config.as_ref(),
            sources.repository.as_ref(),
        ] {
            hasher.source(source);
        }
        // Only the variables loading reads: `STAGEGATE_NO_PROGRESS` and the like change
        // nothing here, and a command run with them should not miss.
        for name in ENVIRONMENT_VARIABLES {
            hasher.part(name.as_bytes());
            hasher.part(
                options
                    .environment
                    .get(name)
                    .map_or(b"" as &[u8], |value| value.as_bytes()),
            );
        }
        hasher.part(format!("{:?}", options.concurrency).as_bytes());
        hasher.part(format!("{:?}", options.temporal).as_bytes());
        Some(CachedLoad {
            file: file.to_path_buf(),
            key: hasher.0.finalize().to_hex().to_string(),
        })
    }

    /// The load kept under this key, if there is one and it reads back whole.
    pub(crate) fn read(&self) -> Option<Loaded> {
        let bytes = std::fs::read(&self.file).ok()?;
        let (key, body) = bytes.split_at_checked(self.key.len())?;
        let body = body.strip_prefix(b"\n")?;
        if key != self.key.as_bytes() {
            return None;
        }
        postcard::from_bytes(body).ok()
    }

    /// Keeps `loaded` under this key, replacing any other entry; best effort (a read-only
    /// repository only loads more slowly). The file is written aside and renamed over the
    /// entry, so that a command reading it meanwhile sees the old entry or the new one whole.
    pub(crate) fn write(&self, loaded: &Loaded) {
        if holds_secret_values(&loaded.settings) {
            return;
        }
        let Some(directory) = self.file.parent() else {
            return;
        };
        let mut aside = self.file.clone().into_os_string();
        aside.push(format!(".{}.tmp", std::process::id()));
        let aside = PathBuf::from(aside);
        let written = std::fs::create_dir_all(directory)
            .and_then(|()| std::fs::File::create(&aside))
            .and_then(|file| {
                let mut file = std::io::BufWriter::new(file);
                file.write_all(self.key.as_bytes())?;
                file.write_all(b"\n")?;
                let body = postcard::to_allocvec(loaded).map_err(std::io::Error::other)?;
                file.write_all(&body)?;
                file.into_inner().map_err(|error| error.into_error())?;
                std::fs::rename(&aside, &self.file)
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&aside);
        }
    }
}

/// Whether any backend's settings hold the value of a variable it declares secret.
fn holds_secret_values(settings: &Settings) -> bool {
    settings.backends.values().any(|backend| match backend {
        BackendSettings::Command {
            env, secret_env, ..
        } => secret_env.iter().any(|name| env.contains_key(name)),
        _ => false,
    })
}

/// A blake3 hasher fed length-prefixed parts, so that no two different inputs run together
/// into the same bytes.
struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    fn part(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn source(&mut self, source: Option<&SourceFile>) {
        match source {
            Some(file) => {
                self.part(b"file");
                let path = file.path.as_deref().unwrap_or(Path::new(""));
                self.part(path.as_os_str().as_encoded_bytes());
                self.part(file.text.as_bytes());
            }
            None => self.part(b"none"),
        }
    }

    fn binary_identity(&mut self) -> Option<()> {
        let binary = std::env::current_exe().ok()?;
        let metadata = std::fs::metadata(&binary).ok()?;
        let modified = metadata
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        self.part(binary.as_os_str().as_encoded_bytes());
        self.part(&metadata.len().to_le_bytes());
        self.part(&modified.as_nanos().to_le_bytes());
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::load::{CONFIG_FILE_NAME, load};

    /// A repository whose `stagegate.toml` holds `config`, loaded with a cache file.
    struct Repository {
        directory: tempfile::TempDir,
    }

    impl Repository {
        fn with_config(config: &str) -> Self {
            let directory = tempfile::tempdir().expect("temporary directory");
            std::fs::write(directory.path().join(CONFIG_FILE_NAME), config).expect("config");
            Repository { directory }
        }

        fn cache_file(&self) -> PathBuf {
            self.directory
                .path()
                .join(".stagegate")
                .join("settings-cache.bin")
        }

        fn options(&self) -> LoadOptions {
            LoadOptions {
                repo_root: self.directory.path().to_path_buf(),
                cache_file: Some(self.cache_file()),
                ..LoadOptions::default()
            }
        }

        fn load(&self, options: &LoadOptions) -> Loaded {
            load(options).expect("the configuration loads")
        }

        fn concurrency(&self, options: &LoadOptions) -> usize {
            self.load(options).settings.defaults.concurrency
        }

        /// Rewrites the cached entry's concurrency, keeping its key: what a load then says
        /// shows whether it read the entry.
        fn doctor_entry(&self, concurrency: usize) {
            let bytes = std::fs::read(self.cache_file()).expect("an entry");
            let split = bytes
                .iter()
                .position(|byte| *byte == b'\n')
                .expect("key line");
            let mut loaded: Loaded = postcard::from_bytes(&bytes[split + 1..]).expect("entry");
            loaded.settings.defaults.concurrency = concurrency;
            let mut doctored = bytes[..=split].to_vec();
            doctored.extend(postcard::to_allocvec(&loaded).expect("encode"));
            std::fs::write(self.cache_file(), doctored).expect("rewrite");
        }
    }

    const CONFIG: &str = "[defaults]\nconcurrency = 2\n[stages.plan]\nconcurency = 1\n";

    #[test]
    fn a_load_reads_back_what_the_same_inputs_resolved() {
        let repository = Repository::with_config(CONFIG);
        let options = repository.options();
        let first = repository.load(&options);
        assert!(repository.cache_file().is_file());
        let second = repository.load(&options);
        assert_eq!(second.settings, first.settings);
        assert_eq!(second.warnings, first.warnings);
        assert_eq!(second.warnings.len(), 1, "the typo's warning is kept");
        assert_eq!(second.source, first.source);

        repository.doctor_entry(7);
        assert_eq!(repository.concurrency(&options), 7, "the entry was read");
    }

    #[test]
    fn any_change_to_what_loading_reads_is_a_miss() {
        let repository = Repository::with_config(CONFIG);
        let options = repository.options();
        repository.load(&options);
        repository.doctor_entry(7);
        let mut unrelated = options.clone();
        unrelated.environment =
            BTreeMap::from([("STAGEGATE_NO_PROGRESS".to_owned(), "1".to_owned())]);
        assert_eq!(repository.concurrency(&unrelated), 7, "a hit");

        let mut flagged = options.clone();
        flagged.concurrency = Some(5);
        assert_eq!(repository.concurrency(&flagged), 5);

        repository.doctor_entry(7);
        let mut environment = options.clone();
        environment.environment =
            BTreeMap::from([("STAGEGATE_CONCURRENCY".to_owned(), "4".to_owned())]);
        assert_eq!(repository.concurrency(&environment), 4);

        repository.doctor_entry(7);
        let config = repository.directory.path().join(CONFIG_FILE_NAME);
        std::fs::write(
            &config,
            CONFIG.replace("concurrency = 2", "concurrency = 3"),
        )
        .expect("edit");
        assert_eq!(repository.concurrency(&options), 3);

        repository.doctor_entry(7);
        std::fs::remove_file(&config).expect("remove");
        assert_eq!(
            repository.concurrency(&options),
            load(&LoadOptions::default())
                .expect("defaults")
                .settings
                .defaults
                .concurrency
        );
    }

    #[test]
    fn an_entry_that_does_not_read_back_is_a_miss_and_is_replaced() {
        let repository = Repository::with_config(CONFIG);
        let options = repository.options();
        repository.load(&options);
        let whole = std::fs::read(repository.cache_file()).expect("entry");
        for broken in [&whole[..whole.len() / 2], &whole[..10], b"", b"\n{}"] {
            std::fs::write(repository.cache_file(), broken).expect("break");
            assert_eq!(repository.concurrency(&options), 2);
            assert_eq!(
                std::fs::read(repository.cache_file()).ok(),
                Some(whole.clone())
            );
        }
    }

    #[test]
    fn settings_holding_a_secret_value_are_never_written() {
        let repository = Repository::with_config(
            "[backends.x]\nkind = \"command\"\ncommand = [\"agent\"]\n\
             env = { TOKEN = \"t0ps3cr3t-value\" }\nsecret_env = [\"TOKEN\"]\n",
        );
        repository.load(&repository.options());
        assert!(!repository.cache_file().exists());

        let named_only = Repository::with_config(
            "[backends.x]\nkind = \"command\"\ncommand = [\"agent\"]\nsecret_env = [\"TOKEN\"]\n",
        );
        named_only.load(&named_only.options());
        let entry = std::fs::read(named_only.cache_file()).expect("written");
        assert!(
            entry.windows(5).any(|window| window == b"TOKEN"),
            "a secret's name is not a secret"
        );
    }

    #[test]
    fn a_load_without_a_cache_file_writes_none() {
        let repository = Repository::with_config(CONFIG);
        let mut options = repository.options();
        options.cache_file = None;
        repository.load(&options);
        assert!(!repository.cache_file().exists());
        assert!(!repository.directory.path().join(".stagegate").exists());
    }
}
