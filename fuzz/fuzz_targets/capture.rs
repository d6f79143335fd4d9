//! Any bytes as a whole capture file: the reader and the analysis must answer with a report or
//! an error, never panic, hang or exhaust memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = memlens_analysis::Options {
        workers: Some(0),
        ..Default::default()
    };
    let _ = memlens_analysis::analyze(data, &options);
});
