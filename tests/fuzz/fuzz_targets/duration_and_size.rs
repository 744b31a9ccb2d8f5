//! Fuzz target: see `watchdog::fuzzing::duration_and_size` for the properties it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| watchdog::fuzzing::duration_and_size(data));
