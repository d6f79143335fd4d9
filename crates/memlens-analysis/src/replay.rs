//! One pass over a capture's records: the live set, per-stack figures, the peak set and the
//! timeline.
//!
//! The peak set is the live set at the last `Peak` record. Rather than copying every stack's
//! live figure at each mark, a stack saves its figure lazily the first time it changes after
//! a mark (copy-on-write by epoch), so each event costs O(1) however many marks there are.

use std::collections::HashMap;

use memlens_format::{AddrMap, Mode, Reader, Record};

use crate::AnalysisError;
use crate::model::{Location, Meta, Report, Site, Timeline, TimelinePoint, Totals};

/// Analysis settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most timeline points kept.
    pub max_timeline_points: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_timeline_points: 2000,
        }
    }
}

#[derive(Clone, Copy)]
struct Block {
    stack: u32,
    bytes: f64,
}

#[derive(Clone, Copy, Default)]
struct StackFigures {
    live_bytes: f64,
    allocated_bytes: f64,
    allocations: f64,
    saved_bytes: f64,
    saved_epoch: u32,
}

struct Function {
    qualname: u32,
    file: u32,
}

#[derive(Default)]
struct Tables {
    strings: Vec<String>,
    functions: Vec<Option<Function>>,
    frames: Vec<Option<(u32, u32)>>,
    stacks: Vec<(u32, u32)>,
}

fn put<T: Default>(v: &mut Vec<T>, id: u32, value: T) {
    let i = id as usize;
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    v[i] = value;
}

impl Tables {
    fn string(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("?", String::as_str)
    }

    fn location(&self, frame: u32) -> Location {
        match self.frames.get(frame as usize).and_then(Option::as_ref) {
            Some(&(function, line)) => match self
                .functions
                .get(function as usize)
                .and_then(Option::as_ref)
            {
                Some(f) => Location {
                    file: self.string(f.file).to_owned(),
                    line,
                    function: self.string(f.qualname).to_owned(),
                },
                None => Location {
                    file: "?".into(),
                    line,
                    function: "?".into(),
                },
            },
            None => Location {
                file: "?".into(),
                line: 0,
                function: "?".into(),
            },
        }
    }

    /// Frames of `stack`, innermost first.
    fn frames_of(&self, mut stack: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while stack != 0 && out.len() < 10_000 {
            let Some(&(parent, frame)) = self.stacks.get(stack as usize) else {
                break;
            };
            out.push(frame);
            stack = parent;
        }
        out
    }
}

/// Replays `capture` into a report.
pub fn analyze(capture: &[u8], options: &Options) -> Result<Report, AnalysisError> {
    let reader = Reader::new(capture)?;
    let header = reader.header().clone();
    let exact = header.mode == Mode::Exact;
    let rate = header.sample_rate.max(1) as f64;
    let weigh = |size: u64| -> (f64, f64) {
        if exact {
            return (size as f64, 1.0);
        }
        let p = 1.0 - (-(size as f64) / rate).exp();
        if p <= 0.0 {
            (0.0, 0.0)
        } else {
            (size as f64 / p, 1.0 / p)
        }
    };

    let mut tables = Tables::default();
    let mut stacks: Vec<StackFigures> = Vec::new();
    let mut live: AddrMap<Block> = AddrMap::default();
    let mut epoch = 0u32;
    let mut timeline: Timeline = Vec::new();
    let mut totals = Totals::default();
    let mut last_time_ns = 0u64;
    let mut warning = None;
    let mut ended = false;
    let mut events = 0u64;

    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) if e.is_truncation() => {
                warning = Some(format!(
                    "{e}; reporting everything recorded before it (was the process killed?)"
                ));
                break;
            }
            Err(e) => return Err(e.into()),
        };
        match record {
            Record::Alloc {
                addr, size, stack, ..
            } => {
                events += 1;
                let (bytes, count) = weigh(size);
                if let Some(old) = live.insert(addr, Block { stack, bytes }) {
                    // A block we missed the free of (its free raced the stop): drop it.
                    adjust(&mut stacks, old.stack, -old.bytes, epoch);
                }
                let s = figures(&mut stacks, stack);
                s.allocated_bytes += bytes;
                s.allocations += count;
                adjust(&mut stacks, stack, bytes, epoch);
            }
            Record::Free { addr } => {
                events += 1;
                if let Some(old) = live.remove(&addr) {
                    adjust(&mut stacks, old.stack, -old.bytes, epoch);
                }
            }
            Record::Peak => epoch += 1,
            Record::Counters {
                time_ns,
                live: live_bytes,
                peak,
                allocated,
                allocations,
                rss,
            } => {
                if peak > totals.peak_bytes {
                    totals.peak_time_s = time_ns as f64 / 1e9;
                }
                totals.peak_bytes = totals.peak_bytes.max(peak);
                totals.leaked_bytes = live_bytes;
                totals.allocated_bytes = allocated;
                totals.allocations = allocations;
                totals.rss_peak_bytes = totals.rss_peak_bytes.max(rss);
                last_time_ns = time_ns;
                timeline.push(TimelinePoint {
                    time_s: time_ns as f64 / 1e9,
                    live_bytes,
                    rss_bytes: rss,
                });
            }
            Record::String { id, text } => put(&mut tables.strings, id, text),
            Record::Function {
                id, qualname, file, ..
            } => put(&mut tables.functions, id, Some(Function { qualname, file })),
            Record::Frame { id, function, line } => {
                put(&mut tables.frames, id, Some((function, line)))
            }
            Record::Stack { id, parent, frame } => put(&mut tables.stacks, id, (parent, frame)),
            Record::Thread { .. } | Record::SwitchThread(_) | Record::Checkpoint(_) => {}
            Record::End => ended = true,
        }
    }
    if !ended && warning.is_none() {
        warning = Some(
            "capture has no end marker (tracking did not stop cleanly); reporting what was written"
                .into(),
        );
    }

    let sites = aggregate_sites(&tables, &stacks, epoch, &header.library_prefixes);
    let meta = Meta {
        command: header.command.clone(),
        python: header.python_version.clone(),
        pid: header.pid,
        mode: header.mode.name().to_owned(),
        sample_rate: header.sample_rate,
        duration_s: last_time_ns as f64 / 1e9,
        events,
        warning,
    };
    let mut report = Report {
        meta,
        totals,
        sites,
        timeline: thin(timeline, options.max_timeline_points),
        findings: Vec::new(),
        ..Report::default()
    };
    report.findings = crate::findings::check(&report);
    Ok(report)
}

