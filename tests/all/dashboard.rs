//! The web dashboard (issue 22) in a real browser: headless Chromium
//! (Debian's `chromium`, which `.ci/run` installs) driven over the DevTools
//! protocol against the coordinator served from the repository's
//! `spin.toml`, its `ui` component included. Every console error, uncaught
//! exception and CSP violation fails the test.
//!
//! Screenshots go to `target/screenshots/`; with
//! `GREENMESH_UPDATE_SCREENSHOTS=1` they replace `docs/img/dashboard-*.png`.

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{
    EnableParams as LogEnable, EventEntryAdded, LogEntryLevel,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt;
use greenmesh_tests::node::{register_user, TestNode};
use greenmesh_tests::{call_as, Start};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Debian's Chromium (or `GREENMESH_CHROMIUM`); `None` skips, except in CI.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("GREENMESH_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no Chromium in CI: .ci/run installs Debian's chromium"
        );
        greenmesh_tests::skip("no Chromium (apt-get install chromium)");
    }
    found
}

/// A headless Chromium and what its pages reported as errors.
struct Chrome {
    browser: Browser,
    driver: tokio::task::JoinHandle<()>,
    errors: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

impl Chrome {
    async fn launch(exe: PathBuf) -> Chrome {
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(exe)
            .new_headless_mode()
            // Tests run as root in a container: Chromium's sandbox needs
            // namespaces that are not there.
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1280, 900)
            .viewport(None)
            .launch_timeout(Duration::from_secs(60))
            .arg("--disable-gpu")
            .arg("--disable-dev-shm-usage")
            .build()
            .unwrap();
        let (browser, mut handler) = Browser::launch(config).await.expect("launching Chromium");
        let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chrome {
            browser,
            driver,
            errors: Arc::default(),
            _profile: profile,
        }
    }

