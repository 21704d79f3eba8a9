//! Component dependencies composed at load time, with Spin's inheritance rules.

use greenmesh_tests::Start;

#[tokio::test]
async fn dependency_answers_and_inherits_only_what_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("compose.toml", dir.path())
        .start()
        .await
        .unwrap();

    // Inherit on: the dependency reads the parent's variables and store.
    let inherit = app.get("/inherit").await;
    assert_eq!(inherit.status, 200);
    assert_eq!(inherit.text(), "hello mesh; greeting=hi; kv=ok");

    // Inherit off (default): both capabilities refused, as errors not traps.
    let deny = app.get("/deny").await.text();
    assert!(
        deny.starts_with("hello mesh; greeting=denied(Error::Undefined("),
        "{deny}"
    );
    assert!(deny.ends_with("kv=denied(Error::AccessDenied)"), "{deny}");

    // A list inherits just those capabilities.
    let partial = app.get("/partial").await.text();
    assert_eq!(
        partial,
        "hello mesh; greeting=hi; kv=denied(Error::AccessDenied)"
    );
    app.stop().await;
}
