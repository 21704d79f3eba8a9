//! The coordinator components' storage seam: one connection per
//! component instance, schema applied once, on SQLite (the embedded
//! default) or Postgres (`spin:postgres`, when a database address is set).
//!
//! A Spin instance serves one request but a composed dependency is called
//! many times within it (the broker asks pricing for 16 quotes per
//! decision): opening the database and re-running `CREATE TABLE IF NOT
//! EXISTS` on every call showed up in the dispatch benchmark. Each component
//! is its own wasm module, so this cache is per component instance.
//!
//! [`migrated`] applies numbered schema steps once per database
//! (`storage_versions` remembers how far each component got), so a table
//! can gain columns without losing its rows. On Postgres the steps of all
//! replicas starting together run one replica at a time (an advisory lock).
//!
//! Components write SQLite's SQL; [`dialect`] rewrites it for Postgres,
//! and results come back as the same [`Value`]s either way (ADR 0024).
//!
//! Which database: [`use_address`] (a composed dependency is told by its
//! parent), else the component variable `database_url`, else SQLite.

pub mod dialect;
mod values;

pub use values::{Decode, Error, QueryResult, RowResult, Value};

use std::cell::RefCell;
use std::rc::Rc;

/// Tries of a statement Postgres rolls back because it lost a race.
const RACE_TRIES: u32 = 3;

/// `statement`, run again (up to [`RACE_TRIES`] in all) while Postgres
/// rolls it back as a deadlock's victim or a serialization failure. Every
/// statement here is its own transaction, so one rolled back had no effect
/// and running it again is running it once; a compare-and-set reads the
/// rows afresh. Any other error is returned at once.
fn retried_after_a_race<T>(mut statement: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut tries = 1;
    loop {
        match statement() {
            Err(e) if e.is_lost_race() && tries < RACE_TRIES => tries += 1,
            outcome => return outcome,
        }
    }
}

/// A database connection of either backend.
pub enum Connection {
    Sqlite(spin_sdk::sqlite::Connection),
    Postgres(spin_sdk::pg4::Connection),
}

impl Connection {
    /// Runs one statement (SQLite's dialect) with `params` (`?`, `?N`).
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        match self {
            Connection::Sqlite(db) => {
                let params: Vec<_> = params.iter().map(Value::to_sqlite).collect();
                db.execute(sql, &params)
                    .map(QueryResult::from_sqlite)
                    .map_err(Error::Sqlite)
            }
            Connection::Postgres(db) => {
                let params: Vec<_> = params.iter().map(Value::to_postgres).collect();
                let sql = dialect::to_postgres(sql);
                retried_after_a_race(|| {
                    db.query(&sql, &params)
                        .map(QueryResult::from_postgres)
                        .map_err(|e| Error::Postgres(format!("{e:?} in {sql}")))
                })
            }
        }
    }

    /// Whether `statement` is for this backend: one that starts with
    /// `/* sqlite */` or `/* postgres */` runs on that backend only (the
    /// few schema statements the dialects cannot share, such as triggers).
    pub fn takes(&self, statement: &str) -> bool {
        let s = statement.trim_start();
        if s.starts_with("/* sqlite */") {
            !self.is_postgres()
        } else if s.starts_with("/* postgres */") {
            self.is_postgres()
        } else {
            true
        }
    }

    /// Whether this is the Postgres backend.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Connection::Postgres(_))
    }
}

thread_local! {
    static DB: RefCell<Option<Rc<Connection>>> = const { RefCell::new(None) };
    static ADDRESS: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Every component's schema version as this instance last read them
    /// (Postgres), or as its parent passed them on (`storage_versions`).
    static VERSIONS: RefCell<Option<Vec<(String, i64)>>> = const { RefCell::new(None) };
}

/// The setting that carries [`VERSIONS`] to a dependency.
const VERSIONS_SETTING: &str = "storage_versions";

/// Points this instance at the Postgres database at `address` (a
/// dependency's parent passes its own on); an empty address means SQLite.
/// Must come before the first [`connection`] or [`migrated`].
pub fn use_address(address: &str) {
    ADDRESS.with(|a| *a.borrow_mut() = Some(address.to_string()));
}

/// Takes `database_url` and `storage_versions` from settings a parent
/// passed (a dependency's `configure` call); other names are not the
/// seam's.
pub fn configure(settings: &[(String, String)]) {
    if let Some((_, address)) = settings.iter().find(|(name, _)| name == "database_url") {
        use_address(address);
    }
    if let Some((_, known)) = settings.iter().find(|(name, _)| name == VERSIONS_SETTING) {
        let parsed = known
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .filter_map(|(c, v)| Some((c.to_string(), v.parse().ok()?)))
            .collect();
        VERSIONS.with(|v| *v.borrow_mut() = Some(parsed));
    }
}

