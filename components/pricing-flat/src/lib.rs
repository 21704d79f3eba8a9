//! The flat-rate pricing component: exports `greenmesh:pricing/quotes@0.1.0`.
//!
//! A quote is exactly the provider's base price (0 when that is negative or
//! not a finite number), with the single factor `("flat", 1.0)` and model
//! `flat`. Outcomes are ignored. It keeps no state and imports nothing but
//! WASI, which makes it the minimal proof of the pricing plugin seam: point
//! the `greenmesh:pricing/quotes@0.1.0` dependency in `spin.toml` at
//! `pricing_flat.wasm` instead of `pricing.wasm`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:pricing/pricing@0.1.0",
});

use exports::greenmesh::pricing::quotes::{Guest, Outcome, Quote, QuoteRequest};

/// The base price, or 0 when it is negative or not a finite number.
fn flat_price(base_price: f64) -> f64 {
    if base_price.is_finite() && base_price > 0.0 {
        base_price
    } else {
        0.0
    }
}

struct FlatPricing;

impl Guest for FlatPricing {
    /// It keeps no tables: nothing to configure.
    fn configure(_settings: Vec<(String, String)>) {}

    fn get_quote(request: QuoteRequest) -> Quote {
        Quote {
            price: flat_price(request.base_price),
            factors: vec![("flat".to_string(), 1.0)],
            model: "flat".to_string(),
        }
    }

    fn get_quotes(requests: Vec<QuoteRequest>) -> Vec<Quote> {
        requests.into_iter().map(Self::get_quote).collect()
    }

    fn record_outcome(_outcome: Outcome) {}
}

export!(FlatPricing);

#[cfg(test)]
mod tests {
    use super::flat_price;

    #[test]
    fn the_price_is_the_base_price_never_negative_or_nan() {
        assert_eq!(flat_price(12.5), 12.5);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(flat_price(bad), 0.0, "{bad}");
        }
    }
}
