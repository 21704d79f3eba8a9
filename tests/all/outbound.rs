//! `allowed_outbound_hosts`: an allowed host answers, another is refused.

use greenmesh_tests::Start;
use http_body_util::Full;
use std::convert::Infallible;

/// A loopback HTTP server answering every request with `upstream ok`.
async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(bytes::Bytes::from(
                        "upstream ok",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn allowed_host_answers_and_other_host_is_refused() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("outbound.toml", dir.path())
        .start()
        .await
        .unwrap();

    let ok = app
        .get(&format!("/?url=http://127.0.0.1:{}/", up.port()))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["body"], "upstream ok");

    // Same server, but `localhost` is not in allowed_outbound_hosts.
    let refused = app
        .get(&format!("/?url=http://localhost:{}/", up.port()))
        .await;
    assert_eq!(refused.status, 502, "{}", refused.text());
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{}",
        refused.text()
    );
    app.stop().await;
}
