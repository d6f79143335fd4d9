//! The monitoring loop: launch or attach, discover the tree, sample it, stop.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::probe::{Source, StatusFile, sample_in};
use crate::record::{
    CommandExit, Peaks, ProcessRecord, ProcessSample, Recording, Sample, StopReason,
    ThresholdReport,
};
use crate::sys::{self, StopSignals};
use crate::tree::{TreeScanner, read_cmdline, read_stat};

/// The share of one core that `smaps_rollup` walks may take when PSS is read adaptively.
const PSS_BUDGET: f64 = 0.003;

/// What to monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An existing process and every descendant it starts.
    Pid(u32),
    /// A command to launch (program first), monitored with its descendants until they exit.
    Command(Vec<OsString>),
}

/// Something that happened during monitoring that a front end may want to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The tree's total RSS reached the threshold for the first time.
    ThresholdCrossed {
        /// Seconds since the start.
        t: f64,
        /// The total RSS at that sample, in bytes.
        rss: u64,
        /// The threshold, in bytes.
        threshold: u64,
    },
    /// A process's `smaps_rollup` is unreadable: only RSS and swap are known for it.
    Limited {
        /// The process.
        pid: u32,
        /// The source used instead.
        source: Source,
    },
    /// The launched command exited while some of its descendants are still running.
    CommandExited {
        /// How it ended.
        exit: CommandExit,
        /// How many processes of the tree remain.
        remaining: usize,
    },
    /// A stop signal arrived; the monitor waits up to a grace period for the command to exit.
    Stopping {
        /// The signal number.
        signal: i32,
    },
}

/// Receives samples and events as they happen (live view, streamed CSV, warnings).
pub trait Observer {
    /// Called after each sample is added to `recording`.
    fn on_sample(&mut self, recording: &Recording) {
        let _ = recording;
    }
    /// Called when something noteworthy happens.
    fn on_event(&mut self, event: &Event) {
        let _ = event;
    }
}

/// An observer that ignores everything.
impl Observer for () {}

impl<T: Observer + ?Sized> Observer for &mut T {
    fn on_sample(&mut self, recording: &Recording) {
        (**self).on_sample(recording);
    }
    fn on_event(&mut self, event: &Event) {
        (**self).on_event(event);
    }
}

/// Two observers, told in order.
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn on_sample(&mut self, recording: &Recording) {
        self.0.on_sample(recording);
        self.1.on_sample(recording);
    }
    fn on_event(&mut self, event: &Event) {
        self.0.on_event(event);
        self.1.on_event(event);
    }
}

/// Builds a [`Monitor`].
#[derive(Debug, Clone)]
pub struct MonitorBuilder {
    interval: Duration,
    duration: Option<Duration>,
    threshold: Option<u64>,
    grace: Duration,
    pss_interval: Option<Duration>,
    adopt_orphans: bool,
    proc_root: PathBuf,
}

impl Default for MonitorBuilder {
    fn default() -> Self {
        MonitorBuilder {
            interval: Duration::from_millis(100),
            duration: None,
            threshold: None,
            grace: Duration::from_secs(2),
            pss_interval: None,
            adopt_orphans: false,
            proc_root: PathBuf::from("/proc"),
        }
    }
}

impl MonitorBuilder {
    /// Time between samples (default 0.1 s; at least 1 ms).
    pub fn interval(&mut self, interval: Duration) -> &mut Self {
        self.interval = interval;
        self
    }

    /// Stop recording after this long (default: when the tree exits).
    pub fn duration(&mut self, duration: Option<Duration>) -> &mut Self {
        self.duration = duration;
        self
    }

    /// Report when the tree's total RSS reaches this many bytes.
    pub fn threshold(&mut self, bytes: Option<u64>) -> &mut Self {
        self.threshold = bytes;
        self
    }

    /// After a stop signal, how long to keep sampling while the command exits (default 2 s).
    pub fn grace(&mut self, grace: Duration) -> &mut Self {
        self.grace = grace;
        self
    }

