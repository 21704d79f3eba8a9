//! The node's journal (`journal.db` in the data folder): which leases it has
//! started, finished and reported, so that a restart never runs a task
//! twice and a receipt the coordinator has not acknowledged is posted again.

use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::Mutex;

/// Where a lease stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Picked up and being run (a crash here leaves it for the coordinator
    /// to expire and re-lease; it is never run again here).
    Running,
    /// Ran; the receipt waits to be acknowledged.
    Finished,
    /// The coordinator acknowledged the receipt (or already had one).
    Reported,
    /// The node refused it, or the coordinator no longer wants the receipt.
    Closed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Finished => "finished",
            State::Reported => "reported",
            State::Closed => "closed",
        }
    }

    #[cfg(test)]
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => State::Running,
            "finished" => State::Finished,
            "reported" => State::Reported,
            "closed" => State::Closed,
            _ => return None,
        })
    }
}

/// A receipt waiting to be posted.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub lease_id: String,
    /// The `POST /leases/{id}/result` body.
    pub body: String,
}

pub struct Journal {
    conn: Mutex<Connection>,
}

impl Journal {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let conn = Connection::open(data_dir.join("journal.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS leases (
                lease_id TEXT PRIMARY KEY,
                task_id TEXT NOT NULL,
                state TEXT NOT NULL,
                result_body TEXT,
                note TEXT,
                updated_at INTEGER NOT NULL
            )",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Claims a lease for running; `false` if this node has seen it before.
    pub fn claim(&self, lease_id: &str, task_id: &str) -> anyhow::Result<bool> {
        let conn = self.conn.lock().expect("journal lock");
        let n = conn.execute(
            "INSERT OR IGNORE INTO leases (lease_id, task_id, state, updated_at) VALUES (?1, ?2, ?3, ?4)",
            params![lease_id, task_id, State::Running.as_str(), Self::now()],
        )?;
        Ok(n == 1)
    }

    /// Records the result body to post; the lease becomes `Finished`.
    pub fn finish(&self, lease_id: &str, result_body: &str) -> anyhow::Result<()> {
        let conn = self.conn.lock().expect("journal lock");
        conn.execute(
            "UPDATE leases SET state = ?2, result_body = ?3, updated_at = ?4 WHERE lease_id = ?1",
            params![lease_id, State::Finished.as_str(), result_body, Self::now()],
        )?;
        Ok(())
    }

    /// Moves a lease to `state` with a note (why it was closed, ...).
    pub fn set(
        &self,
        lease_id: &str,
        task_id: &str,
        state: State,
        note: &str,
    ) -> anyhow::Result<()> {
        let conn = self.conn.lock().expect("journal lock");
        conn.execute(
            "INSERT INTO leases (lease_id, task_id, state, note, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (lease_id) DO UPDATE SET state = ?3, note = ?4, updated_at = ?5",
            params![lease_id, task_id, state.as_str(), note, Self::now()],
        )?;
        Ok(())
    }

    /// Where `lease_id` stands (for tests of the journal itself).
    #[cfg(test)]
    pub fn state(&self, lease_id: &str) -> anyhow::Result<Option<State>> {
        use rusqlite::OptionalExtension;
        let conn = self.conn.lock().expect("journal lock");
        let s: Option<String> = conn
            .query_row(
                "SELECT state FROM leases WHERE lease_id = ?1",
                params![lease_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(s.as_deref().and_then(State::parse))
    }

    /// Receipts not yet acknowledged, oldest first.
    pub fn pending(&self) -> anyhow::Result<Vec<Pending>> {
        let conn = self.conn.lock().expect("journal lock");
        let mut stmt = conn.prepare(
            "SELECT lease_id, result_body FROM leases WHERE state = 'finished' ORDER BY updated_at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Pending {
                lease_id: r.get(0)?,
                body: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Leases left `Running` by a previous process (it stopped mid-task).
    pub fn interrupted(&self) -> anyhow::Result<Vec<(String, String)>> {
        let conn = self.conn.lock().expect("journal lock");
        let mut stmt =
            conn.prepare("SELECT lease_id, task_id FROM leases WHERE state = 'running'")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_claimed_once_and_its_receipt_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("gm-journal-{}", std::process::id()));
        {
            let j = Journal::open(&dir).unwrap();
            assert!(j.claim("l1", "t1").unwrap());
            assert!(!j.claim("l1", "t1").unwrap(), "never twice");
            j.finish("l1", "{\"receipt\":1}").unwrap();
            assert!(j.claim("l2", "t2").unwrap());
        }
        let j = Journal::open(&dir).unwrap();
        assert_eq!(j.state("l1").unwrap(), Some(State::Finished));
        assert_eq!(
            j.pending().unwrap(),
            vec![Pending {
                lease_id: "l1".into(),
                body: "{\"receipt\":1}".into()
            }]
        );
        assert_eq!(
            j.interrupted().unwrap(),
            vec![("l2".to_string(), "t2".to_string())]
        );
        j.set("l1", "t1", State::Reported, "200").unwrap();
        assert!(j.pending().unwrap().is_empty());
        assert!(!j.claim("l1", "t1").unwrap());
        std::fs::remove_dir_all(dir).ok();
    }
}
