//! A Postgres server for benchmarks that compare the backends: a fresh
//! database per configuration, the settings that point replicas at it,
//! and the count of transactions it has run.

/// One configuration of a backend comparison.
pub struct Configuration {
    pub label: String,
    /// The Postgres database (`None`: the embedded SQLite file).
    pub database: Option<String>,
    pub replicas: usize,
}

/// What a backend comparison runs, in order: the embedded SQLite file (one
/// replica), then, on `server` when there is one, Postgres with one replica
/// and with `replicas` (each over a fresh database named after `bench`).
pub async fn configurations(
    server: Option<&str>,
    replicas: usize,
    bench: &str,
) -> anyhow::Result<Vec<Configuration>> {
    let mut all = vec![Configuration {
        label: "sqlite, 1 replica".into(),
        database: None,
        replicas: 1,
    }];
    let Some(server) = server else {
        println!("(no --postgres: the Postgres rows are left out)");
        return Ok(all);
    };
    let mut counts = vec![1];
    if replicas > 1 {
        counts.push(replicas);
    }
    for n in counts {
        all.push(Configuration {
            label: format!("postgres, {n} replica{}", if n == 1 { "" } else { "s" }),
            database: Some(fresh_database(server, &format!("{bench}_{n}")).await?),
            replicas: n,
        });
    }
    Ok(all)
}

/// Creates database `greenmesh_bench_<tag>_<time>` on `server`
/// (`postgres://user[:pass]@host:port/db`); its address.
pub async fn fresh_database(server: &str, tag: &str) -> anyhow::Result<String> {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let name = format!("greenmesh_bench_{tag}_{}", super::harness::now_ms());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let config: tokio_postgres::Config = server.parse()?;
    let (host, port) = tcp_address(&config)?;
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    Ok(format!("postgres://{user}{password}@{host}:{port}/{name}"))
}

/// The `SPIN_VARIABLE_*` settings that put a coordinator's tables in
/// `database`: its address, and the host the components may reach.
pub fn coordinator_settings(database: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    let (host, port) = tcp_address(&database.parse()?)?;
    Ok(vec![
        ("SPIN_VARIABLE_DATABASE_URL", database.to_string()),
        ("SPIN_VARIABLE_DATABASE_HOST", format!("{host}:{port}")),
    ])
}

/// Transactions committed or rolled back in `database` so far (each
/// autocommitted statement is one).
pub async fn transactions(database: &str) -> anyhow::Result<i64> {
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    // Backends report their counts when idle or gone, within a second.
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await?;
    let row = client
        .query_one(
            "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The TCP host and port an address names (5432 when it names none).
fn tcp_address(config: &tokio_postgres::Config) -> anyhow::Result<(String, u16)> {
    match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => Ok((
            host.clone(),
            config.get_ports().first().copied().unwrap_or(5432),
        )),
        _ => anyhow::bail!("a benchmark's Postgres address must name a TCP host"),
    }
}
