//! How offers are weighed: a pure function of price, reputation, load and
//! clean energy, so the rule can be read and tested on its own.
//!
//! urgent: score = 0.5 · (1 − price / max_price) + 0.3 · reputation + 0.2 · (1 − load)
//! others: score = 0.3 · price + 0.2 · reputation + 0.1 · (1 − load) + 0.4 · (1 − intensity / dirtiest)
//!
//! where *dirtiest* is the highest intensity among the offers scored
//! together. Ties go to the smaller node id, so a decision is reproducible.

use crate::model::{Candidate, Sla};

/// Score weights (price, reputation, availability, clean energy) for urgent
/// tasks, and for every SLA that prefers clean energy.
const WEIGHTS_URGENT: [f64; 4] = [0.5, 0.3, 0.2, 0.0];
const WEIGHTS_CLEAN: [f64; 4] = [0.3, 0.2, 0.1, 0.4];

/// What scoring reads of one priced offer.
#[derive(Debug, Clone, Copy)]
pub struct Terms {
    pub price: f64,
    pub reputation: f64,
    pub load: f32,
    /// gCO2/kWh.
    pub intensity: f32,
}

/// The weights a task under `sla` is scored with.
pub fn weights(sla: Sla) -> [f64; 4] {
    if crate::domain::schedule::prefers_clean(sla) {
        WEIGHTS_CLEAN
    } else {
        WEIGHTS_URGENT
    }
}

/// Scores of `offers` (in order) for a task under `sla` paying at most
/// `max_price`.
pub fn score(sla: Sla, max_price: f64, offers: &[Terms]) -> Vec<f64> {
    let w = weights(sla);
    let dirtiest = offers.iter().map(|o| o.intensity).fold(0.0f32, f32::max);
    offers
        .iter()
        .map(|o| {
            let price_term = if max_price > 0.0 {
                1.0 - o.price / max_price
            } else {
                1.0
            };
            let clean_term = if dirtiest > 0.0 {
                1.0 - (o.intensity / dirtiest) as f64
            } else {
                1.0
            };
            w[0] * price_term
                + w[1] * o.reputation
                + w[2] * (1.0 - o.load as f64)
                + w[3] * clean_term
        })
        .collect()
}

/// Best first; equal scores in node-id order.
pub fn rank(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.node_id.cmp(&b.node_id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(price: f64, reputation: f64, load: f32, intensity: f32) -> Terms {
        Terms {
            price,
            reputation,
            load,
            intensity,
        }
    }

    fn candidate(node_id: &str, score: f64) -> Candidate {
        Candidate {
            node_id: node_id.into(),
            price: 1.0,
            reputation: 0.5,
            load: 0.0,
            intensity: 100.0,
            clean_share: 0.5,
            owner: "o".into(),
            score,
            factors: Vec::new(),
            model: "m".into(),
            kernel_sha256: None,
        }
    }

    #[test]
    fn urgent_tasks_weigh_price_reputation_and_load_only() {
        // Same price, reputation and load: the dirty node scores the same.
        let s = score(
            Sla::Urgent,
            10.0,
            &[terms(5.0, 0.5, 0.0, 50.0), terms(5.0, 0.5, 0.0, 500.0)],
        );
        assert_eq!(s[0], s[1]);
        // 0.5 · (1 − 5/10) + 0.3 · 0.5 + 0.2 · 1 = 0.6
        assert!((s[0] - 0.6).abs() < 1e-12, "{s:?}");
        // A cheaper offer wins.
        let s = score(
            Sla::Urgent,
            10.0,
            &[terms(2.0, 0.5, 0.0, 0.0), terms(8.0, 0.5, 0.0, 0.0)],
        );
        assert!(s[0] > s[1]);
    }

    #[test]
    fn patient_tasks_prefer_the_cleaner_grid_at_the_same_price() {
        let s = score(
            Sla::Normal,
            10.0,
            &[terms(5.0, 0.5, 0.0, 50.0), terms(5.0, 0.5, 0.0, 500.0)],
        );
        // Clean term: 1 − 50/500 = 0.9 against 0 for the dirtiest.
        assert!((s[0] - s[1] - 0.4 * 0.9).abs() < 1e-6, "{s:?}");
        // A node at twice the price but a tenth of the intensity still wins.
        let s = score(
            Sla::Eco,
            10.0,
            &[terms(4.0, 0.5, 0.0, 40.0), terms(2.0, 0.5, 0.0, 400.0)],
        );
        assert!(s[0] > s[1], "{s:?}");
    }

    #[test]
    fn free_tasks_and_an_all_zero_grid_do_not_divide_by_zero() {
        let s = score(
            Sla::High,
            0.0,
            &[terms(0.0, 1.0, 0.0, 0.0), terms(0.0, 0.0, 1.0, 0.0)],
        );
        assert!(s.iter().all(|x| x.is_finite()), "{s:?}");
        assert!(s[0] > s[1]);
    }

    #[test]
    fn rank_puts_the_best_first_and_breaks_ties_by_node_id() {
        let mut c = vec![
            candidate("node-b", 0.5),
            candidate("node-c", 0.9),
            candidate("node-a", 0.5),
        ];
        rank(&mut c);
        let order: Vec<&str> = c.iter().map(|c| c.node_id.as_str()).collect();
        assert_eq!(order, ["node-c", "node-a", "node-b"]);
    }
}
