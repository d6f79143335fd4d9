//! From replayed slot figures to the report model: sites, the call tree, flames, moments.

use std::collections::HashMap;

use crate::model::{
    CallNode, CallTree, Flame, Location, Meta, Moment, Report, Site, StackValue, ThreadInfo, View,
};

use super::tables::{MAX_DEPTH, Tables};
use super::{Replay, Slot, thin};

pub(super) fn report(replay: Replay<'_>, meta: Meta, prefixes: &[String]) -> Report {
    let mut sites = aggregate_sites(&replay.tables, &replay.slots, replay.epoch, prefixes);
    for site in &mut sites {
        if let Some(&i) = replay.site_index.get(&site.location) {
            site.high_water_bytes =
                replay.sites[i as usize].high_water_bytes.max(0.0).round() as u64;
        }
        // Never below what the line held at the peak or at exit (sampling noise aside, the
        // high-water mark is at least those).
        site.high_water_bytes = site
            .high_water_bytes
            .max(site.peak_bytes)
            .max(site.leaked_bytes);
    }
    let mut tree = TreeBuilder::new(&replay.tables);
    let node_of_slot: Vec<u32> = replay.slots.iter().map(|s| tree.node(s.stack)).collect();
    let flames = View::ALL
        .iter()
        .map(|&view| Flame {
            view,
            values: replay
                .slots
                .iter()
                .zip(&node_of_slot)
                .filter_map(|(s, &node)| {
                    let (bytes, count) = match view {
                        View::Peak => s.peak(replay.epoch),
                        View::Leaks => (s.leaked_bytes, s.leaked_count),
                        View::Allocations => (s.allocated_bytes, s.allocations),
                        View::Temporary => (s.temporary_bytes, s.temporary_count),
                    };
                    value(node, s.thread, bytes, count)
                })
                .collect(),
        })
        .filter(|f| !f.values.is_empty())
        .collect();
    // Moments closer together than 1/500 of the run cannot be told apart on a timeline (or
    // clicked apart): keep the later of such neighbours.
    let span = replay.moments.last().map_or(0, |m| m.time_ns) / 500;
    let mut distinct: Vec<&super::RawMoment> = Vec::with_capacity(replay.moments.len());
    for m in &replay.moments {
        match distinct.last_mut() {
            Some(last) if m.time_ns.saturating_sub(last.time_ns) < span.max(1) => *last = m,
            _ => distinct.push(m),
        }
    }
    let moments = distinct
        .into_iter()
        .map(|m| Moment {
            time_s: m.time_ns as f64 / 1e9,
            live_bytes: m.live_bytes,
            values: m
                .values
                .iter()
                .filter_map(|&(slot, bytes, count)| {
                    let s = &replay.slots[slot as usize];
                    value(node_of_slot[slot as usize], s.thread, bytes, count)
                })
                .collect(),
        })
        .collect();
    let threads = replay
        .threads
        .iter()
        .map(|t| ThreadInfo {
            id: u64::from(t.capture_id),
            native_id: t.native_id,
            name: match t.name {
                Some(n) => replay.tables.string(n).to_owned(),
                None => format!("thread {}", t.capture_id),
            },
        })
        .collect();
    let mut report = Report {
        meta,
        totals: replay.totals,
        sites,
        timeline: thin(replay.timeline.clone(), replay.options.max_timeline_points),
        findings: Vec::new(),
        threads,
        calls: tree.finish(),
        flames,
        moments,
        leak_window: replay.leak_window(),
        checkpoints: replay.checkpoints.clone(),
    };
    if !replay.exact {
        calibrate(&mut report);
    }
    report
}

