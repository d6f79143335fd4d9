//! The report model: plain data, no formatting.

/// Which question a list of sites answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Live at the high-water mark.
    Peak,
    /// Still live when tracking ended.
    Leaks,
    /// Everything allocated during the run.
    Allocations,
}

impl View {
    /// Lower-case name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            View::Peak => "peak",
            View::Leaks => "leaks",
            View::Allocations => "allocations",
        }
    }
}

/// A source location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// File name as the interpreter knows it.
    pub file: String,
    /// Line number (0 when unknown).
    pub line: u32,
    /// Qualified function name.
    pub function: String,
}

/// One line of the user's code and the memory it allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Where.
    pub location: Location,
    /// Estimated bytes live at the peak.
    pub peak_bytes: u64,
    /// Estimated bytes still live at the end.
    pub leaked_bytes: u64,
    /// Estimated bytes allocated over the run.
    pub allocated_bytes: u64,
    /// Estimated number of allocations.
    pub allocations: u64,
    /// The heaviest full stack through this site, innermost frame first.
    pub stack: Vec<Location>,
}

impl Site {
    /// The figure a view ranks by.
    pub fn bytes(&self, view: View) -> u64 {
        match view {
            View::Peak => self.peak_bytes,
            View::Leaks => self.leaked_bytes,
            View::Allocations => self.allocated_bytes,
        }
    }
}

/// What was run and how it was captured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Meta {
    /// The program's command line.
    pub command: Vec<String>,
    /// Python version.
    pub python: String,
    /// Process id.
    pub pid: u32,
    /// `"sampling"` or `"exact"`.
    pub mode: String,
    /// Mean bytes between samples (1 in exact mode).
    pub sample_rate: u64,
    /// Seconds from start to the last record.
    pub duration_s: f64,
    /// Allocation and free events recorded (every one in exact mode, the sampled ones else).
    pub events: u64,
    /// Set when the capture ends early (a killed process): what the reader saw.
    pub warning: Option<String>,
}

/// Exact totals from the tracker's counters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    /// Highest live bytes.
    pub peak_bytes: u64,
    /// When the peak was reached, seconds from start.
    pub peak_time_s: f64,
    /// Bytes live when tracking ended.
    pub leaked_bytes: u64,
    /// Bytes allocated.
    pub allocated_bytes: u64,
    /// Number of allocations.
    pub allocations: u64,
    /// Highest resident set size seen.
    pub rss_peak_bytes: u64,
}

/// One sample of memory over time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimelinePoint {
    /// Seconds from start.
    pub time_s: f64,
    /// Tracked live bytes.
    pub live_bytes: u64,
    /// Resident set size.
    pub rss_bytes: u64,
}

/// Memory over time, thinned to a bounded number of points.
pub type Timeline = Vec<TimelinePoint>;

/// Everything a renderer needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Run metadata.
    pub meta: Meta,
    /// Exact totals.
    pub totals: Totals,
    /// Sites, in no particular order; see [`Report::top_sites`].
    pub sites: Vec<Site>,
    /// Memory over time.
    pub timeline: Timeline,
    /// What the run-time rules found.
    pub findings: Vec<crate::Finding>,
}

impl Report {
    /// Sites with a non-zero figure for `view`, largest first.
    pub fn top_sites(&self, view: View) -> impl Iterator<Item = &Site> {
        let mut sites: Vec<&Site> = self.sites.iter().filter(|s| s.bytes(view) > 0).collect();
        sites.sort_by(|a, b| {
            b.bytes(view)
                .cmp(&a.bytes(view))
                .then_with(|| a.location.cmp(&b.location))
        });
        sites.into_iter()
    }
}
