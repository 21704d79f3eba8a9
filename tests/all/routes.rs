//! Route precedence and the `spin-*` headers, as Spin defines them.

use greenmesh_tests::Start;

#[tokio::test]
async fn exact_beats_param_beats_wildcard() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("routes.toml", dir.path())
        .env("SPIN_VARIABLE_API_KEY", "k")
        .start()
        .await
        .unwrap();

    let me = app.get("/users/me").await.json();
    assert_eq!(me["who"], "users-me");
    assert_eq!(me["headers"]["spin-matched-route"], "/users/me");

    let one = app.get("/users/42").await.json();
    assert_eq!(one["who"], "users-one");
    assert_eq!(one["headers"]["spin-path-match-id"], "42");
    assert_eq!(one["headers"]["spin-component-route"], "/users/:id");

    let any = app.get("/users/42/cart").await.json();
    assert_eq!(any["who"], "users-any");
    assert_eq!(any["headers"]["spin-path-info"], "/42/cart");
    assert_eq!(any["headers"]["spin-component-route"], "/users");
    assert!(any["headers"]["spin-full-url"]
        .as_str()
        .unwrap()
        .ends_with("/users/42/cart"));

    let other = app.get("/elsewhere/deep").await.json();
    assert_eq!(other["who"], "fallback");
    assert_eq!(other["headers"]["spin-path-info"], "/elsewhere/deep");

    let teapot = app.get("/static").await;
    assert_eq!((teapot.status, teapot.text().as_str()), (418, "teapot"));
    app.stop().await;
}

#[tokio::test]
async fn unmatched_path_is_a_json_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("compose.toml", dir.path())
        .start()
        .await
        .unwrap();
    let reply = app.get("/nothing/here").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"], "no route matches /nothing/here");
    app.stop().await;
}
