//! `greenmesh task watch ID` and `task submit --wait`: a task's state
//! changes as they happen (from its events), with the elapsed time. On a
//! terminal, a spinner shows the current state and the time (indicatif);
//! otherwise one plain line per change; with `--json`, one JSON event per
//! line and the final task.

use super::{table, Connection};
use greenmesh_client::Client;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// States a task does not leave.
const FINAL: &[&str] = &["completed", "failed", "cancelled"];

/// How the changes are shown.
enum Display {
    Spinner(ProgressBar),
    Lines,
    Json,
}

impl Display {
    fn for_conn(conn: &Connection) -> Display {
        if conn.json {
            Display::Json
        } else if std::io::stdout().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Display::Spinner(bar)
        } else {
            Display::Lines
        }
    }

    fn change(&self, started: Instant, event: &Value) {
        let line = format!(
            "[{:>6.1} s] {}",
            started.elapsed().as_secs_f64(),
            describe(event)
        );
        match self {
            Display::Spinner(bar) => {
                bar.println(line);
                bar.set_message(event["event_type"].as_str().unwrap_or("").replace('_', " "));
            }
            Display::Lines => println!("{line}"),
            Display::Json => println!("{event}"),
        }
    }

    fn done(&self, conn: &Connection, task: &Value) {
        match self {
            Display::Spinner(bar) => {
                bar.finish_and_clear();
                println!("{}", table::task(task));
            }
            Display::Lines => println!("{}", table::task(task)),
            Display::Json => println!("{task}"),
        }
        let _ = conn;
    }
}

/// One event in words.
pub fn describe(e: &Value) -> String {
    let kind = e["event_type"].as_str().unwrap_or("event");
    let node = e["node_id"]
        .as_str()
        .map(|n| format!(" on {n}"))
        .unwrap_or_default();
    let data = &e["data"];
    let detail = ["reason", "status", "importance", "why"]
        .iter()
        .find_map(|k| data[*k].as_str().map(|v| format!(": {v}")))
        .unwrap_or_default();
    format!("{}{node}{detail}", kind.replace('_', " "))
}

/// Task `id`'s events after event `after`, oldest first.
async fn events_after(
    client: &Client,
    token: &str,
    id: &str,
    after: i64,
) -> anyhow::Result<Vec<Value>> {
    let v = client
        .call(
            "GET",
            &format!("/api/v1/events?task_id={id}&after={after}&limit=100"),
            Some(token),
            None,
        )
        .await?;
    Ok(v["events"].as_array().cloned().unwrap_or_default())
}

/// Follows task `id` until it ends (or `limit` passes), showing each change.
pub async fn follow(
    conn: &Connection,
    client: &Client,
    token: &str,
    id: &str,
    limit: Duration,
) -> anyhow::Result<Value> {
    let display = Display::for_conn(conn);
    let started = Instant::now();
    let mut after = 0i64;
    // The kinds of event shown so far.
    let mut seen = std::collections::HashSet::new();
    loop {
        for e in events_after(client, token, id, after).await? {
            after = after.max(e["id"].as_i64().unwrap_or(after));
            seen.insert(e["event_type"].as_str().unwrap_or("").to_string());
            display.change(started, &e);
        }
        // A short long-poll: answered at once when the task ends.
        let task = client
            .request("GET", &format!("/api/v1/tasks/{id}?wait=1"))
            .bearer(token)
            .timeout(Duration::from_secs(conn.timeout.max(1) + 1))
            .send()
            .await?
            .into_result()?;
        let status = task["status"].as_str().unwrap_or("");
        if FINAL.contains(&status) || started.elapsed() >= limit {
            // The last changes before the end. A task's end is committed
            // before its event is recorded (its follow-up effects settle
            // just after, ADR 0015): wait a little for that event.
            let ended = format!("task_{status}");
            let settle_by = Instant::now() + Duration::from_secs(3);
            loop {
                for e in events_after(client, token, id, after).await? {
                    after = after.max(e["id"].as_i64().unwrap_or(after));
                    seen.insert(e["event_type"].as_str().unwrap_or("").to_string());
                    display.change(started, &e);
                }
                if seen.contains(&ended) || !FINAL.contains(&status) || Instant::now() >= settle_by
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            display.done(conn, &task);
            return Ok(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_words() {
        let e = serde_json::json!({ "event_type": "task_leased", "node_id": "node-1", "data": {} });
        assert_eq!(describe(&e), "task leased on node-1");
        let e =
            serde_json::json!({ "event_type": "task_failed", "data": { "reason": "time limit" } });
        assert_eq!(describe(&e), "task failed: time limit");
    }
}