    /// A new tab whose console errors, exceptions and CSP reports are kept.
    async fn page(&self) -> Page {
        let page = self.browser.new_page("about:blank").await.unwrap();
        page.execute(LogEnable::default()).await.unwrap();
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .unwrap();
        let mut thrown = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
        let errors = self.errors.clone();
        tokio::spawn(async move {
            loop {
                let error = tokio::select! {
                    Some(e) = console.next() => (e.r#type == ConsoleApiCalledType::Error)
                        .then(|| format!("console.error: {:?}", e.args.iter().map(|a| a.value.clone()).collect::<Vec<_>>())),
                    Some(e) = thrown.next() => Some(format!("exception: {:?}", e.exception_details)),
                    Some(e) = log.next() => (e.entry.level == LogEntryLevel::Error)
                        .then(|| format!("{:?}: {}", e.entry.source, e.entry.text)),
                    else => break,
                };
                if let Some(error) = error {
                    errors.lock().unwrap().push(error);
                }
            }
        });
        page
    }

    /// Closes the browser; fails the test if any page reported an error
    /// (a console error, an uncaught exception, a CSP violation, a 404).
    async fn close_without_errors(mut self) {
        let errors = self.errors.lock().unwrap().clone();
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.driver.abort();
        assert!(
            errors.is_empty(),
            "the browser reported errors: {errors:#?}"
        );
    }
}

/// Evaluates `js` until it is truthy (15 s at most) and answers its value.
async fn wait_for(page: &Page, js: &str, what: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let v: Value = page
            .evaluate(js)
            .await
            .ok()
            .and_then(|r| r.into_value().ok())
            .unwrap_or(Value::Null);
        let truthy = match &v {
            Value::Null | Value::Bool(false) => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            let body: Value = page
                .evaluate("document.body.innerText")
                .await
                .ok()
                .and_then(|r| r.into_value().ok())
                .unwrap_or_default();
            panic!("timed out waiting for {what} ({js}); the page reads:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the first element matching `selector`.
fn text_of(selector: &str) -> String {
    format!("(document.querySelector({selector:?}) || {{}}).innerText || ''")
}

/// `GET path` as the user with `token`, the JSON answer.
async fn api_get(app: &greenmesh_tests::TestApp, token: &str, path: &str) -> Value {
    call_as(app.addr, token, "GET", path, Value::Null)
        .await
        .json()
}

/// Saves a full-page screenshot as `name` (see the module docs).
async fn screenshot(page: &Page, name: &str) {
    let root = greenmesh_tests::tests_dir().join("..");
    let dir = if std::env::var_os("GREENMESH_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/img")
    } else {
        root.join("target/screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        dir.join(format!("dashboard-{name}.png")),
    )
    .await
    .unwrap();
}

/// Opens the dashboard at `base` and signs in with `token` by keyboard.
async fn sign_in(page: &Page, base: &str, token: &str, name: &str) {
    page.goto(format!("{base}/")).await.unwrap();
    wait_for(page, "document.querySelector('#token')", "the sign-in form").await;
    page.find_element("#token")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(token)
        .await
        .unwrap()
        .press_key("Enter")
        .await
        .unwrap();
    let who = wait_for(page, &text_of("#signed-in"), "signing in").await;
    assert!(who.as_str().unwrap().contains(name), "{who}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_see_the_network_live_and_the_impact_totals_equal_the_api() {
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let token = register_user(app.addr, "alice").await.unwrap();
    let node = TestNode::register(app.addr, &token, 31, &[("image-filter", 1.25)])
        .await
        .unwrap();
    // One task run to completion, so the impact page has figures.
    greenmesh_tests::submit_image_filter(app.addr, &token).await;
    node.complete_next("done").await;

    // The page carries its policy (the browser enforces it below: a
    // violation is a console error).
    let page_reply = greenmesh_tests::send(app.addr, "GET", "/ui/", Default::default())
        .await
        .unwrap();
    let csp = page_reply
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );

    let chrome = Chrome::launch(exe).await;
    let page = chrome.page().await;
    let base = format!("http://{}", app.addr);
    // `/` redirects to the dashboard, which opens on the network; signing
    // in is done by keyboard (type the token, press Enter).
    sign_in(&page, &base, &token, "alice").await;
    assert_eq!(
        page.evaluate("location.pathname")
            .await
            .unwrap()
            .into_value::<String>()
            .unwrap(),
        "/ui/"
    );
    // The token lives in sessionStorage (gone with the tab), nowhere else.
    let stored: Value = page
        .evaluate(
            "[sessionStorage.getItem('greenmesh.token'), localStorage.length, document.cookie]",
        )
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(stored, json!([token, 0, ""]));

    // The network: the node, its offer with its price, its reputation.
    let row = wait_for(
        &page,
        &text_of(&format!("#nodes tr[data-node='{}']", node.id)),
        "the node's row",
    )
    .await;
    let row = row.as_str().unwrap();
    assert!(
        row.contains("image-filter 1.25") && row.contains("online"),
        "{row}"
    );
    // Filtering hides what does not match, and shows it again.
    page.find_element("#node-filter")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str("no-such-capability")
        .await
        .unwrap();
    wait_for(
        &page,
        "document.querySelectorAll('#nodes tbody tr').length === 0",
        "the filter",
    )
    .await;
    page.evaluate("document.querySelector('#node-filter').value = ''")
        .await
        .unwrap();
    page.find_element("#node-filter")
        .await
        .unwrap()
        .type_str("image")
        .await
        .unwrap();
    wait_for(
        &page,
        "document.querySelectorAll('#nodes tbody tr').length === 1",
        "the filter",
    )
    .await;
    screenshot(&page, "network").await;

    // Impact: the page's figures are the API's.
    page.evaluate("location.hash = '#/impact'").await.unwrap();
    let impact = api_get(&app, &token, "/api/v1/users/me/impact").await;
    let ledger = api_get(&app, &token, "/api/v1/ledger").await;
    assert_eq!(impact["tasks_executed"], 1, "{impact}");
    let executed = wait_for(
        &page,
        &text_of("#impact-all [data-field=tasks_executed]"),
        "the impact figures",
    )
    .await;
    assert_eq!(executed, json!(impact["tasks_executed"].to_string()));
    let runs = wait_for(
        &page,
        &text_of("#ledger-totals [data-field=runs]"),
        "the ledger totals",
    )
    .await;
    assert_eq!(runs, json!(ledger["totals"]["runs"].to_string()));
    // Grams as the page prints them (two decimals under 10 g).
    let emitted = impact["carbon_emitted_g"].as_f64().unwrap();
    let shown = wait_for(
        &page,
        &text_of("#impact-all [data-field=carbon_emitted_g]"),
        "emitted",
    )
    .await;
    assert_eq!(shown, json!(format!("{emitted:.2} g")), "{impact}");
    // The signal behind every number is stated.
    let signal = wait_for(&page, &text_of("#signal"), "the signal").await;
    assert!(
        signal.as_str().unwrap().contains("location-based"),
        "{signal}"
    );
    // One completed run: the three charts are drawn (uPlot's canvases):
    // grams against the baseline, clean and dirty Wh per day, deferral.
    wait_for(
        &page,
        "['#chart-grams', '#chart-energy', '#chart-deferral']
           .every((c) => document.querySelector(c + ' canvas'))",
        "the charts",
    )
    .await;
    screenshot(&page, "impact").await;

    // My nodes: the node alice operates, the run it served, what it earned.
    page.evaluate("location.hash = '#/nodes'").await.unwrap();
    let mine = api_get(&app, &token, "/api/v1/users/me/nodes").await;
    assert_eq!(mine["totals"]["runs"], 1, "{mine}");
    let earned = mine["totals"]["credits_earned"].as_f64().unwrap();
    assert!(earned > 0.0, "{mine}");
    let runs = wait_for(
        &page,
        &text_of("#nodes-totals [data-field=runs]"),
        "my nodes",
    )
    .await;
    assert_eq!(runs, json!("1"));
    let shown = wait_for(
        &page,
        &text_of(&format!(
            ".node-card[data-node='{}'] [data-field=credits_earned]",
            node.id
        )),
        "the node's earnings",
    )
    .await;
    assert_eq!(shown, json!(format!("{earned:.2}")), "{mine}");
    screenshot(&page, "nodes").await;

    // A phone-width screen: nothing wider than the screen, and the wide
    // table turned into cards (label: value lines) that need no sideways
    // scrolling either.
    page.execute(SetDeviceMetricsOverrideParams::new(390, 844, 2.0, true))
        .await
        .unwrap();
    page.evaluate("location.hash = '#/network'").await.unwrap();
    wait_for(
        &page,
        "document.querySelector('#nodes')",
        "the network at phone width",
    )
    .await;
    let overflow: Value = page
        .evaluate("document.documentElement.scrollWidth - window.innerWidth")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert!(
        overflow.as_f64().unwrap() <= 0.0,
        "the page is {overflow} px wider than the phone"
    );
    let card: Value = page
        .evaluate(
            "(() => { const wrap = document.querySelector('#nodes').parentElement;
                      const row = document.querySelector('#nodes tbody tr');
                      return [getComputedStyle(row).display, wrap.scrollWidth - wrap.clientWidth,
                              getComputedStyle(row.querySelector('td'), '::before').content]; })()",
        )
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(card, json!(["block", 0, "\"Node\""]), "the row as a card");
    screenshot(&page, "network-phone").await;

    chrome.close_without_errors().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_named_like_a_script_is_shown_as_text() {
    use greenmesh_tests::node::NodeOptions;
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let mallory = register_user(app.addr, "mallory").await.unwrap();
    // A stranger's node names itself as markup that would run if the page
    // put it in as HTML (and an image that would 404: a console error).
    let name =
        r#"<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>"#;
    let options = NodeOptions {
        name: Some(name.into()),
        ..Default::default()
    };
    let node = TestNode::register_with(app.addr, &mallory, 41, &[("image-filter", 1.0)], options)
        .await
        .unwrap();
    let alice = register_user(app.addr, "alice").await.unwrap();

    let chrome = Chrome::launch(exe).await;
    let page = chrome.page().await;
    sign_in(&page, &format!("http://{}", app.addr), &alice, "alice").await;
    let row = wait_for(
        &page,
        &text_of(&format!("#nodes tr[data-node='{}']", node.id)),
        "the node's row",
    )
    .await;
    // The name reads as the characters it is, and made no element.
    assert!(row.as_str().unwrap().contains(name), "{row}");
    let made: Value = page
        .evaluate("[document.querySelectorAll('#nodes img, #nodes script').length, document.title]")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(made[0], 0, "{made}");
    assert_ne!(made[1], "pwned", "{made}");
    chrome.close_without_errors().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_a_ballot_and_see_the_tally_change_and_the_quota_as_the_api_says() {
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let alice = register_user(app.addr, "alice").await.unwrap();
    let bob = register_user(app.addr, "bob").await.unwrap();
    // Bob's task opens a poll; alice may vote on it (not on her own).
    let task = call_as(
        app.addr,
        &bob,
        "POST",
        "/api/v1/tasks",
        json!({ "task_type": "image-filter", "max_price": 50.0, "name": "bob's thumbnails",
                "inputs": { "image": "aGVsbG8=", "filter": "grayscale" } }),
    )
    .await;
    assert_eq!(task.status, 201, "{}", task.text());
    let task_id = task.json()["id"].as_str().unwrap().to_string();

    let chrome = Chrome::launch(exe).await;
    let page = chrome.page().await;
    sign_in(&page, &format!("http://{}", app.addr), &alice, "alice").await;
    page.evaluate("location.hash = '#/governance'")
        .await
        .unwrap();
    let poll = format!("#polls li[data-task='{task_id}']");
    let shown = wait_for(&page, &text_of(&poll), "bob's poll").await;
    assert!(
        shown.as_str().unwrap().contains("bob's thumbnails"),
        "{shown}"
    );
    let ballots = |page: &Page| {
        let js = format!("document.querySelector(\"{poll} .tally\").dataset.ballots");
        let page = page.clone();
        async move {
            page.evaluate(js.as_str())
                .await
                .unwrap()
                .into_value::<String>()
                .unwrap()
        }
    };
    assert_eq!(ballots(&page).await, "0");
    // A ballot for "high": the tally shows it, as the API does.
    page.find_element(format!("{poll} button[data-level=high]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &page,
        &format!("document.querySelector(\"{poll} .tally\").dataset.ballots === '1'"),
        "the tally to count the ballot",
    )
    .await;
    let tally = wait_for(&page, &text_of(&format!("{poll} .tally")), "the tally").await;
    assert!(tally.as_str().unwrap().contains("high"), "{tally}");
    let votes = api_get(&app, &alice, &format!("/api/v1/tasks/{task_id}/votes")).await;
    assert_eq!(votes["poll"]["outcome"]["ballots"], 1, "{votes}");
    // Changing the ballot replaces it: still one ballot, now "critical".
    page.find_element(format!("{poll} button[data-level=critical]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &page,
        &format!(
            "(document.querySelector(\"{poll} .tally\").innerText || '').includes('critical')"
        ),
        "the changed ballot",
    )
    .await;
    assert_eq!(ballots(&page).await, "1");

    // The quota card is the API's.
    let quota = api_get(&app, &bob, "/api/v1/users/me/quota").await;
    let mine = api_get(&app, &alice, "/api/v1/users/me/quota").await;
    assert_eq!(quota["used_today"], 1, "{quota}");
    let tier = wait_for(&page, &text_of("#quota [data-field=tier]"), "the quota").await;
    assert_eq!(tier, mine["tier"]);
    let used = wait_for(
        &page,
        &text_of("#quota [data-field=used_today]"),
        "the quota",
    )
    .await;
    assert!(
        used.as_str()
            .unwrap()
            .starts_with(&mine["used_today"].to_string()),
        "{used} vs {mine}"
    );
    screenshot(&page, "governance").await;

    chrome.close_without_errors().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_an_image_filter_task_from_its_template_and_see_the_output_image() {
    use greenmesh_tests::provider::{kernel, wait_for_node, ProviderSpec};
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let token = register_user(app.addr, "alice").await.unwrap();
    // A real node running the real image-filter kernel.
    let kernels = dir.path().join("kernels");
    std::fs::create_dir_all(&kernels).unwrap();
    std::fs::copy(kernel("image-filter"), kernels.join("image-filter.wasm")).unwrap();
    let _provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node")).spawn();
    wait_for_node(app.addr, &["image-filter"], Duration::from_secs(60)).await;
    // A 64×48 picture to upload.
    let picture = dir.path().join("scene.png");
    let png = image_filter::codec::encode_png(&image_filter::testdata::scene(64, 48, 0)).unwrap();
    std::fs::write(&picture, &png).unwrap();

    let chrome = Chrome::launch(exe).await;
    let page = chrome.page().await;
    sign_in(&page, &format!("http://{}", app.addr), &token, "alice").await;
    page.evaluate("location.hash = '#/tasks'").await.unwrap();
    wait_for(
        &page,
        "document.querySelector('#template')",
        "the submission form",
    )
    .await;
    // The image-filter template: a picture and a filter.
    give_file(&page, "#f-picture", &picture).await;
    choose(&page, "#f-filter", "sobel").await;
    // The task is followed live until the node's result arrives.
    let id = submit_the_form(&page).await;
    wait_for(
        &page,
        "(document.querySelector('#task-detail') || {dataset: {}}).dataset.status === 'completed'",
        "the task to complete on the node",
    )
    .await;
    let why = wait_for(&page, &text_of("#task-why"), "the decision in words").await;
    assert!(!why.as_str().unwrap().is_empty());
    // The end is committed before its event (ADR 0015): the event log
    // follows within moments.
    let events = wait_for(
        &page,
        &format!(
            "({0}).includes('task completed') && ({0})",
            text_of("#task-events")
        ),
        "the task's completion in its events",
    )
    .await;
    assert!(
        events.as_str().unwrap().contains("task completed"),
        "{events}"
    );
    // The output is shown as the image it is, and is the node's result.
    let shown = wait_for(
        &page,
        "(() => { const i = document.querySelector('img#task-output');
                  return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight, i.src] : null; })()",
        "the output image",
    )
    .await;
    let task = api_get(&app, &token, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(task["status"], "completed", "{task}");
    let output: Value = serde_json::from_str(task["result"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(shown[0], 64);
    assert_eq!(shown[1], 48);
    assert_eq!(
        shown[2].as_str().unwrap(),
        format!(
            "data:image/png;base64,{}",
            output["base64"].as_str().unwrap()
        )
    );
    screenshot(&page, "tasks").await;

    chrome.close_without_errors().await;
    app.stop().await;
}

/// Clicks the element matching `selector`.
async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until both replay charts show `edge` (`from` or `to`) at `value`.
async fn replay_charts_at(page: &Page, edge: &str, value: u64, what: &str) {
    let js = format!(
        "['#chart-replay', '#chart-replay-saved']
           .every((c) => Number(document.querySelector(c).dataset.{edge}) === {value})"
    );
    wait_for(page, &js, what).await;
}

/// Submits the task form by clicking; the id of the task the page follows.
async fn submit_the_form(page: &Page) -> String {
    page.find_element("#submit-task button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let id = wait_for(
        page,
        "(document.querySelector('#task-detail code') || {}).innerText",
        "the task",
    )
    .await;
    id.as_str().unwrap().to_string()
}

/// Picks `value` in the `<select>` matching `selector`, as a person would.
async fn choose(page: &Page, selector: &str, value: &str) {
    page.evaluate(format!(
        "(() => {{ const s = document.querySelector({selector:?}); s.value = {value:?};
                   s.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()"
    ))
    .await
    .unwrap();
}

/// Hands the file at `path` to the file input matching `selector`.
async fn give_file(page: &Page, selector: &str, path: &std::path::Path) {
    use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
    let input = page.find_element(selector).await.unwrap();
    let mut files = SetFileInputFilesParams::new(vec![path.display().to_string()]);
    files.backend_node_id = Some(input.backend_node_id);
    page.execute(files).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_a_federated_model_from_its_template_and_see_each_round_s_metrics() {
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    // Two hospitals, each with half of the breast-cancer rows, on real
    // `greenmesh provide` nodes running the fl-train kernel.
    let lines = crate::federated::breast_cancer_lines();
    let rows: Vec<&str> = lines.lines().skip(1).collect();
    let mut hospitals = Vec::new();
    for h in 0..2 {
        let part: Vec<&str> = rows.iter().skip(h).step_by(2).copied().collect();
        hospitals.push(
            crate::federated::hospital(
                dir.path(),
                app.addr,
                &format!("hospital-{h}"),
                &part,
                "fl-train",
            )
            .await,
        );
    }
    for _ in 0..600 {
        let nodes = greenmesh_tests::send(app.addr, "GET", "/api/v1/nodes", Default::default())
            .await
            .unwrap()
            .json();
        if nodes["nodes"].as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = register_user(app.addr, "researcher").await.unwrap();

    let chrome = Chrome::launch(exe).await;
    let page = chrome.page().await;
    sign_in(&page, &format!("http://{}", app.addr), &token, "researcher").await;
    page.evaluate("location.hash = '#/tasks'").await.unwrap();
    wait_for(&page, "document.querySelector('#template')", "the form").await;
    // The template as it comes: three rounds at ε = 1 on two nodes.
    choose(&page, "#template", "federated").await;
    wait_for(
        &page,
        "document.querySelector('#f-json')",
        "the federated template",
    )
    .await;
    let id = submit_the_form(&page).await;
    // Rounds appear as they close, then the run completes.
    wait_for(
        &page,
        "Number((document.querySelector('#training') || {dataset: {}}).dataset.rounds) >= 1",
        "a closed round",
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let status: Value = page
            .evaluate("(document.querySelector('#task-detail') || {dataset: {}}).dataset.status")
            .await
            .unwrap()
            .into_value()
            .unwrap_or_default();
        if status == "completed" {
            break;
        }
        let logs: Vec<String> = hospitals.iter().map(|h| h.log()).collect();
        assert!(
            status != "failed",
            "the run failed; logs:\n{}",
            logs.join("\n")
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not finish: {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Each round as the API reports it: its members and hold-out accuracy.
    let task = api_get(&app, &token, &format!("/api/v1/tasks/{id}")).await;
    let rounds = task["result"]["rounds"].as_array().unwrap().clone();
    assert_eq!(rounds.len(), 3, "{task}");
    wait_for(
        &page,
        "document.querySelectorAll('#rounds tbody tr').length === 3",
        "the three rounds",
    )
    .await;
    for r in &rounds {
        let shown = wait_for(
            &page,
            &text_of(&format!(
                "#rounds tr[data-round='{}'] [data-field=accuracy]",
                r["round"]
            )),
            "a round's accuracy",
        )
        .await;
        let accuracy = r["holdout_accuracy"].as_f64().unwrap();
        assert_eq!(
            shown,
            json!(format!("{} %", (accuracy * 100.0).round())),
            "{r}"
        );
    }
    // The privacy spent, the chart, and the model to download.
    let privacy = wait_for(&page, &text_of("#privacy"), "the privacy spent").await;
    let spent = task["result"]["privacy"]["epsilon_spent"].as_f64().unwrap();
    assert!(
        privacy
            .as_str()
            .unwrap()
            .contains(&format!("ε {spent:.3} spent of 1")),
        "{privacy} vs {spent}"
    );
    let download: Value = page
        .evaluate(
            "[document.querySelector('#chart-rounds canvas') !== null,
              document.querySelector('#model-download').getAttribute('download'),
              document.querySelector('#model-download').href.startsWith('blob:')]",
        )
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(download, json!([true, "diagnosis.json", true]));
    screenshot(&page, "training").await;

    chrome.close_without_errors().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_a_replay_and_step_through_it_a_week_at_a_time() {
    use greenmesh_bench::simulate::{run, SimulateArgs};
    let Some(exe) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A real replay of ten days of the GB trace, exported for the page.
    let export = dir.path().join("replay.json");
    let args = SimulateArgs {
        traces: vec![greenmesh_tests::tests_dir().join("../data/carbon/gb_ci_2020.csv")],
        sla: "high".into(),
        jobs: 20,
        job_minutes: 60,
        forecast_error: 0.05,
        foresight: "forecast".into(),
        days: Some(10),
        seed: 3,
        step_minutes: 30,
        power_w: 100.0,
        plot: None,
        export: Some(export.clone()),
        manifest: greenmesh_tests::tests_dir().join("../spin.toml"),
    };
    run(args).await.unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    let (from, to) = (doc["from"].as_u64().unwrap(), doc["to"].as_u64().unwrap());
    const WEEK: u64 = 7 * 86_400;
    assert!(
        to - from > WEEK,
        "a replay longer than a week: {from}..{to}"
    );

    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let chrome = Chrome::launch(exe).await;
    let page = chrome.page().await;
    page.goto(format!("http://{}/ui/#/replay", app.addr))
        .await
        .unwrap();
    // Not a replay: said so, nothing drawn.
    let wrong = dir.path().join("not-a-replay.json");
    std::fs::write(&wrong, br#"{"format": "something else"}"#).unwrap();
    wait_for(
        &page,
        "document.querySelector('#replay-file')",
        "the file input",
    )
    .await;
    give_file(&page, "#replay-file", &wrong).await;
    let said = wait_for(&page, &text_of("[role=alert]"), "the error").await;
    assert!(
        said.as_str().unwrap().contains("not a greenmesh replay"),
        "{said}"
    );

    // The view's arithmetic: a week moves inside the span, never past it;
    // a file with uneven series is refused with the reason.
    let checks: Value = page
        .evaluate(
            "(async () => {
               const m = await import('/ui/pages/replay.js');
               const doc = { from: 0, to: 10 * 86400 };
               let refused = '';
               try {
                 m.parseReplay(JSON.stringify({ format: 'greenmesh-replay/1', from: 0, to: 1,
                   intensity: [{ t: [1, 2], g_per_kwh: [1] }], starts: { t: [], g_per_kwh: [] },
                   saved: { t: [], cumulative_g: [] } }));
               } catch (e) { refused = e.message; }
               return [m.shifted(doc, [0, 7 * 86400], -1), m.shifted(doc, [0, 7 * 86400], 1),
                       m.shifted({ from: 0, to: 3 * 86400 }, [0, 7 * 86400], 1), m.firstWeek(doc), refused];
             })()",
        )
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(checks[0], json!([0, 604_800]), "{checks}");
    assert_eq!(checks[1], json!([259_200, 864_000]), "{checks}");
    assert_eq!(checks[2], json!([0, 259_200]), "{checks}");
    assert_eq!(checks[3], json!([0, 604_800]), "{checks}");
    assert!(checks[4].as_str().unwrap().contains("uneven"), "{checks}");

    give_file(&page, "#replay-file", &export).await;
    let view = |page: &Page| {
        let page = page.clone();
        async move {
            page.evaluate(
                "['#replay-range', '#chart-replay', '#chart-replay-saved']
                   .map((s) => document.querySelector(s))
                   .map((e) => [Math.round(Number(e.dataset.from)), Math.round(Number(e.dataset.to))])",
            )
            .await
            .unwrap()
            .into_value::<Vec<[u64; 2]>>()
            .unwrap()
        }
    };
    wait_for(
        &page,
        "document.querySelector('#chart-replay canvas') && document.querySelector('#chart-replay-saved canvas')",
        "the replay's charts",
    )
    .await;
    // Every start is on the chart; the figures are the replay's.
    let starts = wait_for(
        &page,
        "document.querySelector('#replay').dataset.starts",
        "the starts",
    )
    .await;
    assert_eq!(
        starts,
        json!(doc["starts"]["t"].as_array().unwrap().len().to_string())
    );
    let saving = wait_for(
        &page,
        &text_of("#replay-figures [data-field=saving]"),
        "the saving",
    )
    .await;
    let expected = (doc["figures"]["saving"].as_f64().unwrap() * 100.0).round();
    assert_eq!(saving, json!(format!("{expected} %")));
    // It opens on the first week, both charts on it.
    let first = [from, from + WEEK];
    replay_charts_at(&page, "to", first[1], "the first week").await;
    assert_eq!(view(&page).await, vec![first; 3]);
    screenshot(&page, "replay").await;
    // The week after: as far as the span goes, still a week wide.
    click(&page, "#replay-next").await;
    let next_from = (from + WEEK).min(to - WEEK);
    replay_charts_at(&page, "from", next_from, "the week after").await;
    assert_eq!(view(&page).await, vec![[next_from, next_from + WEEK]; 3]);
    // The whole replay (the week after ended where the replay does).
    click(&page, "#replay-all").await;
    replay_charts_at(&page, "from", from, "the whole replay").await;
    assert_eq!(view(&page).await, vec![[from, to]; 3]);
    // Back to one week, then a double-click on a chart: the whole replay.
    click(&page, "#replay-week").await;
    replay_charts_at(&page, "to", first[1], "one week again").await;
    page.evaluate(
        "document.querySelector('#chart-replay-saved .u-over')
           .dispatchEvent(new MouseEvent('dblclick', { bubbles: true, button: 0 }))",
    )
    .await
    .unwrap();
    replay_charts_at(&page, "to", to, "the whole replay on a double-click").await;
    assert_eq!(view(&page).await, vec![[from, to]; 3]);

    chrome.close_without_errors().await;
    app.stop().await;
}
