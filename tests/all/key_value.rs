//! `fermyon:spin/key-value`: set/get/list/delete, grants, persistence.

use greenmesh_tests::Start;

#[tokio::test]
async fn set_get_list_delete_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::new("store.toml", dir.path());
    let app = start.start().await.unwrap();
    assert_eq!(
        app.request("PUT", "/kv/default/a", "one")
            .await
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        app.request("PUT", "/kv/default/b", "two")
            .await
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        app.request("PUT", "/kv/default/a", "uno")
            .await
            .unwrap()
            .status,
        204
    );
    assert_eq!(app.get("/kv/default/a").await.text(), "uno");
    assert_eq!(
        app.get("/kv/default").await.json(),
        serde_json::json!(["a", "b"])
    );
    assert_eq!(
        app.request("DELETE", "/kv/default/b", "")
            .await
            .unwrap()
            .status,
        204
    );
    assert_eq!(app.get("/kv/default/b").await.status, 404);
    app.stop().await;

    let app = start.start().await.unwrap();
    assert_eq!(app.get("/kv/default/a").await.text(), "uno");
    app.stop().await;
}

#[tokio::test]
async fn ungranted_store_is_access_denied() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("store.toml", dir.path()).start().await.unwrap();
    let r = app.get("/nogrant/kv/default/a").await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, serde_json::json!("access-denied"))
    );
    let r = app.get("/kv/cache/a").await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, serde_json::json!("access-denied"))
    );
    app.stop().await;
}
