//! `greenmesh bench verify`: how well result verification catches cheating
//! nodes, and what it costs, on a simulated network (a replay in task
//! order, no wall clock): `nodes` nodes of `nodes / nodes_per_owner`
//! owners, a `cheaters` share of which return a wrong output on `wrong`
//! of their runs.
//!
//! The rules are the broker's own, from the shared `greenmesh-quorum`
//! crate: [`judge`](greenmesh_quorum::judge) over replicated runs and
//! [`spot_check::rate`] from a node's record. The broker's wiring of them
//! (who is leased what, reputation marks) is covered by the integration
//! tests; this measures the rules' statistics at a scale tests cannot.
//!
//! Two policies over the same task stream:
//! - **require_proof**: every task runs on two nodes of distinct owners,
//!   more on a disagreement (up to the cap), the majority wins;
//! - **spot checks**: every task runs once; with the node's check rate it
//!   is rerun on another owner's node, and a mismatch is settled by a
//!   third. A node on the losing side is marked and its record restarts.
//!
//! Wrong outputs are independent by default (two cheaters never agree);
//! `--collude` makes every cheater return the same wrong output for a task,
//! the worst case for a majority vote.

use greenmesh_quorum::spot_check::{self, Rates};
use greenmesh_quorum::{judge, Report, Verdict};

/// What the benchmark runs (`greenmesh bench verify` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Setup {
    #[arg(long, default_value_t = 1_000)]
    pub nodes: usize,
    /// Nodes per owner (owners are what replicas must differ by).
    #[arg(long, default_value_t = 2)]
    pub nodes_per_owner: usize,
    /// Share of nodes that cheat.
    #[arg(long, default_value_t = 0.10)]
    pub cheaters: f64,
    /// Share of a cheater's runs that return a wrong output.
    #[arg(long, default_value_t = 0.20)]
    pub wrong: f64,
    /// Tasks per node, on average (each task's node is drawn at random).
    #[arg(long, default_value_t = 200)]
    pub tasks_per_node: usize,
    /// Cheaters agree on one wrong output per task.
    #[arg(long)]
    pub collude: bool,
    /// The spot-check rate at 20 agreeing checks, its floor and ceiling.
    #[arg(long, default_value_t = Rates::default().rate)]
    pub rate: f64,
    #[arg(long, default_value_t = Rates::default().floor)]
    pub floor: f64,
    #[arg(long, default_value_t = Rates::default().ceiling)]
    pub ceiling: f64,
    /// Replicas a require_proof shard may grow to.
    #[arg(long, default_value_t = 5)]
    pub max_replicas: u32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// A splitmix64 generator: reproducible runs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The simulated network.
struct Network {
    owner: Vec<usize>,
    cheater: Vec<bool>,
    wrong: f64,
    collude: bool,
    /// A fresh wrong output per run when cheaters do not collude.
    next_output: u64,
}

impl Network {
    fn new(s: &Setup, rng: &mut Rng) -> Self {
        let n = s.nodes.max(3);
        let mut cheater = vec![false; n];
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for &i in order.iter().take((n as f64 * s.cheaters).round() as usize) {
            cheater[i] = true;
        }
        Self {
            owner: (0..n).map(|i| i / s.nodes_per_owner.max(1)).collect(),
            cheater,
            wrong: s.wrong,
            collude: s.collude,
            next_output: 2,
        }
    }

    /// What `node` outputs for a task (0 is right).
    fn run(&mut self, node: usize, rng: &mut Rng) -> u64 {
        if !self.cheater[node] || rng.unit() >= self.wrong {
            return 0;
        }
        if self.collude {
            return 1;
        }
        self.next_output += 1;
        self.next_output
    }

    /// A node of an owner none of `used` has.
    fn other_owner(&self, used: &[usize], rng: &mut Rng) -> usize {
        loop {
            let n = rng.below(self.owner.len());
            if used.iter().all(|&u| self.owner[u] != self.owner[n]) {
                return n;
            }
        }
    }
}

fn reports(outputs: &[u64]) -> Vec<Report> {
    outputs
        .iter()
        .map(|o| Report::Output(o.to_string()))
        .collect()
}

