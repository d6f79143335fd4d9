//! The garbage collector's work in a capture (`memlens gc`).
//!
//! The tracker writes each collection's start and stop (from `gc.callbacks`) in order with the
//! frees of the thread that collects, each carrying the session's exact count of bytes freed so
//! far. So a collection's pause is the time between its two records, and what it reclaimed is
//! the difference of the two counts: the memory that only the cyclic collector could free
//! (reference counting frees everything else at once). In an exact capture every block freed
//! between the two records is known, so that memory is attributed to the lines that allocated
//! it: the lines that build reference cycles. In a sampling capture the same attribution is made
//! from the sampled blocks and marked as an estimate.
//!
//! A separate pass, read only by `memlens gc` and the HTML report's GC panel, so the main
//! replay pays nothing for it.

use std::collections::HashMap;

use memlens_format::{Mode, Reader, Record};

use super::build::is_library;
use super::decode::{self, Event};
use super::tables::Tables;
use crate::AnalysisError;
use crate::model::Location;

/// One generation's collections (a collection of generation 2 also collects 0 and 1, and
/// counts only here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcGeneration {
    /// 0, 1 or 2.
    pub generation: u8,
    /// Collections of this generation.
    pub collections: u64,
    /// Unreachable objects they freed.
    pub collected: u64,
    /// Unreachable objects they could not free.
    pub uncollectable: u64,
    /// Bytes they freed (as [`CyclicGarbage::bytes`]).
    pub freed_bytes: u64,
    /// Time the program was paused by them.
    pub pause_total_s: f64,
    /// The longest of them.
    pub pause_max_s: f64,
}

/// The distribution of pauses over every collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcPauses {
    /// Collections.
    pub count: u64,
    /// Time in collections.
    pub total_s: f64,
    /// The longest collection.
    pub max_s: f64,
    /// Median pause.
    pub p50_s: f64,
    /// 99th percentile pause.
    pub p99_s: f64,
}

/// A line whose allocations the collector reclaimed.
#[derive(Debug, Clone, PartialEq)]
pub struct GcSite {
    /// The innermost frame of the user's own code that allocated.
    pub location: Location,
    /// Bytes of its blocks that collections freed (an estimate in sampling captures).
    pub bytes: u64,
    /// How many such blocks (an estimate in sampling captures).
    pub blocks: u64,
}

/// Memory freed by collections: what reference counting could not free.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CyclicGarbage {
    /// Bytes freed by collections that found garbage (exact in both modes: in exact captures
    /// the garbage blocks themselves, in sampling captures every byte freed meanwhile).
    pub bytes: u64,
    /// Objects collected (the collector's own count).
    pub objects: u64,
    /// Where that memory was allocated, most first.
    pub sites: Vec<GcSite>,
    /// True when `sites` are estimated from samples.
    pub sites_estimated: bool,
}

/// What the collector did during a capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    /// False when the capture holds no collector records (a capture older than this
    /// analysis, or one so short that nothing was recorded).
    pub recorded: bool,
    /// `exact` or `sampling`.
    pub mode: String,
    /// Length of the capture.
    pub duration_s: f64,
    /// Generations 0, 1 and 2.
    pub generations: Vec<GcGeneration>,
    /// Every collection's pause.
    pub pauses: GcPauses,
    /// Memory the collections freed, and where it came from.
    pub cyclic_garbage: CyclicGarbage,
    /// Time with automatic collection off (`gc.disable()`).
    pub disabled_s: f64,
    /// Whether automatic collection was on when tracking stopped (`None`: not recorded).
    pub enabled_at_end: Option<bool>,
    /// Objects in `gc.garbage` when tracking stopped.
    pub garbage: Option<u64>,
    /// Objects frozen by `gc.freeze()` when tracking stopped.
    pub frozen: Option<u64>,
}

/// In exact captures, blocks among a thread's last this many allocations before a collection
/// starts are not its garbage but the collector's bookkeeping: CPython builds the dict it
/// passes to `gc.callbacks` (memlens's entry among them) just before, and frees it during, the
/// collection. Garbage is older than that: it was unreachable before the collection began.
const BOOKKEEPING_ALLOCS: u64 = 16;

