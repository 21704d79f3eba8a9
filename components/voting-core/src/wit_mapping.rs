//! The mapping between a voting component's `wit-bindgen` types and
//! `voting-core`'s, as a macro: each component generates its own copy of the
//! WIT types, so the functions must be expanded where those types live.

/// Expands `error`, `level`, `core_level`, `core_ballot`, `outcome` and `poll`
/// in the calling crate, which must have the WIT types `Ballot`,
/// `DecidedBy`, `Error`, `Level`, `Outcome`, `Poll` and `Standing` of
/// `greenmesh:voting/types` in scope.
#[macro_export]
macro_rules! wit_mapping {
    () => {
        fn error(e: $crate::Error) -> Error {
            match e {
                $crate::Error::NotFound(m) => Error::NotFound(m),
                $crate::Error::Closed(m) => Error::Closed(m),
                $crate::Error::NotAllowed(m) => Error::NotAllowed(m),
                $crate::Error::Invalid(m) => Error::Invalid(m),
                $crate::Error::Storage(m) => Error::Storage(m),
            }
        }

        fn level(l: $crate::Level) -> Level {
            match l {
                $crate::Level::Critical => Level::Critical,
                $crate::Level::High => Level::High,
                $crate::Level::Normal => Level::Normal,
                $crate::Level::Low => Level::Low,
                $crate::Level::NonCritical => Level::NonCritical,
            }
        }

        fn core_level(l: Level) -> $crate::Level {
            match l {
                Level::Critical => $crate::Level::Critical,
                Level::High => $crate::Level::High,
                Level::Normal => $crate::Level::Normal,
                Level::Low => $crate::Level::Low,
                Level::NonCritical => $crate::Level::NonCritical,
            }
        }

        fn core_ballot(b: Ballot) -> $crate::Ballot {
            let Standing {
                reputation,
                donations,
                months_active,
                tasks_completed,
            } = b.standing;
            $crate::Ballot {
                voter: b.voter,
                level: core_level(b.level),
                standing: $crate::Standing {
                    reputation,
                    donations,
                    months_active,
                    tasks_completed,
                },
                credits: b.credits,
            }
        }

        fn outcome(o: $crate::Outcome) -> Outcome {
            let t = o.tally;
            Outcome {
                task_id: o.task_id,
                importance: t.importance.map(level),
                decided_by: match t.decided_by {
                    $crate::DecidedBy::Consensus => DecidedBy::Consensus,
                    $crate::DecidedBy::Unanimous => DecidedBy::Unanimous,
                    $crate::DecidedBy::NoConsensus => DecidedBy::NoConsensus,
                    $crate::DecidedBy::NoVotes => DecidedBy::NoVotes,
                },
                confidence: t.confidence,
                weights: t.weights.into_iter().map(|(l, w)| (level(l), w)).collect(),
                total_weight: t.total_weight,
                ballots: t.ballots,
                scheme: o.scheme,
                closed: o.closed,
            }
        }

        fn poll(p: $crate::Poll) -> Poll {
            Poll {
                task_id: p.task_id,
                opened_at: p.opened_at,
                closes_at: p.closes_at,
                outcome: outcome(p.outcome),
            }
        }
    };
}
