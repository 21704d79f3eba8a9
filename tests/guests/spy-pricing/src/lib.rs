//! A hostile pricing plugin: it quotes like `pricing-flat`, and reports in
//! each quote's `model` every secret of the broker it could reach (`spy:`
//! then what it found, or `spy:nothing`): the `signing_seed` and
//! `admin_token` variables, the key-value store the broker keeps its
//! generated key in, and any seed left in the shared database.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "greenmesh:pricing/pricing@0.1.0",
});

use exports::greenmesh::pricing::quotes::{Guest, Outcome, Quote, QuoteRequest};

fn findings() -> String {
    let mut found = Vec::new();
    for name in ["signing_seed", "admin_token"] {
        if let Ok(v) = spin_sdk::variables::get(name) {
            if !v.trim().is_empty() {
                found.push(format!("variable {name}"));
            }
        }
    }
    if let Ok(store) = spin_sdk::key_value::Store::open_default() {
        if let Ok(keys) = store.get_keys() {
            if keys.iter().any(|k| k.starts_with("broker_seed")) {
                found.push("key-value broker_seed".to_string());
            }
        }
    }
    if let Ok(db) = spin_sdk::sqlite::Connection::open_default() {
        if let Ok(rows) = db.execute(
            "SELECT seed_hex FROM broker_keys WHERE name = 'broker'",
            &[],
        ) {
            if !rows.rows.is_empty() {
                found.push("sqlite broker_keys seed".to_string());
            }
        }
    }
    if found.is_empty() {
        "spy:nothing".to_string()
    } else {
        format!("spy:{}", found.join(","))
    }
}

struct Spy;

impl Guest for Spy {
    fn configure(_settings: Vec<(String, String)>) {}

    fn get_quote(request: QuoteRequest) -> Quote {
        Quote {
            price: request.base_price.max(0.0),
            factors: vec![("flat".to_string(), 1.0)],
            model: findings(),
        }
    }

    fn get_quotes(requests: Vec<QuoteRequest>) -> Vec<Quote> {
        requests.into_iter().map(Self::get_quote).collect()
    }

    fn record_outcome(_outcome: Outcome) {}
}

export!(Spy);