    /// How often to read PSS and USS. They come from `smaps_rollup`, whose cost grows with the
    /// size of each process (the kernel walks its page tables), while RSS and swap are read at
    /// every sample at constant cost. `None` (the default) adapts: PSS and USS are read as often as
    /// keeps those walks under 0.3% of one core (at every sample for small trees), and at least
    /// once a minute. `Some(Duration::ZERO)` reads them at every sample, whatever the cost.
    pub fn pss_interval(&mut self, every: Option<Duration>) -> &mut Self {
        self.pss_interval = every;
        self
    }

    /// When launching a command, become the subreaper of its tree (Linux
    /// `PR_SET_CHILD_SUBREAPER`), so that a descendant whose parent exits before the first look at
    /// it is re-parented to the monitor and still found (default off). The monitor then reaps any
    /// child of the calling process: use it only in a process with no children of its own, such as
    /// the command line. Orphans see the monitor, not init, as their parent.
    pub fn adopt_orphans(&mut self, adopt: bool) -> &mut Self {
        self.adopt_orphans = adopt;
        self
    }

    /// Freezes the options.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for an interval under 1 ms or a zero duration.
    pub fn build(&self) -> Result<Monitor> {
        if self.interval < Duration::from_millis(1) {
            return Err(Error::InvalidOption(
                "the interval must be at least 0.001 s".to_owned(),
            ));
        }
        if self.duration == Some(Duration::ZERO) {
            return Err(Error::InvalidOption(
                "the duration must be more than 0 s".to_owned(),
            ));
        }
        Ok(Monitor {
            options: self.clone(),
        })
    }
}

/// Samples a process tree at a fixed interval. Built by [`Monitor::builder`].
#[derive(Debug, Clone)]
pub struct Monitor {
    options: MonitorBuilder,
}

/// The result of [`Monitor::run`]: the recording, the error that ended it early if any, and the
/// command if it is still running.
#[derive(Debug)]
pub struct Outcome {
    /// What was measured; always present, possibly with no samples.
    pub recording: Recording,
    /// The failure that stopped monitoring, if any (the recording still holds what was measured).
    pub error: Option<Error>,
    /// The launched command, when recording stopped before it exited (`--duration`, interrupt).
    pub running: Option<RunningCommand>,
}

/// A launched command that outlived the recording.
#[derive(Debug)]
pub struct RunningCommand {
    pid: u32,
    signals: StopSignals,
    signals_seen: u32,
}

impl RunningCommand {
    /// The command's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the command to exit. A stop signal arriving meanwhile kills it (SIGKILL).
    ///
    /// # Errors
    /// [`Error::System`] if `wait4` fails.
    pub fn wait(self) -> Result<CommandExit> {
        let mut killed = false;
        loop {
            if let Some(reaped) = wait_reaped(self.pid, false)? {
                return Ok(reaped);
            }
            let count = self.signals.received().map_or(0, |s| s.count);
            if !killed && count > self.signals_seen {
                sys::send_signal(self.pid, sys::SIGKILL);
                killed = true;
            }
            // SIGCHLD or a stop signal ends the sleep early.
            sys::sleep_interruptible(Duration::from_millis(500));
        }
    }
}

fn wait_reaped(pid: u32, block: bool) -> Result<Option<CommandExit>> {
    let reaped = sys::wait_child(pid, block).map_err(|source| Error::System {
        call: "wait4",
        source,
    })?;
    Ok(reaped.map(command_exit))
}

fn command_exit(r: sys::Reaped) -> CommandExit {
    let status = std::process::ExitStatus::from_raw(r.status);
    CommandExit {
        code: status.code(),
        signal: status.signal(),
        max_rss: r.max_rss,
    }
}

/// Checks whether the launched command `root` has ended. As the subreaper (`adopt`), also reaps
/// the orphans we adopted, which would otherwise stay zombies.
fn poll_root(root: u32, adopt: bool) -> Result<Option<CommandExit>> {
    if !adopt {
        return wait_reaped(root, false);
    }
    let mut exit = None;
    while let Some((pid, reaped)) = sys::reap_any().map_err(|source| Error::System {
        call: "wait4",
        source,
    })? {
        if pid == root {
            exit = Some(command_exit(reaped));
        }
    }
    Ok(exit)
}

