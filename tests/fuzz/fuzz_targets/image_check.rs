#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| watchdog::fuzzing::image_check(data));
