#![no_main]
// The body lives in the library (logbook_server::fuzzing), where `cargo test`
// replays the committed corpus and regressions through it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logbook_server::fuzzing::params(data));
