//! Fuzz target: see `watchdog::fuzzing::progress_channel` for the properties it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| watchdog::fuzzing::progress_channel(data));
