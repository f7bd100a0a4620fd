//! OTP's names for what a supervisor reports (`normal`, `already_present`,
//! `undefined`...), as the conformance traces print them. The vocabulary of
//! the traces, not of the library: the conformance runner and the tests that
//! compare against OTP's traces share it.
//!
//! Include it with `#[path = "support/otp_names.rs"] mod otp_names;` (from
//! `tests/`, `#[path = "../examples/support/otp_names.rs"]`) and `use
//! otp_names::OtpName;`.
#![allow(dead_code, unreachable_pub)]

use warden::supervisor::{ChildError, ChildState, ExitReason};

/// OTP's name of a value, as the conformance traces print it.
pub trait OtpName {
    /// The name.
    fn otp_name(&self) -> &'static str;
}

/// `normal`, `shutdown`, `killed`, or `boom` for a failure or a stop with a
/// reason of its own (the scenarios name every abnormal reason `boom`).
impl OtpName for ExitReason {
    fn otp_name(&self) -> &'static str {
        match self {
            ExitReason::Normal => "normal",
            ExitReason::Shutdown => "shutdown",
            ExitReason::Killed => "killed",
            _ => "boom",
        }
    }
}

/// `running`, `undefined` (not running) or `restarting`.
impl OtpName for ChildState {
    fn otp_name(&self) -> &'static str {
        match self {
            ChildState::Running(_) => "running",
            ChildState::Restarting => "restarting",
            _ => "undefined",
        }
    }
}

/// `already_started`, `already_present`, `running`, `restarting`,
/// `not_found`, `boom` (a failed start), `noproc`, `simple_one_for_one`,
/// `timeout`...
impl OtpName for ChildError {
    fn otp_name(&self) -> &'static str {
        match self {
            ChildError::AlreadyStarted(_) => "already_started",
            ChildError::AlreadyPresent => "already_present",
            ChildError::Running => "running",
            ChildError::Restarting => "restarting",
            ChildError::NotFound => "not_found",
            ChildError::StartFailed(_) => "boom",
            ChildError::InvalidSpec(_) => "invalid_spec",
            ChildError::NoProc(_) => "noproc",
            ChildError::SimpleOneForOne => "simple_one_for_one",
            ChildError::WrongArguments { .. } => "wrong_arguments",
            ChildError::Timeout(_) => "timeout",
            _ => "unknown",
        }
    }
}
