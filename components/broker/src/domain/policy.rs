//! A task's importance and service level, where they came from, and what
//! they mean for dispatch.
//!
//! Importance is fixed at submission by the public-health override or by a
//! requester declaring `critical`; otherwise a poll decides it. The service
//! level (SLA) the scheduler works to follows from it (docs/governance.md):
//!
//! | importance                    | SLA                                       |
//! |-------------------------------|-------------------------------------------|
//! | critical (override or vote)   | urgent                                    |
//! | high                          | high (urgent stays urgent)                |
//! | normal (and no consensus)     | what the requester asked for              |
//! | low, non_critical, no votes   | eco (solar_only / wind_only stay)         |
//!
//! A vetoed delegation pins the task to the owner's own nodes in eco mode,
//! whatever a later vote says.

use crate::db::{int, opt_text, text, Db};
use crate::error::ApiError;
use crate::model::Sla;
use greenmesh_storage::Value as Sql;
use serde_json::{json, Value};

/// Clean share a node must report to run an eco task, unless the
/// `eco_min_clean_share` Spin variable says otherwise.
pub const ECO_MIN_CLEAN_SHARE: f32 = 0.8;

pub fn eco_min_clean_share() -> f32 {
    spin_sdk::variables::get("eco_min_clean_share")
        .ok()
        .and_then(|v| v.trim().parse::<f32>().ok())
        .filter(|v| (0.0..=1.0).contains(v))
        .unwrap_or(ECO_MIN_CLEAN_SHARE)
}

/// Where a task's importance came from.
pub mod source {
    /// A public-health keyword in its name or description.
    pub const PUBLIC_HEALTH: &str = "public_health";
    /// The requester declared it critical.
    pub const REQUESTER: &str = "requester";
    /// A poll is open.
    pub const PENDING_VOTE: &str = "pending_vote";
    // Closed polls: the voting outcome's `decided-by`.
    pub const CONSENSUS: &str = "consensus";
    pub const UNANIMOUS: &str = "unanimous";
    pub const NO_CONSENSUS: &str = "no_consensus";
    pub const NO_VOTES: &str = "no_votes";
    /// Nobody voted; the requester's declared (non-critical) level stands.
    pub const DECLARED: &str = "declared";
}

/// One task's policy row.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub importance: Option<String>,
    pub source: String,
    pub confidence: Option<f64>,
    /// The public-health keyword that fixed the importance.
    pub keyword: Option<String>,
    pub requested_sla: Sla,
    /// The SLA the scheduler works to.
    pub sla: Sla,
    /// Only the owner's own nodes may run it (a vetoed delegation).
    pub owner_only: bool,
}

/// The SLA a task with `importance` runs under, given what was asked for.
/// `None` means nobody voted.
pub fn sla_for(importance: Option<&str>, requested: Sla) -> Sla {
    let own_node_only = matches!(requested, Sla::SolarOnly | Sla::WindOnly);
    match importance {
        Some("critical") => Sla::Urgent,
        Some("high") if requested == Sla::Urgent || own_node_only => requested,
        Some("high") => Sla::High,
        Some("normal") => requested,
        _ if own_node_only => requested,
        _ => Sla::Eco,
    }
}

impl Policy {
    /// The policy of a task as submitted: fixed by `keyword` or a declared
    /// `critical`, otherwise pending a vote under the requested SLA.
    pub fn at_submission(
        keyword: Option<&str>,
        declared: Option<&str>,
        requested_sla: Option<Sla>,
    ) -> Self {
        let requested = requested_sla.unwrap_or(Sla::Normal);
        let (importance, source) = match (keyword, declared) {
            (Some(_), _) => (Some("critical"), source::PUBLIC_HEALTH),
            (None, Some("critical")) => (Some("critical"), source::REQUESTER),
            _ => (None, source::PENDING_VOTE),
        };
        Self {
            importance: importance.map(str::to_string),
            source: source.to_string(),
            confidence: importance.map(|_| 1.0),
            keyword: keyword.map(str::to_string),
            sla: match importance {
                Some(i) => sla_for(Some(i), requested),
                None => requested,
            },
            requested_sla: requested,
            owner_only: false,
        }
    }

    /// Whether a poll decides this task's importance.
    pub fn is_voted(&self) -> bool {
        !matches!(
            self.source.as_str(),
            source::PUBLIC_HEALTH | source::REQUESTER
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "importance": self.importance,
            "importance_source": self.source,
            "confidence": self.confidence,
            "public_health_keyword": self.keyword,
            "requested_sla": self.requested_sla,
            "sla": self.sla,
            "owner_only": self.owner_only,
        })
    }
}

