//! `runtime-config.toml`: where each SQLite database and key-value store lives.
//!
//! ```toml
//! [sqlite_database.default]
//! type = "spin"
//! path = "data/coordinator.db"   # relative to this file
//!
//! [key_value_store.cache]
//! type = "spin"                  # SQLite-backed, like Spin's default
//! path = "data/cache.db"
//! ```
//!
//! `default` needs no entry: it lives under the app's `.spin/` folder, as in
//! Spin. A `type = "spin"` entry without `path` is kept in memory.

use crate::manifest::ManifestError;
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeConfigFile {
    #[serde(default)]
    sqlite_database: IndexMap<String, StoreEntry>,
    #[serde(default)]
    key_value_store: IndexMap<String, StoreEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<PathBuf>,
}

/// Where a store's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Memory,
}

/// The resolved runtime configuration.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    sqlite: IndexMap<String, Location>,
    key_value: IndexMap<String, Location>,
}

impl RuntimeConfig {
    /// Reads `path`; relative paths inside are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ManifestError::new(path, ".", format!("cannot read runtime config: {e}"))
        })?;
        let de = toml::Deserializer::parse(&text)
            .map_err(|e| ManifestError::new(path, ".", e.message().trim().to_string()))?;
        let file: RuntimeConfigFile = serde_path_to_error::deserialize(de)
            .map_err(|e| ManifestError::from_toml(path, &text, e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |table: &str, entries: IndexMap<String, StoreEntry>| {
            entries
                .into_iter()
                .map(|(label, e)| {
                    if e.kind != "spin" {
                        return Err(ManifestError::new(
                            path,
                            format!("{table}.{label}.type"),
                            format!("unsupported type {:?}: greenmesh serves `type = \"spin\"` (SQLite)", e.kind),
                        ));
                    }
                    let loc = match e.path {
                        Some(p) => Location::File(dir.join(p)),
                        None => Location::Memory,
                    };
                    Ok((label, loc))
                })
                .collect::<Result<IndexMap<_, _>, _>>()
        };
        Ok(Self {
            sqlite: resolve("sqlite_database", file.sqlite_database)?,
            key_value: resolve("key_value_store", file.key_value_store)?,
        })
    }

    /// Where SQLite database `label` lives, given the app's state folder.
    pub fn sqlite(&self, label: &str, state_dir: &Path) -> Option<Location> {
        self.sqlite.get(label).cloned().or_else(|| {
            (label == "default").then(|| Location::File(state_dir.join("sqlite_db.db")))
        })
    }

    /// Where key-value store `label` lives, given the app's state folder.
    pub fn key_value(&self, label: &str, state_dir: &Path) -> Option<Location> {
        self.key_value.get(label).cloned().or_else(|| {
            (label == "default").then(|| Location::File(state_dir.join("sqlite_key_value.db")))
        })
    }
}