/// require_proof: figures over the task stream.
#[derive(Default)]
struct ProofFigures {
    executions: u64,
    wrong_runs: u64,
    wrong_accepted: u64,
    disputed: u64,
}

fn require_proof(s: &Setup, tasks: usize, rng: &mut Rng) -> ProofFigures {
    let mut net = Network::new(s, rng);
    let mut f = ProofFigures::default();
    for _ in 0..tasks {
        let mut nodes = vec![rng.below(net.owner.len())];
        nodes.push(net.other_owner(&nodes, rng));
        let mut outputs: Vec<u64> = nodes.iter().map(|&n| net.run(n, rng)).collect();
        loop {
            match judge(&reports(&outputs), 2, s.max_replicas) {
                Verdict::MoreReplicas => {
                    let n = net.other_owner(&nodes, rng);
                    nodes.push(n);
                    outputs.push(net.run(n, rng));
                }
                Verdict::Agreed { output, .. } => {
                    if output != "0" {
                        f.wrong_accepted += 1;
                    }
                    break;
                }
                _ => {
                    f.disputed += 1;
                    break;
                }
            }
        }
        f.executions += outputs.len() as u64;
        f.wrong_runs += outputs.iter().filter(|&&o| o != 0).count() as u64;
    }
    f
}

/// Spot checks: figures over the task stream.
#[derive(Default)]
struct SpotFigures {
    executions: u64,
    /// Over the second half of the stream (nodes have a record by then).
    late_executions: u64,
    late_tasks: u64,
    /// The same, for tasks whose first node is honest.
    late_honest_executions: u64,
    late_honest_tasks: u64,
    wrong_delivered: u64,
    wrong_caught: u64,
    /// Per cheater: its tasks (as the first node) until it was first
    /// marked, if it was.
    marked_after: Vec<Option<u64>>,
    honest_marked: u64,
}

fn spot_checks(s: &Setup, tasks: usize, rng: &mut Rng) -> SpotFigures {
    let rates = Rates {
        rate: s.rate,
        floor: s.floor,
        ceiling: s.ceiling,
    };
    let mut net = Network::new(s, rng);
    let n = net.owner.len();
    let mut agreed = vec![0u64; n];
    let mut done = vec![0u64; n];
    let mut marked = vec![None::<u64>; n];
    let mut f = SpotFigures::default();
    for t in 0..tasks {
        let first = rng.below(n);
        done[first] += 1;
        let mut nodes = vec![first];
        let mut outputs = vec![net.run(first, rng)];
        let wrong = outputs[0] != 0;
        f.wrong_delivered += wrong as u64;
        if rng.unit() < spot_check::rate(agreed[first], &rates) {
            let checker = net.other_owner(&nodes, rng);
            nodes.push(checker);
            outputs.push(net.run(checker, rng));
            let verdict = loop {
                match judge(&reports(&outputs), 2, 3) {
                    Verdict::MoreReplicas => {
                        let third = net.other_owner(&nodes, rng);
                        nodes.push(third);
                        outputs.push(net.run(third, rng));
                    }
                    v => break v,
                }
            };
            if let Verdict::Agreed {
                agreeing, minority, ..
            } = &verdict
            {
                for &i in agreeing {
                    agreed[nodes[i]] += 1;
                }
                for &i in minority {
                    let node = nodes[i];
                    agreed[node] = 0;
                    if marked[node].is_none() {
                        marked[node] = Some(done[node]);
                    }
                }
                if wrong && minority.contains(&0) {
                    f.wrong_caught += 1;
                }
            } else if wrong {
                // Disputed: the requester is told the result is in doubt.
                f.wrong_caught += 1;
            }
        }
        f.executions += outputs.len() as u64;
        if t >= tasks / 2 {
            f.late_executions += outputs.len() as u64;
            f.late_tasks += 1;
            if !net.cheater[first] {
                f.late_honest_executions += outputs.len() as u64;
                f.late_honest_tasks += 1;
            }
        }
    }
    for (cheater, marked) in net.cheater.iter().zip(marked) {
        if *cheater {
            f.marked_after.push(marked);
        } else if marked.is_some() {
            f.honest_marked += 1;
        }
    }
    f
}

