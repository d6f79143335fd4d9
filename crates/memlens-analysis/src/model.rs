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
    /// Allocated and freed again soon after (see `Options` for "soon").
    Temporary,
}

impl View {
    /// Lower-case name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            View::Peak => "peak",
            View::Leaks => "leaks",
            View::Allocations => "allocations",
            View::Temporary => "temporary",
        }
    }

    /// Every view, in the order reports list them.
    pub const ALL: [View; 4] = [View::Peak, View::Leaks, View::Allocations, View::Temporary];
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
    /// Estimated bytes allocated and freed again soon after (the temporary view).
    pub temporary_bytes: u64,
    /// The most this line held at any one time during the run (its own high-water mark,
    /// which need not fall at the program's peak; estimated in sampling mode).
    pub high_water_bytes: u64,
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
            View::Temporary => self.temporary_bytes,
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
    /// When the capture started, nanoseconds since the Unix epoch (0 when unknown): the clock
    /// that puts several processes' timelines together.
    pub start_unix_ns: u64,
    /// How many processes' captures this report covers (1, or more when merged).
    pub processes: u32,
    /// True when the per-line and per-stack figures are estimates from samples (scaled to the
    /// exact totals where those exist); false in exact captures.
    pub sites_estimated: bool,
    /// Events the tracker dropped because a thread's buffer stayed full (its writer fell
    /// behind or was stuck): they are missing from the sites, so sites may be incomplete;
    /// totals and the timeline stay exact. 0 normally.
    pub dropped_events: u64,
}

impl Meta {
    /// One sentence saying that events were lost and what that means, when any were.
    pub fn dropped_warning(&self) -> Option<String> {
        match self.dropped_events {
            0 => None,
            n => Some(format!(
                "{n} {} lost (the tracker's writer fell behind): totals are exact, but sites \
                 may be incomplete",
                if n == 1 { "event was" } else { "events were" }
            )),
        }
    }
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

/// A thread of the profiled program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadInfo {
    /// The tracker's thread id (as in the capture).
    pub id: u64,
    /// The kernel's thread id (0 when the capture does not say).
    pub native_id: u64,
    /// The thread's name (`"MainThread"`, or the name given to `threading.Thread`).
    pub name: String,
}

/// Every stack of the run merged into one call tree, which flame graphs index into.
///
/// Node 0 is the root and has no frame; every other node's parent has a smaller index, so one
/// forward pass visits parents before children.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallTree {
    /// Distinct frames (file, line, function), referenced by [`CallNode::frame`].
    pub frames: Vec<Location>,
    /// The nodes; `nodes[0]` is the root.
    pub nodes: Vec<CallNode>,
}

/// One node of a [`CallTree`]: a frame called from its parent node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallNode {
    /// Index of the calling node (0 for outermost frames; the root's own parent is 0).
    pub parent: u32,
    /// Index into [`CallTree::frames`] (unused for the root).
    pub frame: u32,
}

/// A view's figure for one allocating stack (a call-tree node) on one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StackValue {
    /// The allocating stack: a node of [`Report::calls`].
    pub node: u32,
    /// Index into [`Report::threads`].
    pub thread: u32,
    /// Estimated bytes.
    pub bytes: u64,
    /// Estimated number of allocations.
    pub count: u64,
}

/// One view's flame graph: self figures per allocating stack and thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Flame {
    /// Which question it answers.
    pub view: View,
    /// Non-zero figures only.
    pub values: Vec<StackValue>,
}

/// The live set at one moment of the run (what the timeline shows when clicked).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Moment {
    /// Seconds from start.
    pub time_s: f64,
    /// Exact tracked live bytes then.
    pub live_bytes: u64,
    /// Estimated live bytes per stack and thread then.
    pub values: Vec<StackValue>,
}

/// The stretch of the run the leaks view covers when it is bounded by checkpoints
/// (`memlens report --from A --to B`): blocks allocated after `from` and still live at `to`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeakWindow {
    /// Label of the opening checkpoint (`None`: from the start).
    pub from: Option<String>,
    /// Label of the closing checkpoint (`None`: at exit).
    pub to: Option<String>,
    /// When the window opened, seconds from start.
    pub from_time_s: f64,
    /// When it closed, seconds from start.
    pub to_time_s: f64,
}

/// A `memlens.checkpoint(label)` mark.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckpointMark {
    /// Seconds from start.
    pub time_s: f64,
    /// The label given.
    pub label: String,
}

impl CallTree {
    /// Frames from the outermost caller down to `node`'s own frame (empty for the root).
    pub fn path(&self, node: u32) -> Vec<&Location> {
        let mut out = Vec::new();
        let mut n = node as usize;
        while n != 0 && n < self.nodes.len() && out.len() < self.nodes.len() {
            let node = self.nodes[n];
            if let Some(f) = self.frames.get(node.frame as usize) {
                out.push(f);
            }
            n = node.parent as usize;
        }
        out.reverse();
        out
    }
}

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
    /// Threads seen, indexed by [`StackValue::thread`].
    pub threads: Vec<ThreadInfo>,
    /// The call tree all flames and moments index into.
    pub calls: CallTree,
    /// One flame graph per view that has data (views with nothing to show are left out).
    pub flames: Vec<Flame>,
    /// The live set at a bounded number of moments along the timeline, in time order
    /// (between half of `Options::max_moments` and that many, evenly spaced).
    pub moments: Vec<Moment>,
    /// Checkpoint marks, in order.
    pub checkpoints: Vec<CheckpointMark>,
    /// Set when the leaks view is bounded by checkpoints rather than "live at exit".
    pub leak_window: Option<LeakWindow>,
}

impl Report {
    /// The flame graph of `view`, if the analysis built one.
    pub fn flame(&self, view: View) -> Option<&Flame> {
        self.flames.iter().find(|f| f.view == view)
    }

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
