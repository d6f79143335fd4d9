//! CSV: one row per sample of the tree totals, streamed as samples arrive.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::record::{Recording, Sample};
use crate::session::Observer;

/// The header line. Columns may be added at the end, never removed or reordered.
pub(crate) const HEADER: &str = "t,rss,pss,uss,swap,processes";

/// Writes `recording` as CSV: seconds, then bytes (empty when unknown), then the process count.
///
/// # Errors
/// Any error of the writer.
pub fn write_csv(recording: &Recording, mut out: impl Write) -> io::Result<()> {
    writeln!(out, "{HEADER}")?;
    for sample in &recording.samples {
        write_row(&mut out, sample)?;
    }
    out.flush()
}

fn write_row(out: &mut impl Write, s: &Sample) -> io::Result<()> {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    writeln!(
        out,
        "{:.3},{},{},{},{},{}",
        s.t,
        s.rss,
        opt(s.pss),
        opt(s.uss),
        opt(s.swap),
        s.processes
    )
}

/// Streams CSV rows as an [`Observer`], flushing at least once a second, so a monitor killed
/// with SIGKILL still leaves all but the last second on disk.
#[derive(Debug)]
pub struct CsvStream<W: Write> {
    out: W,
    written: usize,
    last_flush: Instant,
    error: Option<io::Error>,
}

impl<W: Write> CsvStream<W> {
    /// Writes the header and returns the stream.
    ///
    /// # Errors
    /// Any error of the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        writeln!(out, "{HEADER}")?;
        out.flush()?;
        Ok(CsvStream {
            out,
            written: 0,
            last_flush: Instant::now(),
            error: None,
        })
    }

    /// Writes any rows not yet written, flushes, and returns the first error met, if any.
    ///
    /// # Errors
    /// The first write error, now or during streaming.
    pub fn finish(mut self, recording: &Recording) -> io::Result<()> {
        self.catch_up(recording);
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        self.out.flush()
    }

    fn catch_up(&mut self, recording: &Recording) {
        if self.error.is_some() {
            return;
        }
        for sample in &recording.samples[self.written.min(recording.samples.len())..] {
            if let Err(err) = write_row(&mut self.out, sample) {
                self.error = Some(err);
                return;
            }
        }
        self.written = recording.samples.len();
    }
}

impl<W: Write> Observer for CsvStream<W> {
    fn on_sample(&mut self, recording: &Recording) {
        self.catch_up(recording);
        if self.error.is_none() && self.last_flush.elapsed() >= Duration::from_secs(1) {
            self.last_flush = Instant::now();
            if let Err(err) = self.out.flush() {
                self.error = Some(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::fixture;

    #[test]
    fn one_row_per_sample_with_empty_unknowns() {
        let mut out = Vec::new();
        write_csv(&fixture(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines.len(), 1 + fixture().samples.len());
        assert_eq!(lines[1], "0.000,1048576,524288,262144,0,1");
        assert_eq!(lines[4], "0.300,2097152,,,0,2");
    }

    #[test]
    fn streaming_matches_the_batch_output() {
        let rec = fixture();
        let mut partial = rec.clone();
        partial.samples.truncate(2);
        let mut stream = CsvStream::new(Vec::new()).unwrap();
        stream.on_sample(&partial);
        stream.catch_up(&rec);
        let streamed = stream.out.clone();
        stream.finish(&rec).unwrap();
        let mut batch = Vec::new();
        write_csv(&rec, &mut batch).unwrap();
        assert_eq!(streamed, batch);
    }
}