struct Member {
    index: usize,
    /// The process's `status`, kept open (`None` if it could not be opened: fall back to paths).
    status: Option<StatusFile>,
    /// False once `smaps_rollup` was refused: PSS and USS are not tried again.
    rollup: bool,
    age: u32,
}

impl Monitor {
    /// Starts building a monitor with the defaults (0.1 s interval, no duration, no threshold).
    pub fn builder() -> MonitorBuilder {
        MonitorBuilder::default()
    }

    /// Monitors `target` until its tree exits, the duration elapses or a stop signal arrives,
    /// telling `observer` about each sample. Stop signals (SIGINT, SIGTERM, SIGHUP) are caught
    /// for the duration of the call and of [`RunningCommand::wait`] (signal dispositions are
    /// process-wide: run one monitor at a time).
    pub fn run(&self, target: &Target, observer: &mut dyn Observer) -> Outcome {
        let opts = &self.options;
        let start = Instant::now();
        let start_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut rec = Recording::new(opts.interval.as_secs_f64(), start_unix);
        rec.threshold = opts.threshold.map(|bytes| ThresholdReport {
            bytes,
            first_crossed: None,
            samples_above: 0,
        });
        let fail = |mut rec: Recording, err: Error, running: Option<RunningCommand>| {
            rec.stop = StopReason::Failed;
            rec.error = Some(err.to_string());
            Outcome {
                recording: rec,
                error: Some(err),
                running,
            }
        };

        let signals = match StopSignals::install() {
            Ok(signals) => signals,
            Err(source) => {
                let err = Error::System {
                    call: "sigaction",
                    source,
                };
                return fail(rec, err, None);
            }
        };

        // Attach or launch.
        let (root, child) = match target {
            Target::Pid(pid) => {
                rec.pid = Some(*pid);
                match sample_in(&opts.proc_root, *pid, Source::Status) {
                    Ok(_) | Err(Error::PermissionDenied { .. }) => {}
                    Err(err) => return fail(rec, err, None),
                }
                if let Some(stat) = read_stat(&opts.proc_root, *pid) {
                    rec.command = read_cmdline(&opts.proc_root, *pid, &stat.comm);
                }
                (*pid, false)
            }
            Target::Command(argv) => {
                rec.command = argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                let Some((program, args)) = argv.split_first() else {
                    let err = Error::InvalidOption("no command to run".to_owned());
                    return fail(rec, err, None);
                };
                if opts.adopt_orphans
                    && let Err(source) = sys::set_child_subreaper(true)
                {
                    let err = Error::System {
                        call: "prctl(PR_SET_CHILD_SUBREAPER)",
                        source,
                    };
                    return fail(rec, err, None);
                }
                match Command::new(program).args(args).spawn() {
                    Ok(child) => {
                        rec.pid = Some(child.id());
                        // The child is reaped with wait4 (for its rusage), not through `Child`.
                        (child.id(), true)
                    }
                    Err(source) => {
                        let program = program.to_string_lossy().into_owned();
                        return fail(rec, Error::Spawn { program, source }, None);
                    }
                }
            }
        };

        let adopt = child && opts.adopt_orphans;
        let adopter = adopt.then(std::process::id);
        let mut scanner = TreeScanner::new(&opts.proc_root);
        let mut members: HashMap<u32, Member> = HashMap::new();
        let mut member_set: HashSet<u32> = HashSet::new();
        let ppid = read_stat(&opts.proc_root, root).map_or(0, |s| s.ppid);
        rec.processes
            .push(new_record(root, ppid, rec.command.clone(), 0.0));
        members.insert(
            root,
            Member {
                index: 0,
                status: StatusFile::open(&opts.proc_root, root).ok(),
                rollup: true,
                age: 0,
            },
        );
        member_set.insert(root);

        let mut child_exit: Option<CommandExit> = None;
        let mut stop_deadline: Option<Instant> = None;
        let mut handled_signals = 0u32;
        let mut tick: u64 = 0;
        let mut next_full = start;
        let mut error: Option<Error> = None;
        let stop = loop {
            let t = round_ms(start.elapsed().as_secs_f64());

            // Discover, then measure.
            for joined in scanner.scan(&member_set, adopter) {
                let command = read_cmdline(&opts.proc_root, joined.pid, &joined.stat.comm);
                rec.processes
                    .push(new_record(joined.pid, joined.stat.ppid, command, t));
                let index = rec.processes.len() - 1;
                members.insert(
                    joined.pid,
                    Member {
                        index,
                        status: StatusFile::open(&opts.proc_root, joined.pid).ok(),
                        rollup: true,
                        age: 0,
                    },
                );
                member_set.insert(joined.pid);
            }
            let mut total = Sample {
                t,
                rss: 0,
                pss: None,
                uss: None,
                swap: Some(0),
                processes: 0,
            };
            let mut gone = Vec::new();
            let mut pids: Vec<u32> = member_set.iter().copied().collect();
            pids.sort_unstable();
            // RSS and swap come from `status` at every sample (constant cost); PSS and USS need
            // `smaps_rollup`, a page-table walk whose cost grows with the process, so they are read
            // on "full" samples only, spaced to keep the walks within a CPU budget.
            let full = Instant::now() >= next_full;
            let mut walk = Duration::ZERO;
            if full {
                total.pss = Some(0);
                total.uss = Some(0);
            }
            for pid in pids {
                let Some(member) = members.get_mut(&pid) else {
                    continue;
                };
                let record = &mut rec.processes[member.index];
                let fast = match &member.status {
                    Some(status) => status.sample(),
                    None => sample_in(&opts.proc_root, pid, Source::Status),
                };
                match fast {
                    Ok(mut m) => {
                        let (mut pss, mut uss) = (None, None);
                        if full && member.rollup {
                            let began = Instant::now();
                            let detail = sample_in(&opts.proc_root, pid, Source::SmapsRollup);
                            walk += began.elapsed();
                            match detail {
                                Ok(d) if d.source == Source::SmapsRollup => {
                                    (pss, uss) = (d.pss, d.uss);
                                    record.source = Some(Source::SmapsRollup);
                                }
                                Ok(_) | Err(Error::PermissionDenied { .. }) => {
                                    member.rollup = false;
                                    observer.on_event(&Event::Limited {
                                        pid,
                                        source: m.source,
                                    });
                                    rec.warnings.push(format!(
                                        "process {pid}: smaps_rollup is not readable; PSS and USS are unknown, RSS and swap come from {}",
                                        m.source.file_name()
                                    ));
                                }
                                // Exited in between: the next sample will tell.
                                Err(_) => {}
                            }
                        }
                        m.pss = pss;
                        m.uss = uss;
                        if record.source.is_none() || !member.rollup {
                            record.source = Some(m.source);
                        }
                        record.last_seen = t;
                        record.kernel_peak_rss = record.kernel_peak_rss.max(m.peak_rss);
                        record.peak.update(m.rss, m.pss, m.uss, m.swap);
                        record.samples.push(ProcessSample {
                            t,
                            rss: m.rss,
                            pss: m.pss,
                            uss: m.uss,
                            swap: m.swap,
                        });
                        total.rss += m.rss;
                        total.pss = total.pss.zip(m.pss).map(|(a, b)| a + b);
                        total.uss = total.uss.zip(m.uss).map(|(a, b)| a + b);
                        total.swap = total.swap.zip(m.swap).map(|(a, b)| a + b);
                        total.processes += 1;
                        // A fork shows its parent's command line until it execs: look again a few
                        // times early in its life.
                        member.age += 1;
                        if member.age.is_power_of_two() && member.age <= 64 {
                            let comm = read_stat(&opts.proc_root, pid)
                                .map(|s| s.comm)
                                .unwrap_or_default();
                            let command = read_cmdline(&opts.proc_root, pid, &comm);
                            if !command.is_empty() && command != [format!("[{comm}]")] {
                                record.command = command;
                            }
                        }
                    }
                    Err(Error::NoSuchProcess { .. }) => {
                        record.exited = true;
                        gone.push(pid);
                    }
                    Err(err) => {
                        rec.warnings
                            .push(format!("process {pid}: {err}; no longer followed"));
                        gone.push(pid);
                    }
                }
            }
            for pid in gone {
                members.remove(&pid);
                member_set.remove(&pid);
            }
            if full {
                let now = Instant::now();
                next_full = match opts.pss_interval {
                    Some(every) => now + every.saturating_sub(opts.interval / 2),
                    // Space the walks so they cost at most PSS_BUDGET of one core, and happen at
                    // least once a minute.
                    None => now + walk.div_f64(PSS_BUDGET).min(Duration::from_secs(60)),
                };
            }
            if total.processes > 0 {
                if let Some(th) = rec.threshold.as_mut()
                    && total.rss >= th.bytes
                {
                    th.samples_above += 1;
                    if th.first_crossed.is_none() {
                        th.first_crossed = Some(t);
                        let event = Event::ThresholdCrossed {
                            t,
                            rss: total.rss,
                            threshold: th.bytes,
                        };
                        observer.on_event(&event);
                    }
                }
                rec.samples.push(total);
                rec.duration_s = t;
                observer.on_sample(&rec);
            }

            // Has the command ended?
            if child && (child_exit.is_none() || adopt) {
                match poll_root(root, adopt) {
                    Ok(Some(exit)) if child_exit.is_none() => {
                        child_exit = Some(exit);
                        command_ended(
                            &mut rec,
                            &mut members,
                            &mut member_set,
                            root,
                            exit,
                            observer,
                        );
                    }
                    Ok(_) => {}
                    Err(err) => {
                        error = Some(err);
                        break StopReason::Failed;
                    }
                }
            }

            // Should we stop?
            if member_set.is_empty() && (!child || child_exit.is_some()) {
                if stop_deadline.is_some() {
                    break StopReason::Interrupted;
                }
                break StopReason::Exited;
            }
            if opts.duration.is_some_and(|limit| start.elapsed() >= limit) {
                break StopReason::Duration;
            }
            if stop_deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                break StopReason::Interrupted;
            }
            if let Some(sig) = signals.received()
                && sig.count > handled_signals
            {
                handled_signals = sig.count;
                let command_running = child && child_exit.is_none();
                if !command_running || stop_deadline.is_some() {
                    break StopReason::Interrupted;
                }
                // The terminal delivers Ctrl-C to the command too; anything else is passed on.
                if !sig.from_terminal {
                    sys::send_signal(root, sig.signal);
                }
                stop_deadline = Some(Instant::now() + opts.grace);
                observer.on_event(&Event::Stopping { signal: sig.signal });
            }

            // Sleep until the next tick; a stop signal or SIGCHLD cuts the sleep short, so the
            // command's exit and Ctrl-C are noticed at once. Ticks stay on the interval grid;
            // ticks missed on a slow machine are skipped rather than bunched.
            tick =
                tick.max((start.elapsed().as_secs_f64() / opts.interval.as_secs_f64()) as u64) + 1;
            let next = start + opts.interval.mul_f64(tick as f64);
            let end = opts.duration.map(|limit| start + limit);
            loop {
                let now = Instant::now();
                if now >= next || end.is_some_and(|end| now >= end) {
                    break;
                }
                if signals
                    .received()
                    .is_some_and(|s| s.count > handled_signals)
                {
                    break;
                }
                if child
                    && child_exit.is_none()
                    && let Ok(Some(exit)) = poll_root(root, adopt)
                {
                    child_exit = Some(exit);
                    command_ended(
                        &mut rec,
                        &mut members,
                        &mut member_set,
                        root,
                        exit,
                        observer,
                    );
                    // One more look: the command may have left descendants behind.
                    break;
                }
                let until = end.map_or(next, |end| end.min(next));
                sys::sleep_interruptible(until - now);
            }
        };

