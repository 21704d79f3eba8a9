//! One SQLite connection per component instance, schema applied once.
//!
//! A Spin instance serves one request but a composed dependency is called
//! many times within it (the broker asks pricing for 16 quotes per
//! decision): opening the database and re-running `CREATE TABLE IF NOT
//! EXISTS` on every call showed up in the dispatch benchmark. Each component
//! is its own wasm module, so this cache is per component instance.

use spin_sdk::sqlite::{Connection, Error};
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    static DB: RefCell<Option<Rc<Connection>>> = const { RefCell::new(None) };
}

/// The default database with `schema` (statements run in order) in place.
pub fn connection(schema: &[&str]) -> Result<Rc<Connection>, Error> {
    DB.with(|cell| {
        if let Some(db) = cell.borrow().as_ref() {
            return Ok(db.clone());
        }
        let db = Connection::open_default()?;
        for statement in schema {
            db.execute(statement, &[])?;
        }
        let db = Rc::new(db);
        *cell.borrow_mut() = Some(db.clone());
        Ok(db)
    })
}