fn figures(stacks: &mut Vec<StackFigures>, stack: u32) -> &mut StackFigures {
    let i = stack as usize;
    if stacks.len() <= i {
        stacks.resize(i + 1, StackFigures::default());
    }
    &mut stacks[i]
}

/// Changes a stack's live bytes, first saving the figure it had at the latest peak mark.
fn adjust(stacks: &mut Vec<StackFigures>, stack: u32, delta: f64, epoch: u32) {
    let s = figures(stacks, stack);
    if s.saved_epoch != epoch {
        s.saved_bytes = s.live_bytes;
        s.saved_epoch = epoch;
    }
    s.live_bytes += delta;
}

fn is_library(file: &str, prefixes: &[String]) -> bool {
    file.starts_with("<frozen")
        || prefixes
            .iter()
            .any(|p| !p.is_empty() && file.starts_with(p.as_str()))
}

fn aggregate_sites(
    tables: &Tables,
    stacks: &[StackFigures],
    last_epoch: u32,
    prefixes: &[String],
) -> Vec<Site> {
    struct Acc {
        site: Site,
        best: f64,
        best_stack: u32,
    }
    let mut by_location: HashMap<Location, Acc> = HashMap::new();
    let mut frame_locations: HashMap<u32, Location> = HashMap::new();
    for (stack_id, s) in stacks.iter().enumerate() {
        let at_peak = if s.saved_epoch == last_epoch {
            s.saved_bytes
        } else {
            s.live_bytes
        };
        if s.allocated_bytes <= 0.0 && at_peak <= 0.0 && s.live_bytes <= 0.0 {
            continue;
        }
        let frames = tables.frames_of(stack_id as u32);
        let mut site_frame = None;
        for &f in &frames {
            let loc = frame_locations
                .entry(f)
                .or_insert_with(|| tables.location(f));
            if !is_library(&loc.file, prefixes) {
                site_frame = Some(f);
                break;
            }
        }
        let location = match site_frame.or_else(|| frames.first().copied()) {
            Some(f) => frame_locations[&f].clone(),
            None => Location {
                file: "<native>".into(),
                line: 0,
                function: "<no Python frame>".into(),
            },
        };
        let acc = by_location.entry(location.clone()).or_insert_with(|| Acc {
            site: Site {
                location,
                peak_bytes: 0,
                leaked_bytes: 0,
                allocated_bytes: 0,
                allocations: 0,
                temporary_bytes: 0,
                stack: Vec::new(),
            },
            best: -1.0,
            best_stack: 0,
        });
        acc.site.peak_bytes += at_peak.max(0.0).round() as u64;
        acc.site.leaked_bytes += s.live_bytes.max(0.0).round() as u64;
        acc.site.allocated_bytes += s.allocated_bytes.round() as u64;
        acc.site.allocations += s.allocations.round() as u64;
        let weight = at_peak.max(0.0) * 4.0 + s.allocated_bytes;
        if weight > acc.best {
            acc.best = weight;
            acc.best_stack = stack_id as u32;
        }
    }
    by_location
        .into_values()
        .map(|mut acc| {
            acc.site.stack = tables
                .frames_of(acc.best_stack)
                .into_iter()
                .map(|f| tables.location(f))
                .collect();
            acc.site
        })
        .collect()
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
