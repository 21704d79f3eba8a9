//! Manifest "UI" tests: each `tests/ui/<case>.toml` must fail to load with
//! exactly the message in `tests/ui/<case>.stderr` (the file is named by its
//! bare name). Run with `GREENMESH_BLESS=1` to rewrite the expected files.

use std::path::Path;

#[test]
fn manifest_mistakes_name_file_key_and_problem() {
    let dir = greenmesh_tests::tests_dir().join("ui");
    let bless = std::env::var_os("GREENMESH_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "ui cases went missing");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let got = match load_in(&dir, &name) {
            Ok(()) => format!("{name} loaded without error"),
            Err(e) => e,
        };
        let expected_path = case.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != got {
            failures.push(format!(
                "{name}:\n  expected: {}\n  got:      {got}",
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Loads `name` with its bare file name so messages are stable.
fn load_in(dir: &Path, name: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    greenmesh_host::manifest::parse(Path::new(name), &text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