/// Runs both policies on the same network shape and prints the figures.
pub fn run(s: Setup) -> anyhow::Result<()> {
    anyhow::ensure!(
        s.nodes >= 3 && s.nodes / s.nodes_per_owner.max(1) >= 3,
        "verification needs at least three owners"
    );
    let tasks = s.nodes * s.tasks_per_node;
    let cheaters = (s.nodes as f64 * s.cheaters).round() as usize;
    println!(
        "verify: {} nodes of {} owners, {cheaters} cheating on {:.0} % of their runs{}; {tasks} deterministic tasks",
        s.nodes,
        s.nodes.div_ceil(s.nodes_per_owner.max(1)),
        s.wrong * 100.0,
        if s.collude { " (colluding)" } else { "" }
    );
    let p = require_proof(&s, tasks, &mut Rng(s.seed));
    let caught = p.wrong_runs - p.wrong_accepted;
    println!(
        "require_proof: {:.3} executions/task; {} wrong runs, {} outvoted or disputed ({:.2} %), {} accepted; {} task(s) disputed",
        p.executions as f64 / tasks as f64,
        p.wrong_runs,
        caught,
        100.0 * caught as f64 / p.wrong_runs.max(1) as f64,
        p.wrong_accepted,
        p.disputed
    );
    let f = spot_checks(&s, tasks, &mut Rng(s.seed));
    let mut after: Vec<u64> = f.marked_after.iter().flatten().copied().collect();
    after.sort_unstable();
    let within_50 = after.iter().filter(|&&k| k <= 50).count();
    let pct = |k: usize| {
        after
            .get((after.len().max(1) - 1) * k / 100)
            .copied()
            .unwrap_or(0)
    };
    let late = f.late_executions as f64 / f.late_tasks.max(1) as f64;
    let late_honest = f.late_honest_executions as f64 / f.late_honest_tasks.max(1) as f64;
    println!(
        "spot checks (rate {} at 20 agreements, floor {}, ceiling {}): {:.3} executions/task overall; \
         over the second half (nodes with a record) {late:.3}, {late_honest:.3} for honest nodes' tasks",
        s.rate,
        s.floor,
        s.ceiling,
        f.executions as f64 / tasks as f64,
    );
    println!(
        "spot checks: {} wrong results delivered, {} caught ({:.2} %)",
        f.wrong_delivered,
        f.wrong_caught,
        100.0 * f.wrong_caught as f64 / f.wrong_delivered.max(1) as f64
    );
    println!(
        "spot checks: {}/{} cheaters marked, {within_50} within 50 of their tasks; marked after p50 {} / p90 {} / max {} tasks; {} honest node(s) marked",
        after.len(),
        f.marked_after.len(),
        pct(50),
        pct(90),
        after.last().copied().unwrap_or(0),
        f.honest_marked
    );
    println!(
        "targets: require_proof catches every wrong run a majority can: {}; spot checks ≤ 1.2 executions/task with a record: {}; every cheater marked within 50 tasks: {}",
        if s.collude || p.wrong_accepted == 0 { "yes" } else { "NO" },
        if late_honest <= 1.2 { "yes" } else { "NO" },
        if within_50 == f.marked_after.len() { "yes" } else { "NO" },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Setup {
        Setup {
            nodes: 200,
            nodes_per_owner: 2,
            cheaters: 0.1,
            wrong: 0.2,
            tasks_per_node: 60,
            collude: false,
            rate: 0.3,
            floor: 0.05,
            ceiling: 1.0,
            max_replicas: 5,
            seed: 3,
        }
    }

    #[test]
    fn independent_wrong_outputs_never_win_a_majority() {
        let s = small();
        let f = require_proof(&s, 5_000, &mut Rng(1));
        assert!(f.wrong_runs > 0);
        assert_eq!(f.wrong_accepted, 0);
        assert!(f.executions >= 10_000, "two runs per task at least");
    }

    #[test]
    fn spot_checks_catch_cheaters_and_never_mark_an_honest_node() {
        let s = small();
        let f = spot_checks(&s, s.nodes * s.tasks_per_node, &mut Rng(2));
        assert_eq!(f.honest_marked, 0);
        assert!(f.marked_after.iter().filter(|m| m.is_some()).count() >= 18);
        assert!(f.wrong_caught > 0 && f.wrong_caught <= f.wrong_delivered);
    }
}
