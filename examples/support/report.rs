//! How every example ends: success, or its error's chain on one line of stderr
//! (`error: what failed: why: the server's words`) and a non-zero exit, with no
//! backtrace unless `RUST_BACKTRACE` asks for one.
//!
//! Include it with `#[path = "support/report.rs"] mod report;`.

use std::process::ExitCode;

/// The exit code for `result`, after printing its error, if any.
pub(crate) fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            let asked = std::env::var("RUST_BACKTRACE").is_ok_and(|v| v != "0");
            if asked {
                eprintln!("error: {error:?}");
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}
