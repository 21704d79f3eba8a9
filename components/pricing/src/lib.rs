//! The online pricing component: exports `greenmesh:pricing/quotes@0.1.0`.
//!
//! This file only wires the WIT interface to [`model`] (the math) and to the
//! `pricing_model` table (one learned multiplier per capability). A storage
//! error never fails a quote: it is logged to stderr and the multiplier
//! falls back to 1.

pub mod model;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:pricing/pricing@0.1.0",
});

use exports::greenmesh::pricing::quotes::{Guest, Outcome, Quote, QuoteRequest};
use greenmesh_storage::{Connection, Value};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS pricing_model (
    capability TEXT PRIMARY KEY,
    multiplier REAL NOT NULL,
    observations INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
)";

/// One outcome, applied atomically in the database: the new multiplier is
/// [`model::apply`] of the stored one, written as SQL so that concurrent
/// outcomes for the same capability compose instead of overwriting each other.
const RECORD: &str = "INSERT INTO pricing_model (capability, multiplier, observations, updated_at)
    VALUES (?1, ?2, 1, ?3)
    ON CONFLICT (capability) DO UPDATE SET
        multiplier = min(max(pricing_model.multiplier * ?4, ?5), ?6),
        observations = pricing_model.observations + 1,
        updated_at = max(pricing_model.updated_at, ?3)";

/// Milliseconds since the Unix epoch, from the WASI wall clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An `f32` as the `f64` of its shortest decimal form, so that a load of
/// `0.6` explains as `load 1.18`, not `1.180000014305115`.
fn widen(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// The default database with `pricing_model` in place (one connection per instance).
fn open() -> Result<std::rc::Rc<Connection>, String> {
    greenmesh_storage::connection(&[SCHEMA]).map_err(|e| format!("open: {e:?}"))
}

/// The stored multiplier for `capability`, if any.
fn stored_multiplier(capability: &str) -> Result<Option<f64>, String> {
    let db = open()?;
    let result = db
        .execute(
            "SELECT multiplier FROM pricing_model WHERE capability = ?",
            &[Value::Text(capability.to_string())],
        )
        .map_err(|e| format!("select: {e:?}"))?;
    Ok(result
        .rows
        .first()
        .and_then(|row| match row.values.first() {
            Some(Value::Real(m)) => Some(*m),
            Some(Value::Integer(m)) => Some(*m as f64),
            _ => None,
        }))
}

fn record(outcome: &Outcome) -> Result<(), String> {
    let db = open()?;
    let factor = model::outcome_factor(outcome.accepted, outcome.succeeded);
    db.execute(
        RECORD,
        &[
            Value::Text(outcome.capability.clone()),
            Value::Real(model::apply(1.0, factor)),
            Value::Integer(now_ms()),
            Value::Real(factor),
            Value::Real(model::LEARNED_MIN),
            Value::Real(model::LEARNED_MAX),
        ],
    )
    .map_err(|e| format!("upsert: {e:?}"))?;
    Ok(())
}

struct Pricing;

/// The learned multiplier for `capability`, 1 without history or on a
/// storage error (logged).
fn learned(capability: &str) -> f64 {
    match stored_multiplier(capability) {
        Ok(m) => m.unwrap_or(1.0),
        Err(e) => {
            eprintln!("pricing: learned multiplier for {capability:?} unavailable ({e}); using 1");
            1.0
        }
    }
}

/// One quote under a known learned multiplier.
fn quote_with(request: &QuoteRequest, learned: f64) -> Quote {
    let q = model::quote(
        &model::Request {
            base_price: request.base_price,
            input_bytes: request.input_bytes,
            max_execution_time_sec: request.max_execution_time_sec,
            max_memory_mb: request.max_memory_mb,
            queued_tasks: request.queued_tasks,
            free_nodes: request.free_nodes,
            provider_load: widen(request.provider_load),
            latency_ms: widen(request.latency_ms),
        },
        learned,
    );
    Quote {
        price: q.price,
        factors: q
            .factors
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
        model: model::MODEL.to_string(),
    }
}

impl Guest for Pricing {
    fn configure(settings: Vec<(String, String)>) {
        greenmesh_storage::configure(&settings);
    }

    fn get_quote(request: QuoteRequest) -> Quote {
        quote_with(&request, learned(&request.capability))
    }

    fn get_quotes(requests: Vec<QuoteRequest>) -> Vec<Quote> {
        // One multiplier lookup per capability, not per offer.
        let mut multipliers: Vec<(String, f64)> = Vec::new();
        requests
            .iter()
            .map(|request| {
                let m = match multipliers.iter().find(|(c, _)| *c == request.capability) {
                    Some((_, m)) => *m,
                    None => {
                        let m = learned(&request.capability);
                        multipliers.push((request.capability.clone(), m));
                        m
                    }
                };
                quote_with(request, m)
            })
            .collect()
    }

    fn record_outcome(outcome: Outcome) {
        if let Err(e) = record(&outcome) {
            eprintln!(
                "pricing: outcome for {:?} not recorded ({e})",
                outcome.capability
            );
        }
    }
}

export!(Pricing);
