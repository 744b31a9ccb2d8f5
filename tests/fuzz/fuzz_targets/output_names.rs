//! Fuzz target: see `watchdog::fuzzing::output_names` for the properties it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| watchdog::fuzzing::output_names(data));
