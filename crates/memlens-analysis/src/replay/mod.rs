//! One pass over a capture's records: the live set, per-stack figures, the peak set, the leak
//! window, temporaries, moments and the timeline.
//!
//! Figures are kept per *slot*: one allocating stack on one thread. The peak set is the live
//! set at the last `Peak` record. Rather than copying every slot's live figure at each mark, a
//! slot saves its figure lazily the first time it changes after a mark (copy-on-write by
//! epoch), so each event costs O(1) however many marks there are.

mod build;
mod decode;
pub(crate) mod gc;
mod live;
mod tables;

use std::collections::HashMap;

use memlens_format::{Mode, Reader, Record};

use crate::AnalysisError;
use crate::model::{
    CheckpointMark, LeakWindow, Location, Meta, Report, Timeline, TimelinePoint, Totals,
};
use live::{Block, FoldMap, IN_WINDOW, LiveBlocks};
use tables::Tables;

/// When a freed block counts as temporary.
///
/// A block is temporary when it is freed within `max_allocations` further allocations *and*
/// within `max_ms` milliseconds of its allocation; a bound that is `None` does not apply, so
/// when both are given the stricter one decides. Allocation counts are estimates in sampling
/// mode (each sampled block counts for the allocations it stands for). Times come from the
/// tracker's counter samples (one every 20 ms), so `max_ms` has that resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemporaryRule {
    /// Most allocations made between a block's allocation and its free.
    pub max_allocations: Option<u64>,
    /// Most milliseconds between a block's allocation and its free.
    pub max_ms: Option<f64>,
}

impl Default for TemporaryRule {
    /// Freed within 1000 further allocations: about one iteration of a loop that does real
    /// work, while data kept from one phase of a program to the next is not temporary.
    fn default() -> Self {
        TemporaryRule {
            max_allocations: Some(1000),
            max_ms: None,
        }
    }
}

impl TemporaryRule {
    fn holds(&self, further_allocations: f64, age_ns: u64) -> bool {
        self.max_allocations
            .is_none_or(|n| further_allocations <= n as f64)
            && self.max_ms.is_none_or(|ms| age_ns as f64 <= ms * 1e6)
    }
}

/// Analysis settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most timeline points kept.
    pub max_timeline_points: usize,
    /// What the temporary view counts.
    pub temporary: TemporaryRule,
    /// The leaks view counts blocks allocated after the first checkpoint with this label
    /// (from the start when `None`) ...
    pub leaks_from: Option<String>,
    /// ... and still live at the first checkpoint with this label after that (at exit when
    /// `None`).
    pub leaks_to: Option<String>,
    /// Most moments (live sets along the timeline) kept; between half this and this many are
    /// kept, evenly spaced in time.
    pub max_moments: usize,
    /// Most stacks listed per moment (the heaviest); the rest is the moment's exact live total
    /// minus their sum.
    pub max_moment_values: usize,
    /// Threads decoding chunks beside the replay; `None` picks one per spare core.
    pub workers: Option<usize>,
}

impl Default for Options {
    /// 2000 timeline points; moments: 64 of at most 200 stacks each. A timeline drawn about
    /// 1000 pixels wide then has a moment every 15-30 pixels, and the moments together stay
    /// under 13k figures (about half a megabyte of JSON), which keeps reports small however
    /// long the run.
    fn default() -> Self {
        Options {
            max_timeline_points: 2000,
            temporary: TemporaryRule::default(),
            leaks_from: None,
            leaks_to: None,
            max_moments: 64,
            max_moment_values: 200,
            workers: None,
        }
    }
}

/// How far the analysis has got, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the capture replayed so far.
    pub done_bytes: u64,
    /// Size of the capture.
    pub total_bytes: u64,
}

