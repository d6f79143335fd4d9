//! The recording: what the monitor measured, the one model every output format renders.

use crate::probe::Source;

/// Tree totals at one instant. Sizes in bytes; `t` in seconds since the monitor started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the start of monitoring.
    pub t: f64,
    /// Sum of the RSS of every process in the tree (shared pages counted once per process).
    pub rss: u64,
    /// Sum of PSS: the tree's fair share of RAM. `None` on samples where PSS was not read (see
    /// [`MonitorBuilder::pss_interval`](crate::MonitorBuilder::pss_interval)) or was unreadable
    /// for some process.
    pub pss: Option<u64>,
    /// Sum of USS: memory private to the tree's processes. `None` as for `pss`.
    pub uss: Option<u64>,
    /// Sum of swapped-out memory. `None` if any process's swap was unreadable.
    pub swap: Option<u64>,
    /// Number of processes measured in this sample.
    pub processes: u32,
}

/// One process's figures at one instant (bytes; `t` in seconds since the start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    /// Seconds since the start of monitoring.
    pub t: f64,
    /// Resident set size.
    pub rss: u64,
    /// Proportional set size, when readable.
    pub pss: Option<u64>,
    /// Unique set size, when readable.
    pub uss: Option<u64>,
    /// Swapped-out memory, when readable.
    pub swap: Option<u64>,
}

/// The highest value of each figure, in bytes (0 when never measured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peaks {
    /// Highest RSS.
    pub rss: u64,
    /// Highest PSS.
    pub pss: u64,
    /// Highest USS.
    pub uss: u64,
    /// Highest swap.
    pub swap: u64,
}

impl Peaks {
    pub(crate) fn update(
        &mut self,
        rss: u64,
        pss: Option<u64>,
        uss: Option<u64>,
        swap: Option<u64>,
    ) {
        self.rss = self.rss.max(rss);
        self.pss = self.pss.max(pss.unwrap_or(0));
        self.uss = self.uss.max(uss.unwrap_or(0));
        self.swap = self.swap.max(swap.unwrap_or(0));
    }
}

/// One process of the tree over its life, as far as the monitor saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRecord {
    /// Process id.
    pub pid: u32,
    /// Parent's process id when first seen.
    pub ppid: u32,
    /// Command line (argv), or `[name]` when the kernel shows none.
    pub command: Vec<String>,
    /// Seconds since the start when the process was first seen.
    pub first_seen: f64,
    /// Seconds since the start when it was last measured.
    pub last_seen: f64,
    /// True when it exited while monitored (false when still running at the end).
    pub exited: bool,
    /// The richest source its memory could be read from.
    pub source: Option<Source>,
    /// Highest values seen.
    pub peak: Peaks,
    /// The kernel's high-water mark of its RSS (`VmHWM`) when last measured: exact, whatever the
    /// sampling interval.
    pub kernel_peak_rss: Option<u64>,
    /// Its measurements, one per sample it was alive for.
    pub samples: Vec<ProcessSample>,
}

/// Why monitoring stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Every process of the tree exited.
    Exited,
    /// `--duration` elapsed.
    Duration,
    /// SIGINT, SIGTERM or SIGHUP reached the monitor.
    Interrupted,
    /// The monitor could not start or continue (see [`Recording::error`]).
    Failed,
}

impl StopReason {
    /// A stable lower-case name, used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Exited => "exited",
            StopReason::Duration => "duration",
            StopReason::Interrupted => "interrupted",
            StopReason::Failed => "failed",
        }
    }
}

/// How the launched command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandExit {
    /// Its exit code, when it exited normally.
    pub code: Option<i32>,
    /// The signal that killed it, otherwise.
    pub signal: Option<i32>,
    /// The kernel's high-water RSS for it (`ru_maxrss` from `wait4`), in bytes: the largest RSS
    /// reached by the command or by any descendant it waited for.
    pub max_rss: u64,
}

impl CommandExit {
    /// The status a shell would report: the exit code, or 128 + the signal number.
    pub fn status(&self) -> u8 {
        match (self.code, self.signal) {
            (Some(code), _) => (code & 0xff) as u8,
            (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
            (None, None) => 1,
        }
    }
}

/// What `--threshold` observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdReport {
    /// The limit on the tree's total RSS, in bytes.
    pub bytes: u64,
    /// Seconds since the start when the total RSS first reached the limit.
    pub first_crossed: Option<f64>,
    /// Number of samples at or above the limit.
    pub samples_above: usize,
}

impl ThresholdReport {
    /// True when the limit was reached at least once.
    pub fn exceeded(&self) -> bool {
        self.first_crossed.is_some()
    }
}

/// Everything one monitoring session measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The monitored command line (for `--pid`, the target's own command line).
    pub command: Vec<String>,
    /// Pid of the root process, once known.
    pub pid: Option<u32>,
    /// The sampling interval asked for, in seconds.
    pub interval_s: f64,
    /// Wall-clock start, seconds since the Unix epoch.
    pub start_unix_s: f64,
    /// Seconds from the start to the end of monitoring.
    pub duration_s: f64,
    /// Tree totals, one per sample, in time order.
    pub samples: Vec<Sample>,
    /// Every process seen, in order of appearance.
    pub processes: Vec<ProcessRecord>,
    /// Why monitoring stopped.
    pub stop: StopReason,
    /// How the launched command ended, when it ended before the recording did.
    pub exit: Option<CommandExit>,
    /// What `--threshold` observed, when one was set.
    pub threshold: Option<ThresholdReport>,
    /// Warnings worth keeping with the data (unreadable processes, for example).
    pub warnings: Vec<String>,
    /// The error that stopped the monitor, when [`StopReason::Failed`].
    pub error: Option<String>,
}

impl Recording {
    pub(crate) fn new(interval_s: f64, start_unix_s: f64) -> Self {
        Recording {
            command: Vec::new(),
            pid: None,
            interval_s,
            start_unix_s,
            duration_s: 0.0,
            samples: Vec::new(),
            processes: Vec::new(),
            stop: StopReason::Exited,
            exit: None,
            threshold: None,
            warnings: Vec::new(),
            error: None,
        }
    }

    /// The sample with the highest total RSS (the first of equals).
    pub fn peak_sample(&self) -> Option<&Sample> {
        self.samples
            .iter()
            .fold(None, |best: Option<&Sample>, s| match best {
                Some(b) if b.rss >= s.rss => Some(b),
                _ => Some(s),
            })
    }

    /// Highest tree totals over all samples.
    pub fn peaks(&self) -> Peaks {
        let mut peaks = Peaks::default();
        for s in &self.samples {
            peaks.update(s.rss, s.pss, s.uss, s.swap);
        }
        peaks
    }

    /// True when PSS and USS were readable for the whole tree in at least one sample.
    pub fn has_pss(&self) -> bool {
        self.samples.iter().any(|s| s.pss.is_some())
    }
}
