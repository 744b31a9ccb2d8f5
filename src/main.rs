//! The binary: everything it does is in the library's [`watchdog::run`], which the man page generator
//! and the tests reach too. The entry point is C's `main` rather than the standard library's
//! start-up, which costs more than the rest of a short run (see [`watchdog::entry`]).

#![no_main]

use std::ffi::{c_char, c_int};

/// The process's entry, called by the C library's start-up.
///
/// # Safety
/// Called only by the C library's start-up, with its own argc and argv, which live for the process.
#[no_mangle]
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: as this function's contract says, argc and argv are the C library's own.
    unsafe { watchdog::entry::main(argc, argv, watchdog::run) }
}
