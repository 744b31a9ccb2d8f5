//! The binary: everything it does is in the library's [`watchdog::run`], which the man page generator
//! and the tests reach too. The entry point is C's `main` rather than the standard library's
//! start-up, which costs more than the rest of a short run (see [`watchdog::entry`]).

#![no_main]

use std::ffi::{c_char, c_int};

/// The process's entry, called by the C library's start-up.
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    watchdog::entry::main(watchdog::run)
}
