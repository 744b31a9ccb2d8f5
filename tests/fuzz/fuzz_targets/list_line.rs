//! Fuzz target: see `watchdog::fuzzing::list_line` for the properties it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| watchdog::fuzzing::list_line(data));