/// The schema versions this instance read when it opened the database,
/// as a setting for its dependencies' `configure` calls: each then skips
/// its own read when it is at its last step (Postgres; on SQLite, or
/// before the database was opened, nothing).
///
/// The map is read in the same request as a dependency's own read would
/// be, so it is as fresh; a component it shows behind (or does not list)
/// reads and migrates as before.
pub fn versions_setting() -> Option<(String, String)> {
    VERSIONS.with(|v| {
        v.borrow().as_ref().map(|known| {
            let text = known
                .iter()
                .map(|(c, v)| format!("{c}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            (VERSIONS_SETTING.to_string(), text)
        })
    })
}

/// The version `component` is at by [`VERSIONS`], if known.
fn known_version(component: &str) -> Option<i64> {
    VERSIONS.with(|v| {
        v.borrow()
            .as_ref()?
            .iter()
            .find(|(c, _)| c == component)
            .map(|(_, version)| *version)
    })
}

/// The Postgres address this instance uses, if any.
pub fn address() -> Option<String> {
    ADDRESS
        .with(|a| a.borrow().clone())
        .or_else(|| spin_sdk::variables::get("database_url").ok())
        .filter(|a| !a.trim().is_empty())
}

/// The default database with `schema` (statements run in order) in place.
pub fn connection(schema: &[&str]) -> Result<Rc<Connection>, Error> {
    cached(|db| {
        if db.is_postgres() {
            // Applied once per database, as a one-step migration named by
            // the schema's text (a changed schema applies again).
            let name = format!("schema-{:016x}", fingerprint(schema));
            return prepared(db, &name, &[schema]);
        }
        for statement in schema.iter().filter(|s| db.takes(s)) {
            db.execute(statement, &[])?;
        }
        Ok(())
    })
}

/// FNV-1a over the statements: a stable name for a schema.
fn fingerprint(schema: &[&str]) -> u64 {
    schema
        .iter()
        .flat_map(|s| s.bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// `component` at its last step: nothing to do when its parent passed the
/// versions showing so, one read of the (few-row) versions table when it
/// already is (every request on a settled database), else the migration
/// under the lock.
fn prepared(db: &Connection, component: &str, steps: &[&[&str]]) -> Result<(), Error> {
    if db.is_postgres() {
        let last = steps.len() as i64;
        if known_version(component) == Some(last) {
            return Ok(());
        }
        let current = db.execute("SELECT component, version FROM storage_versions", &[]);
        // (No versions table yet: a fresh database, migrated below.)
        if let Ok(rows) = current {
            let known: Vec<(String, i64)> = rows
                .rows
                .iter()
                .filter_map(|r| Some((r.get::<&str>(0)?.to_string(), r.get::<i64>(1)?)))
                .collect();
            VERSIONS.with(|v| *v.borrow_mut() = Some(known));
            if known_version(component) == Some(last) {
                return Ok(());
            }
        }
    }
    one_at_a_time(db, || apply(db, component, steps))
}

/// Runs `schema_change` holding Postgres's advisory lock for schema
/// changes (with the prelude in place first), so replicas starting
/// together take turns; on SQLite, as is. The lock is released on error
/// too, and by the host's reset of the client should this instance die.
fn one_at_a_time(
    db: &Connection,
    schema_change: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    if !db.is_postgres() {
        return schema_change();
    }
    // One key for every component: the prelude and the versions table are
    // shared. A replica waits at most 30 s for another's migration.
    db.execute("SELECT set_config('lock_timeout', '30s', false)", &[])?;
    db.execute("SELECT pg_advisory_lock(7146032)", &[])?;
    let done = dialect::POSTGRES_PRELUDE
        .iter()
        .try_for_each(|statement| db.execute(statement, &[]).map(|_| ()))
        .and_then(|()| schema_change());
    db.execute("SELECT pg_advisory_unlock(7146032)", &[])?;
    done
}

/// Runs `check_and_write` (statements that read a count and write within
/// it: a quota, a per-address limit) one caller at a time per `scope` and
/// `key` across every instance and replica.
///
/// On SQLite a single `INSERT … SELECT … WHERE (SELECT COUNT(*) …) < n`
/// is already atomic (one writer at a time), so this runs it as is. On
/// Postgres each statement reads a snapshot taken when it starts, so two
/// such inserts racing can both see room: here a session advisory lock on
/// (`scope`, `key`) is held around them, and each statement, starting
/// after the lock is taken, sees every write of the holder before. The
/// lock is released on error too, and by the pool's reset of the client
/// should the instance die while holding it (at that client's next use);
/// a caller waits for it 10 s at most, then fails.
pub fn exclusive<T>(
    db: &Connection,
    scope: &str,
    key: &str,
    check_and_write: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    if !db.is_postgres() {
        return check_and_write();
    }
    let ids = [Value::Text(scope.to_string()), Value::Text(key.to_string())];
    db.execute("SELECT set_config('lock_timeout', '10s', false)", &[])?;
    db.execute("SELECT pg_advisory_lock(hashtext(?1), hashtext(?2))", &ids)?;
    let done = check_and_write();
    db.execute(
        "SELECT pg_advisory_unlock(hashtext(?1), hashtext(?2))",
        &ids,
    )?;
    done
}

/// The default database with `component`'s schema steps applied: step `i`
/// (version `i + 1`) runs once, in order, the first time an instance sees
/// the database behind that version.
///
/// Two instances may start on a fresh database together, so a step must be
/// safe to run twice: `CREATE … IF NOT EXISTS`, and `ALTER TABLE … ADD
/// COLUMN`, whose "duplicate column" error on the second run is taken as
/// done. On Postgres a database already at the last step costs one read;
/// otherwise the whole check-and-apply holds an advisory lock, so replicas
/// take turns.
pub fn migrated(component: &str, steps: &[&[&str]]) -> Result<Rc<Connection>, Error> {
    cached(|db| prepared(db, component, steps))
}

fn apply(db: &Connection, component: &str, steps: &[&[&str]]) -> Result<(), Error> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS storage_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        &[],
    )?;
    let rows = db.execute(
        "SELECT version FROM storage_versions WHERE component = ?",
        &[Value::Text(component.to_string())],
    )?;
    let current = rows
        .rows
        .first()
        .and_then(|r| r.get::<i64>(0))
        .unwrap_or(0)
        .max(0) as usize;
    for (i, step) in steps.iter().enumerate().skip(current) {
        for statement in step.iter().filter(|s| db.takes(s)) {
            match db.execute(statement, &[]) {
                Ok(_) => {}
                Err(e) if e.is_duplicate_column() => {}
                Err(e) => return Err(e),
            }
        }
        db.execute(
            "INSERT INTO storage_versions (component, version) VALUES (?1, ?2)
             ON CONFLICT (component) DO UPDATE SET version = MAX(storage_versions.version, excluded.version)",
            &[
                Value::Text(component.to_string()),
                Value::Integer(i as i64 + 1),
            ],
        )?;
    }
    Ok(())
}

fn cached(prepare: impl FnOnce(&Connection) -> Result<(), Error>) -> Result<Rc<Connection>, Error> {
    DB.with(|cell| {
        if let Some(db) = cell.borrow().as_ref() {
            return Ok(db.clone());
        }
        let db = match address() {
            Some(address) => Connection::Postgres(
                spin_sdk::pg4::Connection::open(&address)
                    .map_err(|e| Error::Postgres(format!("opening the database: {e:?}")))?,
            ),
            None => Connection::Sqlite(
                spin_sdk::sqlite::Connection::open_default().map_err(Error::Sqlite)?,
            ),
        };
        prepare(&db)?;
        let db = Rc::new(db);
        *cell.borrow_mut() = Some(db.clone());
        Ok(db)
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_statement_rolled_back_as_a_deadlock_victim_runs_again_and_other_errors_do_not() {
        let deadlock =
            || Error::Postgres(r#"DbError { code: "40P01", message: "deadlock detected" }"#.into());
        let mut calls = 0;
        let out = retried_after_a_race(|| {
            calls += 1;
            if calls < 3 {
                Err(deadlock())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(out.unwrap(), 3);
        let mut calls = 0;
        let out: Result<(), Error> = retried_after_a_race(|| {
            calls += 1;
            Err(deadlock())
        });
        assert!(out.is_err());
        assert_eq!(calls, RACE_TRIES, "gives up after its tries");
        let mut calls = 0;
        let out: Result<(), Error> = retried_after_a_race(|| {
            calls += 1;
            Err(Error::Postgres(r#"DbError { code: "23505" }"#.into()))
        });
        assert!(out.is_err());
        assert_eq!(calls, 1, "a constraint is not a race");
    }

    use super::*;

    #[test]
    fn versions_passed_to_a_dependency_come_back_as_read() {
        assert_eq!(versions_setting(), None, "nothing read, nothing passed");
        configure(&[(
            "storage_versions".to_string(),
            "broker=13,reputation=3,schema-00ff=1,garbage,x=y".to_string(),
        )]);
        assert_eq!(known_version("reputation"), Some(3));
        assert_eq!(known_version("schema-00ff"), Some(1));
        assert_eq!(
            known_version("x"),
            None,
            "an unreadable version is not trusted"
        );
        assert_eq!(known_version("quota"), None);
        assert_eq!(
            versions_setting(),
            Some((
                "storage_versions".to_string(),
                "broker=13,reputation=3,schema-00ff=1".to_string()
            ))
        );
    }
}
