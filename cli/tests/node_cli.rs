//! `warden node`'s command line: a bad `--workers` is a usage error (exit 2), before the
//! node starts.

#![cfg(feature = "cluster")]

use std::process::Command;

#[test]
fn a_bad_worker_count_is_a_usage_error() {
    for (workers, says) in [("0", "--workers needs at least 1"), ("two", "is not a number")] {
        let output = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["node", "--name", "n", "--workers", workers])
            .env("WARDEN_COOKIE", "c")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "--workers {workers}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says) && stderr.contains("usage: warden"), "{stderr}");
    }
}
