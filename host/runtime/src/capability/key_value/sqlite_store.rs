//! A key-value store kept in a SQLite file, in Spin's table layout.

use std::path::Path;
use std::sync::{Arc, Mutex};

/// One store label's backing table (`spin_key_value`, keyed by store name).
#[derive(Debug, Clone)]
pub struct KvStore {
    conn: Arc<Mutex<rusqlite::Connection>>,
    /// Store label; several labels may share one file.
    name: String,
}

impl KvStore {
    /// Opens `path` (or memory when `None`) and creates the table if needed.
    pub fn open(path: Option<&Path>, name: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let conn = match path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                rusqlite::Connection::open(path)
                    .with_context(|| format!("opening key-value file {}", path.display()))?
            }
            None => rusqlite::Connection::open_in_memory()?,
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS spin_key_value (
                 store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (store, key));",
        )?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            name: name.to_string(),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, String> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| "store lock poisoned".to_string())?;
        f(&conn).map_err(|e| e.to_string())
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        use rusqlite::OptionalExtension;
        self.with(|c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row((&self.name, key), |r| r.get(0))
                .optional()
        })
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute((&self.name, key, value))
            .map(|_| ())
        })
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute((&self.name, key))
                .map(|_| ())
        })
    }

    pub fn keys(&self) -> Result<Vec<String>, String> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            let keys = stmt.query_map([&self.name], |r| r.get(0))?;
            keys.collect()
        })
    }
}
