//! The quorum rule for one shard of a task group (or a result and its spot
//! checks), as a pure function: from what its runs reported, whether the
//! shard agreed on an output, failed, needs another replica, or stays
//! disputed.
//!
//! Honest deterministic runs of one kernel on one input give the same bytes
//! (seeded randomness, canonical NaNs, frozen clocks), so outputs are
//! compared exactly, by hash. The rule, for a shard run by `replicas`
//! members (see `docs/verification.md`):
//!
//! - wait until no member is still queued or running;
//! - an output reported by at least two members and by more than half of
//!   those that reported (a signed output or a signed failure) is agreed;
//!   members that reported another output are the minority (wrong results);
//! - more than half of the reports being failures (at least two) fails the
//!   shard with the first failure's error;
//! - otherwise one more replica is added, up to `max_replicas`; past that
//!   the shard is disputed and the group fails saying so.
//!
//! A shard that is not replicated (`replicas == 1`, plain shards) takes
//! its one member's report as is.

/// What one member of a shard reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A signed output, by its SHA-256.
    Output(String),
    /// A signed failure of the kernel, with its error.
    Failed(String),
    /// Still queued or running.
    Pending,
    /// Ended without a report (it gave up after its attempts, or could not
    /// start by its deadline), with why.
    Lost(String),
}

/// How a shard stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Members are still at work.
    Pending,
    /// `output` is the shard's result; `agreeing` and `minority` index the
    /// reports (the minority reported other outputs).
    Agreed {
        output: String,
        agreeing: Vec<usize>,
        minority: Vec<usize>,
    },
    /// The shard failed, with why.
    Failed(String),
    /// Add one more replica and judge again.
    MoreReplicas,
    /// No majority with as many replicas as allowed.
    Disputed(String),
}

/// Judges one shard from its members' `reports` (in the order they were
/// added), run as `replicas` replicas growing up to `max_replicas`.
pub fn judge(reports: &[Report], replicas: u32, max_replicas: u32) -> Verdict {
    if replicas <= 1 {
        // Not replicated: the one member's word (the lease lifecycle
        // already re-leased it as often as it may).
        return match reports.last() {
            Some(Report::Output(h)) => Verdict::Agreed {
                output: h.clone(),
                agreeing: vec![reports.len() - 1],
                minority: Vec::new(),
            },
            Some(Report::Failed(e)) | Some(Report::Lost(e)) => Verdict::Failed(e.clone()),
            Some(Report::Pending) | None => Verdict::Pending,
        };
    }
    if reports.contains(&Report::Pending) {
        return Verdict::Pending;
    }
    let reported = reports
        .iter()
        .filter(|r| matches!(r, Report::Output(_) | Report::Failed(_)))
        .count();
    // Outputs by how many reported each, first-reported first on a tie.
    let mut tally: Vec<(&str, usize)> = Vec::new();
    for r in reports {
        if let Report::Output(h) = r {
            match tally.iter_mut().find(|(t, _)| *t == h) {
                Some((_, n)) => *n += 1,
                None => tally.push((h, 1)),
            }
        }
    }
    if let Some(&(best, n)) = tally.iter().max_by_key(|(_, n)| *n) {
        if n >= 2 && n * 2 > reported {
            let (mut agreeing, mut minority) = (Vec::new(), Vec::new());
            for (i, r) in reports.iter().enumerate() {
                match r {
                    Report::Output(h) if h == best => agreeing.push(i),
                    Report::Output(_) => minority.push(i),
                    _ => {}
                }
            }
            return Verdict::Agreed {
                output: best.to_string(),
                agreeing,
                minority,
            };
        }
    }
    let failures: Vec<&str> = reports
        .iter()
        .filter_map(|r| match r {
            Report::Failed(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    if failures.len() >= 2 && failures.len() * 2 > reported {
        return Verdict::Failed(failures[0].to_string());
    }
    if (reports.len() as u32) < max_replicas {
        return Verdict::MoreReplicas;
    }
    let lost = reports
        .iter()
        .filter(|r| matches!(r, Report::Lost(_)))
        .count();
    let mut counts: Vec<String> = tally
        .iter()
        .map(|(h, n)| format!("{n} × output {}", &h[..h.len().min(12)]))
        .collect();
    if !failures.is_empty() {
        counts.push(format!("{} failed", failures.len()));
    }
    if lost > 0 {
        counts.push(format!("{lost} never reported"));
    }
    Verdict::Disputed(format!(
        "no majority of at least two among {} replicas (the most allowed): {}",
        reports.len(),
        counts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Report::*;

    fn out(h: &str) -> Report {
        Output(h.to_string())
    }

    #[test]
    fn a_majority_of_at_least_two_agrees_and_names_the_minority() {
        let v = judge(&[out("a"), out("b"), out("a")], 3, 6);
        assert_eq!(
            v,
            Verdict::Agreed {
                output: "a".into(),
                agreeing: vec![0, 2],
                minority: vec![1]
            }
        );
        // Two of two.
        assert!(matches!(
            judge(&[out("a"), out("a")], 2, 5),
            Verdict::Agreed { .. }
        ));
    }

    #[test]
    fn nothing_is_decided_while_a_replica_is_at_work() {
        assert_eq!(
            judge(&[out("a"), out("a"), Pending], 3, 6),
            Verdict::Pending
        );
    }

    #[test]
    fn a_disagreement_adds_replicas_up_to_the_cap_then_is_disputed() {
        assert_eq!(judge(&[out("a"), out("b")], 2, 5), Verdict::MoreReplicas);
        // A tie is no majority.
        assert_eq!(
            judge(&[out("a"), out("b"), out("a"), out("b")], 2, 5),
            Verdict::MoreReplicas
        );
        let v = judge(&[out("a"), out("b"), out("c")], 2, 3);
        assert!(
            matches!(&v, Verdict::Disputed(why) if why.contains("3 replicas")),
            "{v:?}"
        );
        // One output alone is no quorum, however many others were lost.
        assert_eq!(
            judge(&[out("a"), Lost("expired".into())], 2, 5),
            Verdict::MoreReplicas
        );
    }

    #[test]
    fn lost_members_do_not_vote_and_failures_need_a_majority() {
        assert!(matches!(
            judge(&[out("a"), Lost("gave up".into()), out("a")], 3, 6),
            Verdict::Agreed { .. }
        ));
        assert_eq!(
            judge(&[Failed("trap".into()), Failed("oom".into())], 2, 5),
            Verdict::Failed("trap".into())
        );
        assert_eq!(
            judge(&[Failed("trap".into()), out("a")], 2, 5),
            Verdict::MoreReplicas
        );
    }

    #[test]
    fn an_unreplicated_shard_takes_its_member_s_word() {
        assert!(matches!(judge(&[out("a")], 1, 1), Verdict::Agreed { .. }));
        assert_eq!(judge(&[Pending], 1, 1), Verdict::Pending);
        assert_eq!(
            judge(&[Lost("no node".into())], 1, 1),
            Verdict::Failed("no node".into())
        );
    }
}
