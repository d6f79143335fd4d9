//! Output formats of a [`Recording`](crate::Recording): one file each, formatting only.

mod chart;
mod csv;
mod html;
mod json;
mod live;

use std::io::{self, Write};

pub use csv::{CsvStream, write_csv};
pub use html::write_html;
pub use json::write_json;
pub use live::LiveView;

use crate::record::Recording;

/// Writes `recording` as a standalone SVG plot of the tree's RSS, PSS, USS and swap over time.
///
/// # Errors
/// Any error of the writer.
pub fn write_svg(recording: &Recording, mut out: impl Write) -> io::Result<()> {
    let heading = chart::title(recording);
    let series = chart::total_series(recording);
    let svg = chart::Chart {
        title: &heading,
        series: &series,
        threshold: recording.threshold.map(|t| t.bytes),
        mark_peak: true,
        standalone: true,
        id: "memlens-monitor",
    }
    .render();
    out.write_all(svg.as_bytes())?;
    out.flush()
}

/// The output formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One row per sample (`.csv`).
    Csv,
    /// The whole recording (`.json`).
    Json,
    /// A self-contained page (`.html`, `.htm`).
    Html,
    /// A standalone plot (`.svg`).
    Svg,
}

impl Format {
    /// The format a file name asks for, by its extension (case-insensitive).
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "html" | "htm" => Some(Format::Html),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }

    /// Writes `recording` in this format.
    ///
    /// # Errors
    /// Any error of the writer.
    pub fn write(self, recording: &Recording, out: impl Write) -> io::Result<()> {
        match self {
            Format::Csv => write_csv(recording, out),
            Format::Json => write_json(recording, out),
            Format::Html => write_html(recording, out),
            Format::Svg => write_svg(recording, out),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::probe::Source;
    use crate::record::*;

    /// A small recording shared by the renderer tests: two processes, a hostile command line,
    /// one sample without PSS, a threshold crossed.
    pub(crate) fn fixture() -> Recording {
        let mib = 1024 * 1024;
        let mut rec = Recording::new(0.1, 1_700_000_000.0);
        rec.command = vec![
            "python3".to_owned(),
            "-c".to_owned(),
            "print(\"</script><\")".to_owned(),
        ];
        rec.pid = Some(100);
        rec.duration_s = 0.3;
        let totals = [
            (0.0, mib, Some(mib / 2), Some(mib / 4), 1),
            (0.1, 2 * mib, Some(mib), Some(mib / 2), 2),
            (0.2, 3 * mib, Some(2 * mib), Some(mib), 2),
            (0.3, 2 * mib, None, None, 2),
        ];
        for (t, rss, pss, uss, processes) in totals {
            rec.samples.push(Sample {
                t,
                rss,
                pss,
                uss,
                swap: Some(0),
                processes,
            });
        }
        let mut parent = ProcessRecord {
            pid: 100,
            ppid: 1,
            command: rec.command.clone(),
            first_seen: 0.0,
            last_seen: 0.3,
            exited: true,
            source: Some(Source::SmapsRollup),
            peak: Peaks::default(),
            kernel_peak_rss: Some(1_100_000),
            samples: Vec::new(),
        };
        let mut child = ProcessRecord {
            pid: 101,
            ppid: 100,
            command: vec!["worker".to_owned(), "<b>".to_owned()],
            first_seen: 0.1,
            ..parent.clone()
        };
        for (t, rss) in [(0.0, mib), (0.1, mib), (0.2, mib), (0.3, mib)] {
            parent.samples.push(ProcessSample {
                t,
                rss,
                pss: Some(rss / 2),
                uss: Some(rss / 4),
                swap: Some(0),
            });
            parent
                .peak
                .update(rss, Some(rss / 2), Some(rss / 4), Some(0));
        }
        for (t, rss) in [(0.1, mib), (0.2, 2 * mib), (0.3, mib)] {
            child.samples.push(ProcessSample {
                t,
                rss,
                pss: None,
                uss: None,
                swap: Some(0),
            });
            child.peak.update(rss, None, None, Some(0));
        }
        child.source = Some(Source::Status);
        rec.processes = vec![parent, child];
        rec.exit = Some(CommandExit {
            code: Some(0),
            signal: None,
            max_rss: 3_200_000,
        });
        rec.threshold = Some(ThresholdReport {
            bytes: 2_000_000,
            first_crossed: Some(0.1),
            samples_above: 3,
        });
        rec
    }

    #[test]
    fn svg_is_standalone_and_escaped() {
        let mut out = Vec::new();
        super::write_svg(&fixture(), &mut out).unwrap();
        let svg = String::from_utf8(out).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(!svg.contains("</script>"));
        assert!(svg.contains("&lt;/script&gt;"));
        assert!(svg.contains("peak RSS 3.0 MiB at 0.2 s"));
        assert!(svg.contains("threshold 1.9 MiB"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn formats_follow_the_extension() {
        use super::Format;
        use std::path::Path;
        assert_eq!(Format::from_path(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("x.json")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("x.htm")), Some(Format::Html));
        assert_eq!(Format::from_path(Path::new("x.svg")), Some(Format::Svg));
        assert_eq!(Format::from_path(Path::new("x.txt")), None);
        assert_eq!(Format::from_path(Path::new("noext")), None);
    }
}