/// Sampled figures are unbiased estimates whose sums miss the exact totals by sampling noise
/// (a line "24.1 MiB, 100%" in a program that held 20.2 MiB). Where the tracker counted the
/// view's total exactly (peak, exit, allocated), the estimates are scaled so that they add up
/// to it (a ratio estimator: each line keeps its estimated share), so no line or flame graph
/// claims more than the program had, and the lines of a view add up to its header figure.
/// The temporary view and a checkpoint window have no exact total and stay as sampled.
fn calibrate(report: &mut Report) {
    let t = report.totals;
    if t.allocated_bytes == 0 {
        // No counters were written (a capture cut before the first): nothing exact to meet.
        return;
    }
    let sum = |f: &dyn Fn(&Site) -> u64| report.sites.iter().map(f).fold(0u64, u64::saturating_add);
    let factor =
        |exact: u64, estimated: u64| (estimated > 0).then(|| exact as f64 / estimated as f64);
    let peak = factor(t.peak_bytes, sum(&|s| s.peak_bytes));
    let leaks = if report.leak_window.is_some() {
        None
    } else {
        factor(t.leaked_bytes, sum(&|s| s.leaked_bytes))
    };
    let allocated = factor(t.allocated_bytes, sum(&|s| s.allocated_bytes));
    let count = factor(t.allocations, sum(&|s| s.allocations));
    let scale = |v: u64, k: Option<f64>| k.map_or(v, |k| (v as f64 * k).round() as u64);
    for s in &mut report.sites {
        s.peak_bytes = scale(s.peak_bytes, peak);
        s.leaked_bytes = scale(s.leaked_bytes, leaks);
        s.allocated_bytes = scale(s.allocated_bytes, allocated);
        s.allocations = scale(s.allocations, count);
        // A line's own high-water mark lies between what it held at the peak or at exit and
        // what it allocated, and never above the program's peak.
        s.high_water_bytes = scale(s.high_water_bytes, peak)
            .max(s.peak_bytes)
            .max(s.leaked_bytes)
            .min(s.allocated_bytes.max(s.peak_bytes).max(s.leaked_bytes))
            .min(t.peak_bytes.max(s.peak_bytes));
    }
    for flame in &mut report.flames {
        let k = match flame.view {
            View::Peak => peak,
            View::Leaks => leaks,
            View::Allocations => allocated,
            View::Temporary => None,
        };
        for v in &mut flame.values {
            v.bytes = scale(v.bytes, k);
            if flame.view == View::Allocations {
                v.count = scale(v.count, count);
            }
        }
    }
}

fn value(node: u32, thread: u32, bytes: f64, count: f64) -> Option<StackValue> {
    let bytes = bytes.max(0.0).round() as u64;
    (bytes > 0).then(|| StackValue {
        node,
        thread,
        bytes,
        count: count.max(0.0).round() as u64,
    })
}

/// Builds the call tree from the capture's stack nodes, keeping only those that some slot
/// uses (and their callers), and merging frames with equal locations.
struct TreeBuilder<'t> {
    tables: &'t Tables,
    tree: CallTree,
    node_of_stack: HashMap<u32, u32>,
    frame_index: HashMap<u32, u32>,
    location_index: HashMap<Location, u32>,
    /// Child lookup: (parent node, frame index) -> node, so equal paths share one node.
    children: HashMap<(u32, u32), u32>,
}

impl<'t> TreeBuilder<'t> {
    fn new(tables: &'t Tables) -> Self {
        TreeBuilder {
            tables,
            tree: CallTree {
                frames: Vec::new(),
                nodes: vec![CallNode::default()],
            },
            node_of_stack: HashMap::from([(0, 0)]),
            frame_index: HashMap::new(),
            location_index: HashMap::new(),
            children: HashMap::new(),
        }
    }

    fn frame(&mut self, frame: u32) -> u32 {
        if let Some(&i) = self.frame_index.get(&frame) {
            return i;
        }
        let location = self.tables.location(frame);
        let next = self.tree.frames.len() as u32;
        let i = *self.location_index.entry(location.clone()).or_insert(next);
        if i == next {
            self.tree.frames.push(location);
        }
        self.frame_index.insert(frame, i);
        i
    }

