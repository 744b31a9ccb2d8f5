//! The binary: everything it does is in the library's [`watchdog::run`], which the man page generator
//! and the tests reach too.

use std::process::ExitCode;

fn main() -> ExitCode {
    watchdog::run(std::env::args_os().collect())
}
