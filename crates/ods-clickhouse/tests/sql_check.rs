//! Every DDL statement and query text of the store runs on a current ClickHouse engine too
//! (chdb from PyPI, driven by `tests/chdb_check.py`), and the row structs' column types match
//! the created tables. The service tests run the same SQL against Debian's 18.16 server.
//!
//! Needs `python3` with `chdb` (the test script installs it). Without it the test is skipped
//! with a notice, unless `ODS_THIRD_PARTY_TESTS=1` (set by `tests/run.sh` and CI), where a
//! missing tool is a failure.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::process::Command;

use ods_clickhouse::{sql_catalog, Capabilities, ServerVersion};

fn chdb_available() -> bool {
    Command::new("python3")
        .args(["-c", "import chdb"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn every_statement_runs_on_current_clickhouse() {
    if !chdb_available() {
        assert!(
            std::env::var("ODS_THIRD_PARTY_TESTS").as_deref() != Ok("1"),
            "python3 with chdb is required (pip install chdb)"
        );
        eprintln!("SKIPPED: python3 with chdb not found; run tests/run.sh to install it");
        return;
    }
    // the capabilities of a current server (LowCardinality columns)
    let caps = Capabilities::of(ServerVersion {
        major: 24,
        minor: 8,
    });
    let catalog = sql_catalog("ods_check", &caps);
    assert!(catalog.ddl.iter().any(|s| s.contains("LowCardinality")));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&catalog).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chdb_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "chdb rejected some SQL (see above)");
    assert!(stdout.contains(" passed, 0 failed"));
}