    /// The node of capture stack `stack`, creating it and its callers as needed.
    fn node(&mut self, stack: u32) -> u32 {
        if let Some(&n) = self.node_of_stack.get(&stack) {
            return n;
        }
        // Walk up to a known node (or the root), then create nodes outermost first.
        let mut path = Vec::new();
        let mut s = stack;
        let mut parent_node = 0;
        while path.len() < MAX_DEPTH {
            if let Some(&n) = self.node_of_stack.get(&s) {
                parent_node = n;
                break;
            }
            let Some((parent, frame)) = self.tables.stack(s) else {
                break;
            };
            path.push((s, frame));
            s = parent;
        }
        let mut node = parent_node;
        for &(s, frame) in path.iter().rev() {
            let f = self.frame(frame);
            let parent = node;
            let next = self.tree.nodes.len() as u32;
            node = *self.children.entry((parent, f)).or_insert(next);
            if node == next {
                self.tree.nodes.push(CallNode { parent, frame: f });
            }
            self.node_of_stack.insert(s, node);
        }
        node
    }

    fn finish(self) -> CallTree {
        self.tree
    }
}

pub(super) fn is_library(file: &str, prefixes: &[String]) -> bool {
    file.starts_with("<frozen")
        || prefixes
            .iter()
            .any(|p| !p.is_empty() && file.starts_with(p.as_str()))
}

#[derive(Clone, Copy, Default)]
struct StackSum {
    peak: f64,
    leaked: f64,
    allocated: f64,
    allocations: f64,
    temporary: f64,
}

/// The line a stack counts for: its innermost frame outside the library prefixes (its
/// innermost frame when every frame is a library's).
pub(super) fn site_location(
    tables: &Tables,
    stack: u32,
    prefixes: &[String],
    frame_locations: &mut HashMap<u32, Location>,
) -> Location {
    let frames = tables.frames_of(stack);
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
    match site_frame.or_else(|| frames.first().copied()) {
        Some(f) => frame_locations
            .entry(f)
            .or_insert_with(|| tables.location(f))
            .clone(),
        None => Location {
            file: "<native>".into(),
            line: 0,
            function: "<no Python frame>".into(),
        },
    }
}

fn aggregate_sites(
    tables: &Tables,
    slots: &[Slot],
    last_epoch: u32,
    prefixes: &[String],
) -> Vec<Site> {
    // Threads are merged: a site is a line of code, whichever thread ran it.
    let mut per_stack: HashMap<u32, StackSum> = HashMap::new();
    for s in slots {
        let e = per_stack.entry(s.stack).or_default();
        e.peak += s.peak(last_epoch).0;
        e.leaked += s.leaked_bytes;
        e.allocated += s.allocated_bytes;
        e.allocations += s.allocations;
        e.temporary += s.temporary_bytes;
    }
    struct Acc {
        site: Site,
        best: f64,
        best_stack: u32,
    }
    let mut by_location: HashMap<Location, Acc> = HashMap::new();
    let mut frame_locations: HashMap<u32, Location> = HashMap::new();
    let mut stacks: Vec<(u32, StackSum)> = per_stack.into_iter().collect();
    stacks.sort_unstable_by_key(|&(id, _)| id);
    for (stack_id, s) in stacks {
        if s.allocated <= 0.0 && s.peak <= 0.0 && s.leaked <= 0.0 {
            continue;
        }
        let location = site_location(tables, stack_id, prefixes, &mut frame_locations);
        let acc = by_location.entry(location.clone()).or_insert_with(|| Acc {
            site: Site {
                location,
                peak_bytes: 0,
                leaked_bytes: 0,
                allocated_bytes: 0,
                allocations: 0,
                temporary_bytes: 0,
                high_water_bytes: 0,
                stack: Vec::new(),
            },
            best: -1.0,
            best_stack: 0,
        });
        let round = |v: f64| v.max(0.0).round() as u64;
        // Saturating: only a corrupt capture gets near u64::MAX.
        let site = &mut acc.site;
        site.peak_bytes = site.peak_bytes.saturating_add(round(s.peak));
        site.leaked_bytes = site.leaked_bytes.saturating_add(round(s.leaked));
        site.allocated_bytes = site.allocated_bytes.saturating_add(round(s.allocated));
        site.allocations = site.allocations.saturating_add(round(s.allocations));
        site.temporary_bytes = site.temporary_bytes.saturating_add(round(s.temporary));
        let weight = s.peak.max(0.0) * 4.0 + s.allocated;
        if weight > acc.best {
            acc.best = weight;
            acc.best_stack = stack_id;
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
