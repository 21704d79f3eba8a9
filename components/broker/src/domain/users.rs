//! User accounts: registration (the token is shown once and stored only
//! as its SHA-256), lookup by token with the per-user rate limit, and the
//! account's own settings (timezone, the key that signs grants).

use crate::db::{int, opt_text, text, Db};
use crate::error::ApiError;
use crate::model::User;
use serde_json::{json, Value};

/// Requests a user may make per minute (fixed window), unless the
/// `rate_limit_per_minute` Spin variable says otherwise.
pub const RATE_LIMIT_PER_MINUTE: i64 = 1200;

fn rate_limit() -> i64 {
    spin_sdk::variables::get("rate_limit_per_minute")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(RATE_LIMIT_PER_MINUTE)
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    greenmesh_protocol::sha256_hex(token.as_bytes())
}

fn check_public_key(key: &str) -> Result<(), ApiError> {
    greenmesh_protocol::public_key(key)
        .map(|_| ())
        .map_err(|_| {
            ApiError::invalid(
                "public_key",
                "public_key must be a 32-byte ed25519 key in hex",
            )
        })
}

/// The user holding `token`, counted against their rate limit.
pub fn authenticate(db: &Db, token: &str) -> Result<User, ApiError> {
    let rows = db.query(
        "SELECT id, name, public_key, window_start, window_count FROM broker_users WHERE token_hash = ?",
        &[text(token_hash(token))],
    )?;
    let row = rows
        .rows
        .first()
        .ok_or_else(|| ApiError::unauthorized("unknown API token"))?;
    let user = User {
        id: row.get::<&str>(0).unwrap_or_default().to_string(),
        name: row.get::<&str>(1).unwrap_or_default().to_string(),
        public_key: row.get::<&str>(2).map(str::to_string),
    };
    // One compare-and-set counts the request: concurrent requests (on
    // one replica or several) cannot all read the same count and all pass.
    let now = crate::util::now_ms();
    let counted = db.query(
        "UPDATE broker_users SET
           window_start = CASE WHEN ?1 - window_start >= 60000 THEN ?1 ELSE window_start END,
           window_count = CASE WHEN ?1 - window_start >= 60000 THEN 1 ELSE window_count + 1 END
         WHERE id = ?2 AND (?1 - window_start >= 60000 OR window_count < ?3)
         RETURNING window_count",
        &[
            int(now),
            text(user.id.clone()),
            int(rate_limit().max(0) as u64),
        ],
    )?;
    if counted.rows.is_empty() {
        // The window as it is now (a racing request may have opened it).
        let window_start = db
            .query(
                "SELECT window_start FROM broker_users WHERE id = ?",
                &[text(user.id.clone())],
            )?
            .rows
            .first()
            .and_then(|r| r.get::<i64>(0))
            .unwrap_or(0) as u64;
        let retry = 60_000u64
            .saturating_sub(now.saturating_sub(window_start))
            .div_ceil(1000)
            .max(1);
        return Err(ApiError::new(
            429,
            "rate_limited",
            format!(
                "more than {} requests this minute; retry in {retry} s",
                rate_limit()
            ),
        ));
    }
    Ok(user)
}

/// Registers a user once the request is valid and `admit` lets it in
/// (the network's registration policy, `identity`); answers the account
/// with its API token (the only copy).
pub fn register(
    db: &Db,
    name: &str,
    public_key: Option<&str>,
    timezone: Option<&str>,
    admit: impl FnOnce() -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(ApiError::invalid(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    if let Some(key) = public_key {
        check_public_key(key)?;
    }
    // Admitted first, so a refused registration writes nothing.
    admit()?;
    let id = crate::util::new_id("user");
    // Validated (and stored by the quota component) before the user exists,
    // so a bad timezone registers nothing (it has used the admission).
    if let Some(tz) = timezone {
        crate::domain::quota::set_timezone(&id, tz)?;
    }
    let secret: [u8; 32] = crate::util::random_bytes();
    let token = format!("gm_{}", greenmesh_protocol::to_hex(&secret));
    db.exec(
        "INSERT INTO broker_users (id, name, token_hash, public_key, created_at) VALUES (?, ?, ?, ?, ?)",
        &[text(id.clone()), text(name), text(token_hash(&token)), opt_text(public_key), int(crate::util::now_ms())],
    )?;
    crate::domain::events::record(
        db,
        "user_registered",
        None,
        None,
        Some(&id),
        json!({ "name": name }),
    )?;
    Ok(
        json!({ "id": id, "name": name, "token": token, "public_key": public_key, "timezone": timezone.unwrap_or("UTC") }),
    )
}

/// The caller's own record, with its requester reputation.
pub fn me(user: &User) -> Value {
    use crate::greenmesh::reputation::scores;
    let rep = scores::get(&user.id, scores::Role::Requester);
    json!({
        "id": user.id, "name": user.name, "public_key": user.public_key,
        "reputation": crate::domain::nodes::reputation_json(&rep),
    })
}

/// Sets the caller's timezone and/or public key (the key that signs their
/// permission grants).
pub fn update(
    db: &Db,
    user: &User,
    timezone: Option<&str>,
    public_key: Option<&str>,
) -> Result<Value, ApiError> {
    if timezone.is_none() && public_key.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: send timezone and/or public_key",
        ));
    }
    if let Some(key) = public_key {
        check_public_key(key)?;
    }
    if let Some(tz) = timezone {
        crate::domain::quota::set_timezone(&user.id, tz)?;
    }
    if let Some(key) = public_key {
        db.exec(
            "UPDATE broker_users SET public_key = ? WHERE id = ?",
            &[text(key.to_ascii_lowercase()), text(user.id.clone())],
        )?;
    }
    let rows = db.query(
        "SELECT public_key FROM broker_users WHERE id = ?",
        &[text(user.id.clone())],
    )?;
    let mut v = json!({
        "id": user.id, "name": user.name,
        "public_key": rows.rows.first().and_then(|r| r.get::<&str>(0)),
        "timezone": timezone,
    });
    if let Some(tz) = timezone {
        // A change counts from the next reset of the day in force.
        let usage = crate::domain::quota::usage(db, &user.id)?;
        v["timezone_in_force"] = json!(usage.timezone);
        if usage.timezone != tz {
            v["timezone_applies_from"] = json!(usage.next_reset_at);
        }
    }
    Ok(v)
}
