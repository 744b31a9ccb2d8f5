//! Fuzz target: see `watchdog::fuzzing::proxy_setting` for the properties it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| watchdog::fuzzing::proxy_setting(data));
