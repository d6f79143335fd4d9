//! Reader and replay speed on a capture, one core and all cores.
//!
//! `cargo run --release -p memlens-analysis --example bench_reader -- CAPTURE [ROUNDS]`
//!
//! Prints, best of ROUNDS (default 5): the reader alone on one thread (check, decompress and
//! decode every chunk: allocation and free events per second), then the whole analysis with
//! decoding on the calling thread (`workers = 0`) and with the default workers.

use std::time::Instant;

use memlens_analysis::{CaptureBytes, Options, analyze};
use memlens_format::{ChunkKind, Reader, Record};

fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.expect("at least one round"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: bench_reader CAPTURE [ROUNDS]");
    let rounds: usize = args.next().map_or(5, |r| r.parse().expect("ROUNDS"));
    let bytes = CaptureBytes::open(path.as_ref()).expect("open");
    let (secs, (events, records)) = best(rounds, || {
        let reader = Reader::new(&bytes).expect("header");
        let mut events = 0u64;
        let mut records = 0u64;
        for span in reader.chunk_spans() {
            let span = span.expect("chunk");
            if span.kind() != ChunkKind::Events {
                continue;
            }
            let chunk = span.load().expect("load");
            for r in chunk.records() {
                records += 1;
                if matches!(
                    r.expect("record"),
                    Record::Alloc { .. } | Record::Free { .. }
                ) {
                    events += 1;
                }
            }
        }
        (events, records)
    });
    println!(
        "reader, one core: {events} events ({records} records, {:.1} MB) in {:.3} s = {:.1} M events/s",
        bytes.len() as f64 / 1e6,
        secs,
        events as f64 / secs / 1e6
    );
    for (label, workers) in [
        ("analysis, one core", Some(0)),
        ("analysis, default workers", None),
    ] {
        let options = Options {
            workers,
            ..Options::default()
        };
        let (secs, report) = best(rounds, || analyze(&bytes, &options).expect("analyze"));
        println!(
            "{label}: {:.3} s = {:.1} M events/s ({} sites, {} stacks in the call tree)",
            secs,
            report.meta.events as f64 / secs / 1e6,
            report.sites.len(),
            report.calls.nodes.len()
        );
    }
}
