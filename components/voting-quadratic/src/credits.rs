//! Quadratic voting: a ballot's voice credits buy their square root in
//! votes, so a strong preference costs quadratically more than a mild one.
//!
//! 0 credits means 1 (one vote); a ballot may spend at most
//! [`MAX_CREDITS`] (10 votes).

use voting_core::StoredBallot;

/// The scheme's name.
pub const SCHEME: &str = "quadratic";

/// Voice credits one ballot may spend.
pub const MAX_CREDITS: u32 = 100;

/// Whether a ballot may spend `credits`.
pub fn check(credits: u32) -> Result<(), String> {
    if credits > MAX_CREDITS {
        Err(format!("at most {MAX_CREDITS} voice credits per ballot"))
    } else {
        Ok(())
    }
}

/// The votes `credits` buy: √credits, with 0 read as 1. A stored ballot
/// above the cap (cast under another implementation) is counted at the cap.
pub fn votes(credits: u32) -> f64 {
    f64::from(credits.clamp(1, MAX_CREDITS)).sqrt()
}

/// The weight of a stored ballot.
pub fn weight(ballot: &StoredBallot) -> f64 {
    votes(ballot.credits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use voting_core::{Level, Standing, Weighting};

    #[test]
    fn credits_buy_their_square_root() {
        assert_eq!(votes(0), 1.0);
        assert_eq!(votes(1), 1.0);
        assert_eq!(votes(4), 2.0);
        assert_eq!(votes(9), 3.0);
        assert_eq!(votes(100), 10.0);
        assert_eq!(votes(u32::MAX), 10.0);
    }

    #[test]
    fn at_most_a_hundred_credits() {
        assert!(check(0).is_ok());
        assert!(check(100).is_ok());
        assert_eq!(
            check(101).unwrap_err(),
            "at most 100 voice credits per ballot"
        );
    }

    #[test]
    fn one_big_spender_needs_quadratically_many_credits() {
        let ballot = |voter: &str, level, credits| StoredBallot {
            voter: voter.into(),
            level,
            standing: Standing::default(),
            credits,
        };
        // 100 credits (10 votes) against four voters with 1 each (4 votes).
        let ballots = [
            ballot("whale", Level::Critical, 100),
            ballot("a", Level::Low, 0),
            ballot("b", Level::Low, 1),
            ballot("c", Level::Low, 0),
            ballot("d", Level::Low, 1),
        ];
        let t = Weighting::new(SCHEME, &weight).tally(&ballots);
        assert_eq!(t.importance, Some(Level::Critical));
        assert!((t.confidence - 10.0 / 14.0).abs() < 1e-12);
        assert_eq!(t.total_weight, 14.0);
    }
}
