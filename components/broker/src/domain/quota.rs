//! Quotas at the API: a task is counted against its owner's day when it is
//! submitted, given back when it is cancelled or fails before any node ran
//! it, and refused (429) once the day's tasks are used. The tier's time and
//! memory bound the task's requirements, which become the lease's sandbox
//! limits. The rules are the quota component's (`greenmesh:quota/tiers`).
//!
//! The `quotas` Spin variable set to `off` disables all of this (a private
//! network, or a benchmark submitting 100,000 tasks).

use crate::db::Db;
use crate::domain::standing::Standing;
use crate::error::ApiError;
use crate::greenmesh::quota::tiers;
use crate::greenmesh::quota::types::{self as qt, Tier};
use crate::model::{Requirements, User};
use serde_json::{json, Value};

/// Whether quotas are enforced (the default).
pub fn enabled() -> bool {
    spin_sdk::variables::get("quotas")
        .map(|v| v.trim() != "off")
        .unwrap_or(true)
}

pub fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Free => "free",
        Tier::Supporter => "supporter",
        Tier::Contributor => "contributor",
    }
}

pub fn limits_json(l: &qt::Limits) -> Value {
    json!({
        "tasks_per_day": l.tasks_per_day,
        "max_duration_sec": l.max_duration_sec,
        "max_memory_mb": l.max_memory_mb,
    })
}

pub fn usage_json(u: &qt::Usage) -> Value {
    json!({
        "user_id": u.user,
        "tier": tier_name(u.tier),
        "limits": limits_json(&u.limits),
        "used_today": u.used_today,
        "remaining": u.remaining,
        "timezone": u.timezone,
        "day_started_at": u.day_started_at,
        "next_reset_at": u.next_reset_at,
        "next_reset_at_iso": crate::util::iso8601(u.next_reset_at),
        "next_tier": u.next_tier,
        "enforced": enabled(),
    })
}

fn quota_error(e: qt::Error) -> ApiError {
    match e {
        qt::Error::Exhausted(u) => {
            let retry_after_s = u
                .next_reset_at
                .saturating_sub(crate::util::now_ms())
                .div_ceil(1000);
            ApiError::new(
                429,
                "quota_exhausted",
                format!(
                    "the {} tier allows {} tasks a day and all are used; the count resets at local midnight \
                     ({}), {}",
                    tier_name(u.tier),
                    u.limits.tasks_per_day,
                    u.timezone,
                    crate::util::iso8601(u.next_reset_at)
                ),
            )
            .with_details(json!({ "quota": usage_json(&u), "retry_after_s": retry_after_s }))
        }
        qt::Error::OverLimit(o) => {
            let (field, unit) = if o.limit == "duration" {
                ("requirements.max_execution_time_sec", "s")
            } else {
                ("requirements.max_memory_mb", "MB")
            };
            ApiError::new(
                403,
                "over_tier_limit",
                format!(
                    "the {} tier allows at most {} {unit} per task; the task asks for {} {unit}",
                    tier_name(o.tier),
                    o.allowed,
                    o.requested
                ),
            )
            .on_field(field)
        }
        qt::Error::Invalid(m) => ApiError::bad_request(m),
        qt::Error::Storage(m) => ApiError::internal(format!("quota: {m}")),
    }
}

/// Counts `task_id` against `user`'s day if its requirements fit the tier.
/// Returns the usage after it, or `None` with quotas off.
pub fn reserve(
    db: &Db,
    user: &User,
    task_id: &str,
    r: &Requirements,
) -> Result<Option<qt::Usage>, ApiError> {
    if !enabled() {
        return Ok(None);
    }
    let standing = Standing::load(db, &user.id)?.for_quota();
    let usage = tiers::reserve(
        &user.id,
        task_id,
        standing,
        qt::Need {
            duration_sec: r.max_execution_time_sec,
            memory_mb: r.max_memory_mb,
        },
    )
    .map_err(quota_error)?;
    note_promotion(db, &usage)?;
    Ok(Some(usage))
}

/// Gives `task_id`'s reservation back (cancelled, or failed before running).
pub fn release(db: &Db, user_id: &str, task_id: &str) -> Result<(), ApiError> {
    if !enabled() {
        return Ok(());
    }
    if tiers::release(user_id, task_id).map_err(quota_error)? {
        crate::domain::events::record(
            db,
            "quota_released",
            None,
            Some(task_id),
            Some(user_id),
            json!({}),
        )?;
    }
    Ok(())
}

/// Validates and sets a user's timezone (an IANA name).
pub fn set_timezone(user_id: &str, timezone: &str) -> Result<(), ApiError> {
    tiers::set_timezone(user_id, timezone).map_err(|e| quota_error(e).on_field("timezone"))
}

fn note_promotion(db: &Db, usage: &qt::Usage) -> Result<(), ApiError> {
    if let Some(from) = usage.promoted_from {
        crate::domain::events::record(
            db,
            "tier_promoted",
            None,
            None,
            Some(&usage.user),
            json!({ "from": tier_name(from), "to": tier_name(usage.tier) }),
        )?;
    }
    Ok(())
}

/// The user's own usage, limits and next reset.
pub fn usage(db: &Db, user_id: &str) -> Result<qt::Usage, ApiError> {
    let standing = Standing::load(db, user_id)?.for_quota();
    let usage = tiers::get_usage(user_id, standing).map_err(quota_error)?;
    note_promotion(db, &usage)?;
    Ok(usage)
}
