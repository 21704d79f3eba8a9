//! The mapping between a voting component's `wit-bindgen` types and
//! `voting-core`'s, as a macro: each component generates its own copy of the
//! WIT types, so the functions must be expanded where those types live.

/// Expands, in the calling crate, the type mapping (`error`, `level`,
/// `core_level`, `core_ballot`, `outcome`, `poll`) and the ballot-box
/// operations every implementation shares (`open_poll`, `cast_ballot`,
/// `get_poll`, `open_polls`, `close_due_polls`, `count_votes`). The caller
/// must have the WIT types `Ballot`, `CastReceipt`, `DecidedBy`, `Error`,
/// `Level`, `Outcome`, `Poll` and `Standing` of `greenmesh:voting/types` in
/// scope, and a `weighed` function running a closure with its [`Weighting`].
///
/// [`Weighting`]: crate::Weighting
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

        fn open_poll(task_id: &str, window_ms: u64) -> Result<Poll, Error> {
            weighed(|w| $crate::store::open(task_id, window_ms, w)).map(poll)
        }

        /// Casts a ballot the component has already admitted.
        fn cast_ballot(task_id: &str, ballot: Ballot) -> Result<CastReceipt, Error> {
            let replaced = $crate::store::cast(task_id, &core_ballot(ballot)).map_err(error)?;
            let poll = get_poll(task_id)?;
            Ok(CastReceipt { replaced, poll })
        }

        fn get_poll(task_id: &str) -> Result<Poll, Error> {
            weighed(|w| $crate::store::get(task_id, w)).map(poll)
        }

        fn open_polls(limit: u32) -> Result<Vec<Poll>, Error> {
            weighed(|w| $crate::store::list_open(limit, w))
                .map(|polls| polls.into_iter().map(poll).collect())
        }

        fn close_due_polls(limit: u32) -> Result<Vec<Outcome>, Error> {
            weighed(|w| $crate::store::close_due($crate::clock::now_ms(), limit, w))
                .map(|closed| closed.into_iter().map(outcome).collect())
        }

        /// Ballots `voter` has cast; 0 (logged) if the database fails.
        fn count_votes(voter: &str) -> u64 {
            $crate::store::votes_cast(voter).unwrap_or_else(|e| {
                eprintln!("voting: votes of {voter:?} unavailable ({e}); answering 0");
                0
            })
        }
    };
}
