//! One SQLite connection per component instance, schema applied once.
//!
//! A Spin instance serves one request but a composed dependency is called
//! many times within it (the broker asks pricing for 16 quotes per
//! decision): opening the database and re-running `CREATE TABLE IF NOT
//! EXISTS` on every call showed up in the dispatch benchmark. Each component
//! is its own wasm module, so this cache is per component instance.
//!
//! [`migrated`] applies numbered schema steps once per database
//! (`storage_versions` remembers how far each component got), so a table
//! can gain columns without losing its rows.

use spin_sdk::sqlite::{Connection, Error, Value};
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    static DB: RefCell<Option<Rc<Connection>>> = const { RefCell::new(None) };
}

/// The default database with `schema` (statements run in order) in place.
pub fn connection(schema: &[&str]) -> Result<Rc<Connection>, Error> {
    cached(|db| {
        for statement in schema {
            db.execute(statement, &[])?;
        }
        Ok(())
    })
}

/// The default database with `component`'s schema steps applied: step `i`
/// (version `i + 1`) runs once, in order, the first time an instance sees
/// the database behind that version.
///
/// Two instances may start on a fresh database together, so a step must be
/// safe to run twice: `CREATE … IF NOT EXISTS`, and `ALTER TABLE … ADD
/// COLUMN`, whose "duplicate column" error on the second run is taken as
/// done.
pub fn migrated(component: &str, steps: &[&[&str]]) -> Result<Rc<Connection>, Error> {
    cached(|db| {
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
            for statement in *step {
                match db.execute(statement, &[]) {
                    Ok(_) => {}
                    Err(Error::Io(m)) if m.contains("duplicate column name") => {}
                    Err(e) => return Err(e),
                }
            }
            db.execute(
                "INSERT INTO storage_versions (component, version) VALUES (?1, ?2)
                 ON CONFLICT (component) DO UPDATE SET version = MAX(version, excluded.version)",
                &[
                    Value::Text(component.to_string()),
                    Value::Integer(i as i64 + 1),
                ],
            )?;
        }
        Ok(())
    })
}

fn cached(prepare: impl FnOnce(&Connection) -> Result<(), Error>) -> Result<Rc<Connection>, Error> {
    DB.with(|cell| {
        if let Some(db) = cell.borrow().as_ref() {
            return Ok(db.clone());
        }
        let db = Connection::open_default()?;
        prepare(&db)?;
        let db = Rc::new(db);
        *cell.borrow_mut() = Some(db.clone());
        Ok(db)
    })
}