/// Figures of one allocating stack on one thread.
#[derive(Clone, Copy, Default)]
struct Slot {
    stack: u32,
    thread: u32,
    /// The site (line) this slot's figures count for, an index into `Replay::sites`.
    site: u32,
    live_bytes: f64,
    live_count: f64,
    allocated_bytes: f64,
    allocations: f64,
    temporary_bytes: f64,
    temporary_count: f64,
    /// Live figures at the latest peak mark, valid when `saved_epoch` is the current epoch.
    saved_bytes: f64,
    saved_count: f64,
    saved_epoch: u32,
    /// Live figures of blocks allocated inside the leak window.
    window_bytes: f64,
    window_count: f64,
    /// `window_*` as the window closed.
    leaked_bytes: f64,
    leaked_count: f64,
}

impl Slot {
    fn peak(&self, last_epoch: u32) -> (f64, f64) {
        if self.saved_epoch == last_epoch {
            (self.saved_bytes, self.saved_count)
        } else {
            (self.live_bytes, self.live_count)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Waiting for the `from` checkpoint.
    Before,
    Open,
    Closed,
}

/// A moment as replayed: slot figures, heaviest first.
struct RawMoment {
    time_ns: u64,
    live_bytes: u64,
    values: Vec<(u32, f64, f64)>,
}

struct ThreadSeen {
    capture_id: u32,
    native_id: u64,
    name: Option<u32>,
}

/// A line's live figure through the run, for its high-water mark.
#[derive(Clone, Copy, Default)]
struct SiteLive {
    live_bytes: f64,
    high_water_bytes: f64,
}

struct Replay<'o> {
    options: &'o Options,
    /// The capture's library prefixes: a site is the innermost frame outside them.
    prefixes: Vec<String>,
    /// Sites by line, found when each slot is first seen.
    site_index: HashMap<Location, u32>,
    sites: Vec<SiteLive>,
    frame_locations: HashMap<u32, Location>,
    exact: bool,
    rate: f64,
    tables: Tables,
    slots: Vec<Slot>,
    slot_index: FoldMap<u64, u32>,
    last_slot: Option<(u64, u32)>,
    live: LiveBlocks,
    epoch: u32,
    allocation_counter: f64,
    /// Allocation events replayed (wrapping), for `Block::seq`.
    alloc_events: u32,
    alloc_events_total: u64,
    now_ns: u64,
    /// Times of the counter samples seen, starting with 0 (before the first).
    tick_times: Vec<u64>,
    timeline: Timeline,
    totals: Totals,
    events: u64,
    ended: bool,
    threads: Vec<ThreadSeen>,
    thread_index: HashMap<u32, u32>,
    current_thread: Option<u32>,
    checkpoints: Vec<CheckpointMark>,
    window: Window,
    window_times: (Option<f64>, Option<f64>),
    moments: Vec<RawMoment>,
    counters_seen: u64,
    moment_stride: u64,
    chunk_offset: u64,
}

/// Replays `capture` into a report.
pub fn analyze(capture: &[u8], options: &Options) -> Result<Report, AnalysisError> {
    analyze_with_progress(capture, options, &mut |_| {})
}

/// [`analyze`], calling `progress` after each chunk.
pub fn analyze_with_progress(
    capture: &[u8],
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, AnalysisError> {
    let reader = Reader::new(capture)?;
    let header = reader.header().clone();
    let mut replay = Replay {
        options,
        prefixes: header.library_prefixes.clone(),
        site_index: HashMap::new(),
        sites: Vec::new(),
        frame_locations: HashMap::new(),
        exact: header.mode == Mode::Exact,
        rate: header.sample_rate.max(1) as f64,
        tables: Tables::default(),
        slots: Vec::new(),
        slot_index: HashMap::default(),
        last_slot: None,
        live: LiveBlocks::default(),
        epoch: 0,
        allocation_counter: 0.0,
        alloc_events: 0,
        alloc_events_total: 0,
        now_ns: 0,
        tick_times: vec![0],
        timeline: Vec::new(),
        totals: Totals::default(),
        events: 0,
        ended: false,
        threads: Vec::new(),
        thread_index: HashMap::new(),
        current_thread: None,
        checkpoints: Vec::new(),
        window: if options.leaks_from.is_some() {
            Window::Before
        } else {
            Window::Open
        },
        window_times: (None, None),
        moments: Vec::new(),
        counters_seen: 0,
        moment_stride: 1,
        chunk_offset: 0,
    };
    let workers = options.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(0, |n| n.get().saturating_sub(1))
    });
    let total_bytes = capture.len() as u64;
    let mut warning = None;
    decode::for_each_chunk(&reader, workers, |chunk| {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) if e.is_truncation() => {
                warning = Some(format!(
                    "{e}; reporting everything recorded before it (was the process killed?)"
                ));
                return Ok(false);
            }
            Err(e) => return Err(AnalysisError::from(e)),
        };
        replay.chunk_offset = chunk.offset;
        for event in chunk.events {
            match event {
                decode::Event::Alloc { addr, size, stack } => replay.alloc(addr, size, stack),
                decode::Event::Free(addr) => replay.free_at(addr),
                decode::Event::Peak => replay.record(Record::Peak)?,
                decode::Event::Other(record) => replay.record(*record)?,
            }
        }
        progress(Progress {
            done_bytes: chunk.end,
            total_bytes,
        });
        Ok(true)
    })?;
    if !replay.ended && warning.is_none() {
        warning = Some(
            "capture has no end marker (tracking did not stop cleanly); reporting what was written"
                .into(),
        );
    }
    replay.finish_window()?;
    let meta = Meta {
        command: header.command.clone(),
        python: header.python_version.clone(),
        pid: header.pid,
        mode: header.mode.name().to_owned(),
        sample_rate: header.sample_rate,
        duration_s: replay.now_ns as f64 / 1e9,
        events: replay.events,
        warning,
        dropped_events: reader.dropped_events(),
        sites_estimated: header.mode != Mode::Exact,
        start_unix_ns: header.start_unix_ns,
        processes: 1,
    };
    let mut report = build::report(replay, meta, &header.library_prefixes);
    report.findings = crate::findings::check(&report);
    Ok(report)
}

