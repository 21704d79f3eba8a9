//! The coordinator as most end-to-end tests use it: the repository's
//! `spin.toml` served in-process on loopback with a movable clock, users,
//! test nodes on the same clock, and the calls tests make over and over.

use crate::node::{NodeOptions, TestNode};
use crate::{Reply, Start, TestApp};
use greenmesh_host::clock::VirtualClock;
use serde_json::{json, Value};
use std::path::Path;

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// A running coordinator with its state folder and clock.
pub struct Net {
    pub app: TestApp,
    pub clock: VirtualClock,
    start: Start,
    _dir: tempfile::TempDir,
}

impl Net {
    /// The repository's coordinator with `SPIN_VARIABLE_*` settings `env`.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, Start::coordinator).await
    }

    /// Any app `start` makes for a state folder, with settings `env`.
    pub async fn start_with(env: &[(&str, &str)], start: impl FnOnce(&Path) -> Start) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = VirtualClock::new();
        let mut s = start(dir.path());
        for (k, v) in env {
            s = s.env(k, v);
        }
        s.clock = clock.clone();
        let app = s.start().await.unwrap();
        Self {
            app,
            clock,
            start: s,
            _dir: dir,
        }
    }

    /// Stops serving and starts again on the same state (and clock), with
    /// `change` applied to how it starts (e.g. another manifest).
    pub async fn restart(self, change: impl FnOnce(Start) -> Start) -> Self {
        let Self {
            app,
            clock,
            start,
            _dir,
        } = self;
        app.stop().await;
        let start = change(start);
        let app = start.start().await.unwrap();
        Self {
            app,
            clock,
            start,
            _dir,
        }
    }

    /// Restarts on the same state with the repository's own `spin.toml`
    /// (after a test ran it with a changed manifest).
    pub async fn restart_as_shipped(self) -> Self {
        self.restart(|s| Start::at(crate::tests_dir().join("../spin.toml"), &s.state_dir))
            .await
    }

    /// Stops serving (and waits for the server).
    pub async fn stop(self) {
        self.app.stop().await;
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// A JSON call as the user with `token` (no body when `body` is null).
    pub async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> Reply {
        crate::call_as(self.app.addr, token, method, path, body).await
    }

    /// A public GET, as JSON.
    pub async fn get(&self, path: &str) -> Value {
        let r = self.app.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// Registers a user.
    pub async fn user(&self, name: &str) -> User {
        let r = self
            .call("", "POST", "/api/v1/users", json!({ "name": name }))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let v = r.json();
        User {
            id: v["id"].as_str().unwrap().into(),
            token: v["token"].as_str().unwrap().into(),
        }
    }

    /// Registers a test node of `owner` (key from `seed`) offering
    /// `capabilities` as `(name, price)`, stamping requests with the net's clock.
    pub async fn node(&self, owner: &User, seed: u8, capabilities: &[(&str, f64)]) -> TestNode {
        let options = NodeOptions {
            clock: self.clock.clone(),
            ..Default::default()
        };
        TestNode::register_with(self.app.addr, &owner.token, seed, capabilities, options)
            .await
            .unwrap()
    }

    /// Submits a task; it must be accepted (`201`).
    pub async fn submit(&self, user: &User, body: Value) -> Value {
        let r = self.call(&user.token, "POST", "/api/v1/tasks", body).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// The task `id` as its owner sees it.
    pub async fn task(&self, user: &User, id: &str) -> Value {
        let r = self
            .call(
                &user.token,
                "GET",
                &format!("/api/v1/tasks/{id}"),
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Every event of task `id` (oldest first).
    pub async fn events_of(&self, id: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/events?task_id={id}&limit=1000"))
            .await["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// How many events of task `id` are of `event_type`.
    pub async fn count_events(&self, id: &str, event_type: &str) -> usize {
        self.events_of(id)
            .await
            .iter()
            .filter(|e| e["event_type"] == event_type)
            .count()
    }
}

/// A task's `id`.
pub fn id(task: &Value) -> String {
    task["id"].as_str().unwrap().to_string()
}