        if adopt {
            // Later orphans go back to init; those adopted meanwhile stay ours until we exit.
            let _ = sys::set_child_subreaper(false);
        }
        rec.stop = stop;
        rec.duration_s = round_ms(start.elapsed().as_secs_f64());
        rec.exit = child_exit;
        if let Some(err) = &error {
            rec.error = Some(err.to_string());
        }
        let running = (child && child_exit.is_none()).then(|| RunningCommand {
            pid: root,
            signals,
            signals_seen: handled_signals,
        });
        Outcome {
            recording: rec,
            error,
            running,
        }
    }
}

/// Records the end of the launched command and stops following it.
fn command_ended(
    rec: &mut Recording,
    members: &mut HashMap<u32, Member>,
    member_set: &mut HashSet<u32>,
    root: u32,
    exit: CommandExit,
    observer: &mut dyn Observer,
) {
    if let Some(member) = members.remove(&root) {
        rec.processes[member.index].exited = true;
    }
    member_set.remove(&root);
    if !member_set.is_empty() {
        observer.on_event(&Event::CommandExited {
            exit,
            remaining: member_set.len(),
        });
    }
}

fn new_record(pid: u32, ppid: u32, command: Vec<String>, t: f64) -> ProcessRecord {
    ProcessRecord {
        pid,
        ppid,
        command,
        first_seen: t,
        last_seen: t,
        exited: false,
        source: None,
        peak: Peaks::default(),
        kernel_peak_rss: None,
        samples: Vec::new(),
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count {
        samples: usize,
        events: Vec<Event>,
    }

    impl Observer for Count {
        fn on_sample(&mut self, _: &Recording) {
            self.samples += 1;
        }
        fn on_event(&mut self, event: &Event) {
            self.events.push(event.clone());
        }
    }

    #[test]
    fn follows_a_command_and_its_child_to_the_end() {
        let monitor = Monitor::builder()
            .interval(Duration::from_millis(20))
            .threshold(Some(1))
            .build()
            .unwrap();
        let argv = ["sh", "-c", "sleep 0.3; exit 3"]
            .map(OsString::from)
            .to_vec();
        let mut count = Count::default();
        let outcome = monitor.run(&Target::Command(argv), &mut count);
        let rec = &outcome.recording;
        assert!(outcome.error.is_none() && outcome.running.is_none());
        assert_eq!(rec.stop, StopReason::Exited);
        assert_eq!(rec.exit.map(|e| e.status()), Some(3));
        assert_eq!(count.samples, rec.samples.len());
        assert!(rec.samples.len() >= 3, "{}", rec.samples.len());
        assert!(
            rec.processes
                .iter()
                .any(|p| p.command[0].ends_with("sleep") && p.exited)
        );
        assert!(matches!(
            count.events[0],
            Event::ThresholdCrossed { threshold: 1, .. }
        ));
        // Samples are on the interval grid (to the millisecond), in order.
        assert!(rec.samples.windows(2).all(|w| w[0].t < w[1].t));
    }

    #[test]
    fn rejects_bad_options_and_missing_processes() {
        assert!(Monitor::builder().interval(Duration::ZERO).build().is_err());
        assert!(
            Monitor::builder()
                .duration(Some(Duration::ZERO))
                .build()
                .is_err()
        );
        let monitor = Monitor::builder().build().unwrap();
        let outcome = monitor.run(&Target::Pid(u32::MAX - 1), &mut ());
        assert!(matches!(outcome.error, Some(Error::NoSuchProcess { .. })));
        assert_eq!(outcome.recording.stop, StopReason::Failed);
        assert!(outcome.recording.samples.is_empty());
        let outcome = monitor.run(&Target::Command(Vec::new()), &mut ());
        assert!(matches!(outcome.error, Some(Error::InvalidOption(_))));
    }
}