impl Replay<'_> {
    fn weigh(&self, size: u64) -> (f64, f64) {
        if self.exact {
            return (size as f64, 1.0);
        }
        let p = 1.0 - (-(size as f64) / self.rate).exp();
        if p <= 0.0 {
            (0.0, 0.0)
        } else {
            (size as f64 / p, 1.0 / p)
        }
    }

    fn thread(&mut self, capture_id: u32) -> u32 {
        if let Some(&i) = self.thread_index.get(&capture_id) {
            return i;
        }
        let i = self.threads.len() as u32;
        self.threads.push(ThreadSeen {
            capture_id,
            native_id: 0,
            name: None,
        });
        self.thread_index.insert(capture_id, i);
        i
    }

    fn slot(&mut self, stack: u32) -> u32 {
        let thread = match self.current_thread {
            Some(t) => t,
            None => {
                let t = self.thread(0);
                self.current_thread = Some(t);
                t
            }
        };
        let key = u64::from(stack) | (u64::from(thread) << 32);
        if let Some((k, s)) = self.last_slot
            && k == key
        {
            return s;
        }
        // Slot indices leave the top bit free for `Block::slot_and_window`.
        let next = (self.slots.len() as u32).min(IN_WINDOW - 1);
        let s = *self.slot_index.entry(key).or_insert(next);
        if s as usize == self.slots.len() {
            let location = build::site_location(
                &self.tables,
                stack,
                &self.prefixes,
                &mut self.frame_locations,
            );
            let next_site = self.sites.len() as u32;
            let site = *self.site_index.entry(location).or_insert(next_site);
            if site == next_site {
                self.sites.push(SiteLive::default());
            }
            self.slots.push(Slot {
                stack,
                thread,
                site,
                ..Slot::default()
            });
        }
        self.last_slot = Some((key, s));
        s
    }

    /// Changes a slot's live figures, first saving those it had at the latest peak mark.
    fn adjust(&mut self, slot: u32, bytes: f64, count: f64) {
        let epoch = self.epoch;
        let s = &mut self.slots[slot as usize];
        if s.saved_epoch != epoch {
            s.saved_bytes = s.live_bytes;
            s.saved_count = s.live_count;
            s.saved_epoch = epoch;
        }
        s.live_bytes += bytes;
        s.live_count += count;
        let site = &mut self.sites[s.site as usize];
        site.live_bytes += bytes;
        site.high_water_bytes = site.high_water_bytes.max(site.live_bytes);
    }

    fn free(&mut self, block: Block, temporary: bool) {
        let (bytes, count) = self.weigh(block.size);
        self.adjust(block.slot(), -bytes, -count);
        let in_window = block.in_window() && self.window == Window::Open;
        let s = &mut self.slots[block.slot() as usize];
        if in_window {
            s.window_bytes -= bytes;
            s.window_count -= count;
        }
        if temporary {
            s.temporary_bytes += bytes;
            s.temporary_count += count;
        }
    }

    fn alloc(&mut self, addr: u64, size: u64, stack: u32) {
        self.events += 1;
        let (bytes, count) = self.weigh(size);
        let slot = self.slot(stack);
        self.allocation_counter += count;
        self.alloc_events = self.alloc_events.wrapping_add(1);
        self.alloc_events_total += 1;
        let in_window = self.window == Window::Open;
        let block = Block {
            size,
            slot_and_window: slot | if in_window { IN_WINDOW } else { 0 },
            tick: (self.tick_times.len() - 1) as u32,
            seq: self.alloc_events,
        };
        if let Some(old) = self.live.insert(addr, block) {
            // A block we missed the free of (its free raced the stop): drop it.
            self.free(old, false);
        }
        let s = &mut self.slots[slot as usize];
        s.allocated_bytes += bytes;
        s.allocations += count;
        if in_window {
            s.window_bytes += bytes;
            s.window_count += count;
        }
        self.adjust(slot, bytes, count);
    }

    fn free_at(&mut self, addr: u64) {
        self.events += 1;
        if let Some(old) = self.live.remove(addr) {
            let allocated_at = self.tick_times[old.tick as usize];
            // Further allocation events, weighed by the allocations each stands for
            // (1 in exact mode; on average in sampling mode).
            let per_event = if self.exact {
                1.0
            } else {
                self.allocation_counter / self.alloc_events_total.max(1) as f64
            };
            let further = f64::from(self.alloc_events.wrapping_sub(old.seq)) * per_event;
            let temporary = self
                .options
                .temporary
                .holds(further, self.now_ns.saturating_sub(allocated_at));
            self.free(old, temporary);
        }
    }

    fn record(&mut self, record: Record) -> Result<(), AnalysisError> {
        let at = self.chunk_offset;
        let Some(record) = self.tables.define(record, at)? else {
            return Ok(());
        };
        match record {
            Record::Alloc {
                addr, size, stack, ..
            } => self.alloc(addr, size, stack),
            Record::Free { addr } => self.free_at(addr),
            Record::Peak => self.epoch = self.epoch.wrapping_add(1),
            Record::Counters {
                time_ns,
                live,
                peak,
                allocated,
                allocations,
                rss,
            } => self.counters(time_ns, live, peak, allocated, allocations, rss),
            Record::Thread {
                id,
                native_id,
                name,
            } => {
                let i = self.thread(id) as usize;
                self.threads[i].native_id = native_id;
                self.threads[i].name = Some(name);
            }
            Record::SwitchThread(id) => self.current_thread = Some(self.thread(id)),
            Record::Checkpoint(label) => self.checkpoint(label),
            // The collector's records: `crate::gc` reads them.
            Record::GcStart { .. }
            | Record::GcStop { .. }
            | Record::GcUncollectable(_)
            | Record::GcEnabled { .. }
            | Record::GcFinal { .. } => {}
            Record::End => self.ended = true,
            Record::String { .. }
            | Record::Function { .. }
            | Record::Frame { .. }
            | Record::Stack { .. } => unreachable!("definitions are taken by Tables::define"),
        }
        Ok(())
    }

    fn counters(
        &mut self,
        time_ns: u64,
        live: u64,
        peak: u64,
        allocated: u64,
        allocations: u64,
        rss: u64,
    ) {
        let t = &mut self.totals;
        if peak > t.peak_bytes {
            t.peak_time_s = time_ns as f64 / 1e9;
        }
        t.peak_bytes = t.peak_bytes.max(peak);
        t.leaked_bytes = live;
        t.allocated_bytes = allocated;
        t.allocations = allocations;
        t.rss_peak_bytes = t.rss_peak_bytes.max(rss);
        self.now_ns = self.now_ns.max(time_ns);
        self.tick_times.push(self.now_ns);
        self.timeline.push(TimelinePoint {
            time_s: time_ns as f64 / 1e9,
            live_bytes: live,
            rss_bytes: rss,
        });
        if self.options.max_moments > 0 && self.counters_seen.is_multiple_of(self.moment_stride) {
            self.take_moment(time_ns, live);
            if self.moments.len() > self.options.max_moments {
                // Keep every other moment and take them half as often from now on.
                let mut i = 0;
                self.moments.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.moment_stride *= 2;
            }
        }
        self.counters_seen += 1;
    }

    fn take_moment(&mut self, time_ns: u64, live_bytes: u64) {
        let mut values: Vec<(u32, f64, f64)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live_bytes >= 0.5)
            .map(|(i, s)| (i as u32, s.live_bytes, s.live_count))
            .collect();
        let keep = self.options.max_moment_values;
        if values.len() > keep {
            if keep == 0 {
                values.clear();
            } else {
                values.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
                values.truncate(keep);
            }
        }
        values.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        self.moments.push(RawMoment {
            time_ns,
            live_bytes,
            values,
        });
    }

    fn checkpoint(&mut self, label: u32) {
        let text = self.tables.string(label).to_owned();
        let time_s = self.now_ns as f64 / 1e9;
        self.checkpoints.push(CheckpointMark {
            time_s,
            label: text.clone(),
        });
        match self.window {
            Window::Before if self.options.leaks_from.as_deref() == Some(text.as_str()) => {
                self.window = Window::Open;
                self.window_times.0 = Some(time_s);
            }
            Window::Open if self.options.leaks_to.as_deref() == Some(text.as_str()) => {
                self.close_window();
                self.window_times.1 = Some(time_s);
            }
            _ => {}
        }
    }

    fn close_window(&mut self) {
        for s in &mut self.slots {
            s.leaked_bytes = s.window_bytes;
            s.leaked_count = s.window_count;
        }
        self.window = Window::Closed;
    }

    /// Closes the leak window at exit, or says which checkpoint was never reached.
    fn finish_window(&mut self) -> Result<(), AnalysisError> {
        let missing = |label: &str| {
            let mut known: Vec<String> = Vec::new();
            for c in &self.checkpoints {
                if !known.contains(&c.label) {
                    known.push(c.label.clone());
                }
            }
            AnalysisError::NoCheckpoint {
                label: label.to_owned(),
                known,
            }
        };
        match (
            self.window,
            &self.options.leaks_from,
            &self.options.leaks_to,
        ) {
            (Window::Before, Some(from), _) => Err(missing(from)),
            (Window::Open, _, Some(to)) => Err(missing(to)),
            (Window::Open, _, None) => {
                self.close_window();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn leak_window(&self) -> Option<LeakWindow> {
        if self.options.leaks_from.is_none() && self.options.leaks_to.is_none() {
            return None;
        }
        Some(LeakWindow {
            from: self.options.leaks_from.clone(),
            to: self.options.leaks_to.clone(),
            from_time_s: self.window_times.0.unwrap_or(0.0),
            to_time_s: self.window_times.1.unwrap_or(self.now_ns as f64 / 1e9),
        })
    }
}

/// Keeps at most `max` points, taking the highest live point of each bucket.
fn thin(points: Timeline, max: usize) -> Timeline {
    if points.len() <= max || max == 0 {
        return points;
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .filter_map(|c| c.iter().copied().max_by_key(|p| p.live_bytes))
        .collect()
}
