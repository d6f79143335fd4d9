//! Any bytes as the payload of one valid `Events` chunk (header and checksum made right), so
//! the fuzzer spends its time in record decoding, the replay and every renderer rather than
//! on the magic and the CRC. The first byte picks the options (view, leak window, workers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memlens_analysis::{Options, TemporaryRule, View};
use memlens_format::{ChunkKind, Header, Mode, Writer};
use memlens_report::Format;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, payload)) = data.split_first() else {
        return;
    };
    let header = Header {
        python_version: "3.12.1".into(),
        pid: 1,
        command: vec!["app.py".into()],
        mode: if knobs & 1 == 0 {
            Mode::Exact
        } else {
            Mode::Sampling
        },
        sample_rate: 4096,
        start_unix_ns: 0,
        library_prefixes: vec!["/usr/lib/".into()],
    };
    let mut file = Vec::new();
    let mut writer = Writer::new(&mut file, &header).expect("in memory");
    writer
        .write_chunk(ChunkKind::Events, payload)
        .expect("in memory");
    // A second copy exercises state carried across chunks (and the parallel decoder).
    writer
        .write_chunk(ChunkKind::Events, payload)
        .expect("in memory");
    writer.finish().expect("in memory");
    let options = Options {
        workers: Some(usize::from(knobs >> 1 & 1)),
        temporary: TemporaryRule {
            max_allocations: Some(u64::from(knobs >> 2 & 3)),
            max_ms: (knobs & 0x10 != 0).then_some(20.0),
        },
        leaks_from: (knobs & 0x20 != 0).then(|| "a".to_owned()),
        leaks_to: (knobs & 0x40 != 0).then(|| "b".to_owned()),
        max_moments: 4,
        max_moment_values: 3,
        ..Options::default()
    };
    let Ok(report) = memlens_analysis::analyze(&file, &options) else {
        return;
    };
    let view = View::ALL[usize::from(knobs >> 6)];
    for format in [
        Format::Text,
        Format::Json,
        Format::Pprof,
        Format::Speedscope,
        Format::Collapsed,
    ] {
        let mut out = Vec::new();
        memlens_report::render(&report, format, view, &mut out).expect("in memory");
    }
});