struct Open {
    thread: u32,
    /// The thread's allocation count when the collection started.
    allocs_at_start: u64,
    generation: u8,
    time_ns: u64,
    freed: u64,
}

#[derive(Default)]
struct StackFreed {
    bytes: f64,
    blocks: f64,
}

/// Reads the collector's records of `capture`.
pub fn analyze_gc(capture: &[u8]) -> Result<GcReport, AnalysisError> {
    let reader = Reader::new(capture)?;
    let header = reader.header().clone();
    let exact = header.mode == Mode::Exact;
    let rate = header.sample_rate.max(1) as f64;
    let mut tables = Tables::default();
    // Recorded blocks: size, stack, and the allocating thread's allocation count.
    let mut live: HashMap<u64, (u64, u32, u64)> = HashMap::new();
    let mut allocs_by_thread: HashMap<u32, u64> = HashMap::new();
    let mut freed_by_stack: HashMap<u32, StackFreed> = HashMap::new();
    let mut generations: Vec<GcGeneration> = (0..3)
        .map(|generation| GcGeneration {
            generation,
            ..GcGeneration::default()
        })
        .collect();
    let mut pauses: Vec<f64> = Vec::new();
    let mut report = GcReport {
        mode: header.mode.name().to_owned(),
        ..GcReport::default()
    };
    let mut thread = 0u32;
    let mut open: Option<Open> = None;
    // Frees of the collection running now, kept until it ends: a collection that found no
    // garbage freed only the collector's own bookkeeping (the dict `gc.callbacks` receive).
    let mut pending: Vec<(u32, f64, f64)> = Vec::new();
    let mut now_ns = 0u64;
    let mut disabled_since: Option<u64> = None;
    let mut disabled_ns = 0u64;
    let workers = std::thread::available_parallelism().map_or(0, |n| n.get().saturating_sub(1));
    decode::for_each_chunk(&reader, workers, |chunk| {
        let chunk = match chunk {
            Ok(c) => c,
            // What was written before a kill is reported, as `memlens report` does.
            Err(e) if e.is_truncation() => return Ok(false),
            Err(e) => return Err(AnalysisError::from(e)),
        };
        for event in chunk.events {
            match event {
                Event::Alloc { addr, size, stack } => {
                    let n = allocs_by_thread.entry(thread).or_default();
                    *n += 1;
                    live.insert(addr, (size, stack, *n));
                }
                Event::Free(addr) => {
                    let Some((size, stack, index)) = live.remove(&addr) else {
                        continue;
                    };
                    let collecting = open.as_ref().is_some_and(|o| {
                        o.thread == thread
                            && !(exact && index + BOOKKEEPING_ALLOCS > o.allocs_at_start)
                    });
                    if collecting {
                        let weight = if exact {
                            1.0
                        } else {
                            1.0 / (1.0 - (-(size as f64) / rate).exp()).max(f64::MIN_POSITIVE)
                        };
                        pending.push((stack, size as f64 * weight, weight));
                    }
                }
                Event::Peak => {}
                Event::Other(record) => match tables.define(*record, chunk.offset)? {
                    None => {}
                    Some(record) => match record {
                        Record::SwitchThread(id) => thread = id,
                        Record::Counters { time_ns, .. } => now_ns = now_ns.max(time_ns),
                        Record::GcStart {
                            generation,
                            time_ns,
                            freed,
                        } => {
                            report.recorded = true;
                            now_ns = now_ns.max(time_ns);
                            pending.clear();
                            open = Some(Open {
                                thread,
                                allocs_at_start: allocs_by_thread
                                    .get(&thread)
                                    .copied()
                                    .unwrap_or(0),
                                generation,
                                time_ns,
                                freed,
                            });
                        }
                        Record::GcStop {
                            generation,
                            time_ns,
                            freed,
                            collected,
                        } => {
                            report.recorded = true;
                            now_ns = now_ns.max(time_ns);
                            if let Some(o) = open.take().filter(|o| o.generation == generation) {
                                let pause = time_ns.saturating_sub(o.time_ns) as f64 / 1e9;
                                let g = &mut generations[usize::from(generation.min(2))];
                                g.collections += 1;
                                g.collected += collected;
                                if collected > 0 {
                                    // Exact: the blocks themselves, without the collector's own
                                    // bookkeeping or other threads' frees meanwhile. Sampling:
                                    // the exact count of bytes freed meanwhile.
                                    g.freed_bytes += if exact {
                                        pending.iter().map(|p| p.1 as u64).sum()
                                    } else {
                                        freed.saturating_sub(o.freed)
                                    };
                                    for (stack, bytes, blocks) in pending.drain(..) {
                                        let entry = freed_by_stack.entry(stack).or_default();
                                        entry.bytes += bytes;
                                        entry.blocks += blocks;
                                    }
                                }
                                g.pause_total_s += pause;
                                g.pause_max_s = g.pause_max_s.max(pause);
                                pauses.push(pause);
                            }
                        }
                        Record::GcUncollectable(count) => {
                            // It follows the stop of the collection that found them.
                            if let Some(g) =
                                generations.iter_mut().rev().find(|g| g.collections > 0)
                            {
                                g.uncollectable += count;
                            }
                        }
                        Record::GcEnabled { on, time_ns } => {
                            report.recorded = true;
                            now_ns = now_ns.max(time_ns);
                            match (on, disabled_since) {
                                (true, Some(since)) => {
                                    disabled_ns += time_ns.saturating_sub(since);
                                    disabled_since = None;
                                }
                                (false, None) => disabled_since = Some(time_ns),
                                _ => {}
                            }
                        }
                        Record::GcFinal {
                            garbage,
                            frozen,
                            enabled,
                        } => {
                            report.recorded = true;
                            report.garbage = Some(garbage);
                            report.frozen = Some(frozen);
                            report.enabled_at_end = Some(enabled);
                        }
                        _ => {}
                    },
                },
            }
        }
        Ok(true)
    })?;
    if let Some(since) = disabled_since {
        disabled_ns += now_ns.saturating_sub(since);
    }
    report.duration_s = now_ns as f64 / 1e9;
    report.disabled_s = disabled_ns as f64 / 1e9;
    report.pauses = pause_stats(&mut pauses);
    report.cyclic_garbage = CyclicGarbage {
        bytes: generations.iter().map(|g| g.freed_bytes).sum(),
        objects: generations.iter().map(|g| g.collected).sum(),
        sites: sites(&tables, freed_by_stack, &header.library_prefixes),
        sites_estimated: !exact,
    };
    report.generations = generations;
    Ok(report)
}

