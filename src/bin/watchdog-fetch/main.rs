//! `watchdog-fetch`: the download worker, a binary of its own because it holds the HTTP engine.
//!
//! libcurl and OpenSSL are built into this binary and into no other: the `curl` crate initialises
//! both from a constructor at every start of a binary that links it, which made every
//! `watchdog 5 true` pay for a download it never makes. `watchdog` runs this binary for
//! `watchdog -- fetch URL` and for batch workers, finding it beside itself. Run directly,
//! `watchdog-fetch URL -o PATH` is the same download without a supervisor: no deadline, no stall
//! watch. The download itself (redirects, proxies, content checks, output, progress) is the
//! library's; [`http`] is only the engine, and [`transport_error`] its errors in the library's words.

mod http;
mod transport_error;

use std::process::ExitCode;

fn main() -> ExitCode {
    watchdog::run_worker(std::env::args_os().collect(), http::connect)
}
