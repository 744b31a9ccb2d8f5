//! Fuzz target: see `watchdog::fuzzing::url_redaction` for the properties it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| watchdog::fuzzing::url_redaction(data));
