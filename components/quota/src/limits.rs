//! The fixed limits of each tier, and whether a task's need fits them.
//!
//! | tier        | tasks/day | time per task | memory  |
//! |-------------|-----------|---------------|---------|
//! | free        | 10        | 10 min        | 100 MB  |
//! | supporter   | 50        | 30 min        | 500 MB  |
//! | contributor | 200       | 60 min        | 2048 MB |

use crate::tier::Tier;

/// What a tier allows (the WIT `limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub tasks_per_day: u32,
    pub max_duration_sec: u32,
    pub max_memory_mb: u64,
}

/// A need beyond a limit (the WIT `over`, less the tier).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Over {
    /// `duration` or `memory`.
    pub limit: &'static str,
    pub requested: u64,
    pub allowed: u64,
}

/// The limits of `tier`.
pub fn of(tier: Tier) -> Limits {
    match tier {
        Tier::Free => Limits {
            tasks_per_day: 10,
            max_duration_sec: 10 * 60,
            max_memory_mb: 100,
        },
        Tier::Supporter => Limits {
            tasks_per_day: 50,
            max_duration_sec: 30 * 60,
            max_memory_mb: 500,
        },
        Tier::Contributor => Limits {
            tasks_per_day: 200,
            max_duration_sec: 60 * 60,
            max_memory_mb: 2048,
        },
    }
}

impl Limits {
    /// Whether a task of `duration_sec` and `memory_mb` fits; duration is
    /// checked first. Equal to the limit fits.
    pub fn admit(&self, duration_sec: u32, memory_mb: u64) -> Result<(), Over> {
        if duration_sec > self.max_duration_sec {
            return Err(Over {
                limit: "duration",
                requested: duration_sec.into(),
                allowed: self.max_duration_sec.into(),
            });
        }
        if memory_mb > self.max_memory_mb {
            return Err(Over {
                limit: "memory",
                requested: memory_mb,
                allowed: self.max_memory_mb,
            });
        }
        Ok(())
    }

    /// Tasks left today after `used`.
    pub fn remaining(&self, used: u32) -> u32 {
        self.tasks_per_day.saturating_sub(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        assert_eq!(
            of(Tier::Free),
            Limits {
                tasks_per_day: 10,
                max_duration_sec: 600,
                max_memory_mb: 100
            }
        );
        assert_eq!(
            of(Tier::Supporter),
            Limits {
                tasks_per_day: 50,
                max_duration_sec: 1800,
                max_memory_mb: 500
            }
        );
        assert_eq!(
            of(Tier::Contributor),
            Limits {
                tasks_per_day: 200,
                max_duration_sec: 3600,
                max_memory_mb: 2048
            }
        );
    }

    #[test]
    fn a_need_at_the_limit_fits_one_over_does_not() {
        let free = of(Tier::Free);
        assert_eq!(free.admit(600, 100), Ok(()));
        assert_eq!(
            free.admit(601, 100),
            Err(Over {
                limit: "duration",
                requested: 601,
                allowed: 600
            })
        );
        assert_eq!(
            free.admit(600, 101),
            Err(Over {
                limit: "memory",
                requested: 101,
                allowed: 100
            })
        );
    }

    #[test]
    fn duration_is_reported_before_memory() {
        let over = of(Tier::Supporter).admit(u32::MAX, u64::MAX).unwrap_err();
        assert_eq!(over.limit, "duration");
        assert_eq!(over.requested, u64::from(u32::MAX));
    }

    #[test]
    fn remaining_never_underflows() {
        let free = of(Tier::Free);
        assert_eq!(free.remaining(0), 10);
        assert_eq!(free.remaining(10), 0);
        assert_eq!(free.remaining(25), 0);
    }
}