fn pause_stats(pauses: &mut [f64]) -> GcPauses {
    if pauses.is_empty() {
        return GcPauses::default();
    }
    pauses.sort_by(f64::total_cmp);
    // Nearest-rank percentiles: a pause that happened, never an interpolation.
    let rank =
        |q: f64| pauses[((q * pauses.len() as f64).ceil() as usize).clamp(1, pauses.len()) - 1];
    GcPauses {
        count: pauses.len() as u64,
        total_s: pauses.iter().sum(),
        max_s: pauses[pauses.len() - 1],
        p50_s: rank(0.5),
        p99_s: rank(0.99),
    }
}

/// Freed memory per line: each stack at its innermost frame of the user's own code (the
/// innermost frame when every frame is a library's), as the report's sites are.
fn sites(tables: &Tables, freed: HashMap<u32, StackFreed>, prefixes: &[String]) -> Vec<GcSite> {
    let mut per_line: HashMap<Location, StackFreed> = HashMap::new();
    for (stack, f) in freed {
        let frames = tables.frames_of(stack);
        let locations: Vec<Location> = frames.iter().map(|&fr| tables.location(fr)).collect();
        let location = locations
            .iter()
            .find(|l| !is_library(&l.file, prefixes))
            .or(locations.first())
            .cloned()
            .unwrap_or(Location {
                file: "?".into(),
                line: 0,
                function: "?".into(),
            });
        let entry = per_line.entry(location).or_default();
        entry.bytes += f.bytes;
        entry.blocks += f.blocks;
    }
    let mut sites: Vec<GcSite> = per_line
        .into_iter()
        .map(|(location, f)| GcSite {
            location,
            bytes: f.bytes.round() as u64,
            blocks: f.blocks.round() as u64,
        })
        .filter(|s| s.bytes > 0)
        .collect();
    sites.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.location.cmp(&b.location))
    });
    sites
}