pub fn insert(db: &Db, task_id: &str, p: &Policy) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO broker_task_policy (task_id, importance, source, confidence, keyword, requested_sla, sla,
             owner_only, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            text(task_id),
            opt_text(p.importance.clone()),
            text(p.source.clone()),
            p.confidence.map(Sql::Real).unwrap_or(Sql::Null),
            opt_text(p.keyword.clone()),
            text(p.requested_sla.as_str()),
            text(p.sla.as_str()),
            int(p.owner_only as u64),
            int(crate::util::now_ms()),
        ],
    )
}

pub fn get(db: &Db, task_id: &str) -> Result<Option<Policy>, ApiError> {
    let rows = db.query(
        "SELECT importance, source, confidence, keyword, requested_sla, sla, owner_only
         FROM broker_task_policy WHERE task_id = ?",
        &[text(task_id)],
    )?;
    Ok(rows.rows.first().map(|r| Policy {
        importance: r.get::<&str>(0).map(str::to_string),
        source: r.get::<&str>(1).unwrap_or_default().to_string(),
        confidence: r.get::<f64>(2),
        keyword: r.get::<&str>(3).map(str::to_string),
        requested_sla: r.get::<&str>(4).and_then(Sla::parse).unwrap_or(Sla::Normal),
        sla: r.get::<&str>(5).and_then(Sla::parse).unwrap_or(Sla::Normal),
        owner_only: r.get::<i64>(6).unwrap_or(0) != 0,
    }))
}

/// Records a closed poll's outcome; returns the SLA before and the updated
/// policy. A task pinned home by a veto keeps its eco SLA.
pub fn apply_vote(
    db: &Db,
    task_id: &str,
    importance: Option<&str>,
    decided_by: &str,
    confidence: f64,
) -> Result<Option<(Sla, Policy)>, ApiError> {
    let Some(mut p) = get(db, task_id)? else {
        return Ok(None);
    };
    let before = p.sla;
    if !p.is_voted() {
        return Ok(Some((before, p)));
    }
    p.importance = importance.map(str::to_string);
    p.source = decided_by.to_string();
    p.confidence = Some(confidence);
    if !p.owner_only {
        p.sla = sla_for(importance, p.requested_sla);
    }
    db.exec(
        "UPDATE broker_task_policy SET importance = ?, source = ?, confidence = ?, sla = ?, updated_at = ?
         WHERE task_id = ?",
        &[
            opt_text(p.importance.clone()),
            text(p.source.clone()),
            Sql::Real(confidence),
            text(p.sla.as_str()),
            int(crate::util::now_ms()),
            text(task_id),
        ],
    )?;
    Ok(Some((before, p)))
}

/// Pins a task to its owner's nodes in eco mode (a vetoed delegation).
pub fn pin_home(db: &Db, task_id: &str) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_task_policy SET owner_only = 1, sla = 'eco', updated_at = ? WHERE task_id = ?",
        &[int(crate::util::now_ms()), text(task_id)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_moves_the_sla_as_documented() {
        use Sla::*;
        assert_eq!(sla_for(Some("critical"), Eco), Urgent);
        assert_eq!(sla_for(Some("critical"), SolarOnly), Urgent);
        assert_eq!(sla_for(Some("high"), Eco), High);
        assert_eq!(sla_for(Some("high"), Urgent), Urgent);
        assert_eq!(sla_for(Some("high"), WindOnly), WindOnly);
        assert_eq!(sla_for(Some("normal"), Urgent), Urgent);
        assert_eq!(sla_for(Some("normal"), Normal), Normal);
        assert_eq!(sla_for(Some("low"), Normal), Eco);
        assert_eq!(sla_for(Some("non_critical"), High), Eco);
        assert_eq!(sla_for(None, Normal), Eco);
        assert_eq!(sla_for(None, SolarOnly), SolarOnly);
    }

    #[test]
    fn the_override_and_a_declared_critical_skip_the_vote() {
        let p = Policy::at_submission(Some("water"), None, Some(Sla::Eco));
        assert_eq!(p.importance.as_deref(), Some("critical"));
        assert_eq!(p.sla, Sla::Urgent);
        assert!(!p.is_voted());
        let p = Policy::at_submission(None, Some("critical"), None);
        assert_eq!(p.source, source::REQUESTER);
        assert!(!p.is_voted());
        let p = Policy::at_submission(None, Some("high"), Some(Sla::Eco));
        assert!(p.is_voted(), "only critical skips the vote");
        assert_eq!((p.importance, p.sla), (None, Sla::Eco));
    }
}
