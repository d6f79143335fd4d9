//! The data a report page embeds: the call tree pruned to a size budget, each view's figures
//! per (node, thread), moments, timeline, top lines with their source, findings and metadata.
//!
//! Pruning keeps the call-tree nodes whose inclusive figure is the largest share of some view's
//! total (a node never outweighs its parent, so the kept set is closed under ancestry) and folds
//! every dropped node into one `(other)` child of its nearest kept ancestor, so totals are
//! unchanged and nothing is silently lost.

use std::collections::HashMap;
use std::fmt::Write as _;

use memlens_analysis::{CallNode, CallTree, Flame, Location, Report, StackValue, View};
use serde_json::{Value, json};

use super::HtmlOptions;

/// Frame flag: import machinery (`<frozen importlib._bootstrap>` and friends).
pub(super) const FLAG_IMPORT: u8 = 1;
/// Frame flag: memlens's own frames (its Python package and the `runpy` frames that start it).
pub(super) const FLAG_MEMLENS: u8 = 2;
/// Frame flag: the synthetic `(other)` frame that holds pruned stacks.
pub(super) const FLAG_OTHER: u8 = 4;
/// Frame flag: standard library or installed package (not the user's own code).
pub(super) const FLAG_LIBRARY: u8 = 8;

/// Longest name (file, function, label) embedded, in characters.
const MAX_NAME_CHARS: usize = 300;
/// Longest source line embedded, in characters.
const MAX_SOURCE_CHARS: usize = 200;

/// A flame-graph input: a call tree, threads and per-view figures, before pruning.
struct Flames<'a> {
    calls: std::borrow::Cow<'a, CallTree>,
    threads: Vec<String>,
    views: Vec<(View, std::borrow::Cow<'a, [StackValue]>)>,
    from_sites: bool,
}

/// Uses the report's call tree and flames, or builds them from the sites' heaviest stacks when
/// the analysis filled none (every site's figures then sit on one stack, on one thread).
fn flames(report: &Report) -> Flames<'_> {
    let has_tree = report.calls.nodes.len() > 1 && !report.flames.is_empty();
    if has_tree {
        let max_thread = report
            .flames
            .iter()
            .flat_map(|f| f.values.iter().map(|v| v.thread as usize + 1))
            .chain(
                report
                    .moments
                    .iter()
                    .flat_map(|m| m.values.iter().map(|v| v.thread as usize + 1)),
            )
            .max()
            .unwrap_or(0);
        let mut threads: Vec<String> = report.threads.iter().map(|t| t.name.clone()).collect();
        while threads.len() < max_thread {
            threads.push(format!("thread {}", threads.len()));
        }
        if threads.is_empty() {
            threads.push("all threads".into());
        }
        return Flames {
            calls: std::borrow::Cow::Borrowed(&report.calls),
            threads,
            views: View::ALL
                .iter()
                .map(|&v| {
                    let values = report
                        .flame(v)
                        .map_or(&[][..], |f: &Flame| f.values.as_slice());
                    (v, std::borrow::Cow::Borrowed(values))
                })
                .collect(),
            from_sites: false,
        };
    }
    let mut tree = CallTree {
        frames: Vec::new(),
        nodes: vec![CallNode::default()],
    };
    let mut frame_ids: HashMap<&Location, u32> = HashMap::new();
    let mut children: HashMap<(u32, u32), u32> = HashMap::new();
    let mut views: Vec<(View, Vec<StackValue>)> = View::ALL.iter().map(|&v| (v, vec![])).collect();
    for site in &report.sites {
        let stack: Vec<&Location> = if site.stack.is_empty() {
            vec![&site.location]
        } else {
            site.stack.iter().collect()
        };
        let mut node = 0u32;
        for loc in stack.into_iter().rev() {
            let next_frame = tree.frames.len() as u32;
            let frame = *frame_ids.entry(loc).or_insert_with(|| {
                tree.frames.push(loc.clone());
                next_frame
            });
            let next_node = tree.nodes.len() as u32;
            node = *children.entry((node, frame)).or_insert_with(|| {
                tree.nodes.push(CallNode {
                    parent: node,
                    frame,
                });
                next_node
            });
        }
        for (view, values) in &mut views {
            let bytes = site.bytes(*view);
            if bytes > 0 {
                values.push(StackValue {
                    node,
                    thread: 0,
                    bytes,
                    count: if *view == View::Allocations {
                        site.allocations
                    } else {
                        0
                    },
                });
            }
        }
    }
    Flames {
        calls: std::borrow::Cow::Owned(tree),
        threads: vec!["all threads".into()],
        views: views
            .into_iter()
            .map(|(v, values)| (v, std::borrow::Cow::Owned(values)))
            .collect(),
        from_sites: !report.sites.is_empty(),
    }
}

use memlens_analysis::is_memlens_file;

fn is_runpy(file: &str) -> bool {
    file == "<frozen runpy>" || file.ends_with("/runpy.py")
}

fn is_import_machinery(file: &str) -> bool {
    file.starts_with("<frozen importlib.")
        || file.starts_with("<frozen zipimport")
        || file.ends_with("/importlib/_bootstrap.py")
        || file.ends_with("/importlib/_bootstrap_external.py")
}

fn is_library(file: &str) -> bool {
    file.starts_with('<')
        || file.contains("/site-packages/")
        || file.contains("/dist-packages/")
        || file.contains("/lib/python3")
}

/// Flags of each node's frame; `runpy` frames count as memlens's own when they start memlens
/// (their parent is the root or another memlens frame).
fn node_flags(calls: &CallTree) -> Vec<u8> {
    let frame_flags: Vec<u8> = calls
        .frames
        .iter()
        .map(|l| {
            let mut f = 0;
            if is_import_machinery(&l.file) {
                f |= FLAG_IMPORT;
            }
            if is_memlens_file(&l.file) {
                f |= FLAG_MEMLENS;
            }
            if is_library(&l.file) {
                f |= FLAG_LIBRARY;
            }
            f
        })
        .collect();
    let mut flags = vec![0u8; calls.nodes.len()];
    for (i, n) in calls.nodes.iter().enumerate().skip(1) {
        let Some(&f) = frame_flags.get(n.frame as usize) else {
            continue;
        };
        let mut f = f;
        let p = n.parent as usize;
        let parent_is_memlens = p == 0 || flags.get(p).is_some_and(|&pf| pf & FLAG_MEMLENS != 0);
        if parent_is_memlens
            && calls
                .frames
                .get(n.frame as usize)
                .is_some_and(|l| is_runpy(&l.file))
        {
            f |= FLAG_MEMLENS;
        }
        flags[i] = f;
    }
    flags
}

/// Each node's largest share of any view's total, counting everything under it. A node never
/// scores above its parent.
fn scores(calls: &CallTree, views: &[&[StackValue]]) -> Vec<f64> {
    let n = calls.nodes.len();
    let mut score = vec![0f64; n];
    let mut inclusive = vec![0u64; n];
    for values in views {
        inclusive.iter_mut().for_each(|x| *x = 0);
        for v in values.iter() {
            if let Some(x) = inclusive.get_mut(v.node as usize) {
                *x = x.saturating_add(v.bytes);
            }
        }
        for i in (1..n).rev() {
            let p = calls.nodes[i].parent as usize;
            if p < i {
                inclusive[p] = inclusive[p].saturating_add(inclusive[i]);
            }
        }
        let total = inclusive.first().copied().unwrap_or(0).max(1) as f64;
        for (s, &x) in score.iter_mut().zip(&inclusive) {
            *s = s.max(x as f64 / total);
        }
    }
    score
}

/// The order in which nodes are kept: the root first (rank 0), then by score, largest first,
/// parents before their children; `u32::MAX` for nodes without any figure. Keeping every node
/// of rank at most k therefore keeps a tree.
fn ranks(calls: &CallTree, score: &[f64]) -> Vec<u32> {
    let mut order: Vec<u32> = (1..calls.nodes.len() as u32)
        .filter(|&i| score[i as usize] > 0.0)
        .collect();
    order.sort_unstable_by(|&a, &b| {
        score[b as usize]
            .total_cmp(&score[a as usize])
            .then(a.cmp(&b))
    });
    let mut rank = vec![u32::MAX; calls.nodes.len()];
    if let Some(r) = rank.first_mut() {
        *r = 0;
    }
    for (i, &node) in order.iter().enumerate() {
        rank[node as usize] = i as u32 + 1;
    }
    rank
}

/// The [`NAMED_FRAMES`] frames that allocate the largest share of some view.
fn named_frames(calls: &CallTree, views: &[&[StackValue]]) -> std::collections::HashSet<u32> {
    let mut share = vec![0f64; calls.frames.len()];
    let mut bytes = vec![0u64; calls.frames.len()];
    for values in views {
        bytes.iter_mut().for_each(|b| *b = 0);
        let mut total = 0u64;
        for v in values.iter() {
            total = total.saturating_add(v.bytes);
            if let Some(f) = calls.nodes.get(v.node as usize).map(|n| n.frame as usize)
                && let Some(b) = bytes.get_mut(f)
            {
                *b = b.saturating_add(v.bytes);
            }
        }
        for (s, &b) in share.iter_mut().zip(&bytes) {
            *s = s.max(b as f64 / total.max(1) as f64);
        }
    }
    let mut frames: Vec<u32> = (0..share.len() as u32)
        .filter(|&f| share[f as usize] > 0.0)
        .collect();
    frames.sort_unstable_by(|&a, &b| {
        share[b as usize]
            .total_cmp(&share[a as usize])
            .then(a.cmp(&b))
    });
    frames.truncate(NAMED_FRAMES);
    frames.into_iter().collect()
}

/// The call tree cut to the nodes of rank at most `max_nodes` (moments: `max_moment_nodes`), with
/// every other node mapped to an `(other)` child of its nearest kept ancestor.
struct Pruned {
    /// Pruned tree: (parent, frame index into `frames`) per node; node 0 is the root.
    nodes: Vec<(u32, u32)>,
    /// Frames of the pruned tree: an index into the report's frames, or `None` for `(other)`.
    frames: Vec<Option<u32>>,
    /// Flags per pruned node.
    flags: Vec<u8>,
    /// Pruned node of each report node, for the views.
    map: Vec<u32>,
    /// Pruned node of each report node, for the moments (coarser).
    moment_map: Vec<u32>,
    /// Nodes kept for the views (root and `(other)` nodes excluded).
    kept: usize,
    /// The smallest score kept, when something was dropped.
    threshold: f64,
}

/// Builds the pruned tree: kept nodes, `(other)` nodes and the allocating frames under them.
struct PruneBuilder {
    out: Pruned,
    /// Pruned frame of each report frame (`u32::MAX`: not yet used).
    frame_index: Vec<u32>,
    /// The pruned frame that stands for `(other)`.
    other_frame: Option<u32>,
    /// The `(other)` child of each pruned node (`u32::MAX`: none yet).
    other_child: Vec<u32>,
    /// The child of an `(other)` node for one allocating frame.
    leaf_child: HashMap<(u32, u32), u32>,
}

impl PruneBuilder {
    fn frame(&mut self, frame: u32) -> u32 {
        match self.frame_index.get(frame as usize) {
            Some(&f) if f != u32::MAX => f,
            _ => {
                self.out.frames.push(Some(frame));
                let f = self.out.frames.len() as u32 - 1;
                if let Some(slot) = self.frame_index.get_mut(frame as usize) {
                    *slot = f;
                }
                f
            }
        }
    }

    fn push(&mut self, parent: u32, frame: u32, flags: u8) -> u32 {
        self.out.nodes.push((parent, frame));
        self.out.flags.push(flags);
        self.out.nodes.len() as u32 - 1
    }

    /// The `(other)` child of pruned node `parent`.
    fn other(&mut self, parent: u32) -> u32 {
        let p = parent as usize;
        if self.other_child.len() <= p {
            self.other_child.resize(p + 1, u32::MAX);
        }
        if self.other_child[p] == u32::MAX {
            let f = match self.other_frame {
                Some(f) => f,
                None => {
                    self.out.frames.push(None);
                    let f = self.out.frames.len() as u32 - 1;
                    self.other_frame = Some(f);
                    f
                }
            };
            self.other_child[p] = self.push(parent, f, FLAG_OTHER);
        }
        self.other_child[p]
    }

    /// Where a dropped node's figures go: under the `(other)` child of `parent`, in a node of
    /// its own allocating frame when that frame is one of the heaviest (so the inverted graph
    /// still names it), else in `(other)` itself.
    fn dropped(&mut self, parent: u32, frame: u32, flags: u8, named: bool) -> u32 {
        let other = self.other(parent);
        if !named {
            return other;
        }
        let f = self.frame(frame);
        if let Some(&c) = self.leaf_child.get(&(other, f)) {
            return c;
        }
        let c = self.push(other, f, flags);
        self.leaf_child.insert((other, f), c);
        c
    }
}

fn prune(prepared: &Prepared<'_>, max_nodes: usize, max_moment_nodes: usize) -> Pruned {
    let calls = prepared.flames.calls.as_ref();
    let (rank, score, flags) = (&prepared.rank, &prepared.score, &prepared.flags);
    let n = calls.nodes.len();
    let cap = max_nodes.min(u32::MAX as usize - 1) as u32;
    let moment_cap = max_moment_nodes.min(max_nodes) as u32;
    let mut b = PruneBuilder {
        out: Pruned {
            nodes: vec![(0, 0)],
            frames: Vec::new(),
            flags: vec![0],
            map: vec![0; n],
            moment_map: vec![0; n],
            kept: 0,
            threshold: 0.0,
        },
        frame_index: vec![u32::MAX; calls.frames.len()],
        other_frame: None,
        other_child: Vec::new(),
        leaf_child: HashMap::new(),
    };
    // Nearest kept ancestor-or-self (a report node) for the views and for the moments.
    let mut near = vec![0u32; n];
    let mut near_moment = vec![0u32; n];
    let mut dropped = false;
    let mut smallest = f64::INFINITY;
    for i in 1..n {
        let node = calls.nodes[i];
        let p = if (node.parent as usize) < i {
            node.parent as usize
        } else {
            0
        };
        let valued = prepared.valued[i];
        let named = prepared.named_frames.contains(&node.frame);
        if rank[i] <= cap {
            let f = b.frame(node.frame);
            let parent = b.out.map[p];
            b.out.map[i] = b.push(parent, f, flags[i]);
            b.out.kept += 1;
            near[i] = i as u32;
            smallest = smallest.min(score[i]);
        } else {
            dropped |= score[i] > 0.0;
            near[i] = near[p];
            let a = b.out.map[near[i] as usize];
            // Nodes without figures of their own need no place (their figures are in children).
            b.out.map[i] = if valued {
                b.dropped(a, node.frame, flags[i], named)
            } else {
                a
            };
        }
        if rank[i] <= moment_cap {
            near_moment[i] = i as u32;
            b.out.moment_map[i] = b.out.map[i];
        } else {
            near_moment[i] = near_moment[p];
            let a = b.out.map[near_moment[i] as usize];
            b.out.moment_map[i] = if valued {
                b.dropped(a, node.frame, flags[i], named)
            } else {
                a
            };
        }
    }
    let mut out = b.out;
    if dropped && smallest.is_finite() {
        out.threshold = smallest;
    }
    out
}

/// Per-(node, thread) sums, reused between calls.
#[derive(Default)]
struct Sums {
    /// Bytes and count per `node * threads + thread`.
    dense: Vec<(u64, u64)>,
    /// Indices of `dense` touched by the current call.
    touched: Vec<u32>,
}

/// Sums values mapped onto the pruned tree and writes them as a JSON array
/// `[node, thread, bytes, (count,) ...]`, ordered by node then thread.
fn remap(
    values: &[StackValue],
    map: &[u32],
    threads: usize,
    with_counts: bool,
    sums: &mut Sums,
    out: &mut String,
) {
    let threads = threads.max(1);
    for v in values {
        let node = map.get(v.node as usize).copied().unwrap_or(0) as usize;
        let i = node * threads + (v.thread as usize).min(threads - 1);
        if sums.dense.len() <= i {
            sums.dense.resize(i + 1, (0, 0));
        }
        let e = &mut sums.dense[i];
        if *e == (0, 0) {
            sums.touched.push(i as u32);
        }
        e.0 = e.0.saturating_add(v.bytes);
        e.1 = e.1.saturating_add(v.count);
        if *e == (0, 0) {
            // A zero figure: keep it touched once (it is dropped when written).
            sums.touched.pop();
        }
    }
    sums.touched.sort_unstable();
    sums.touched.dedup();
    out.push('[');
    let mut first = true;
    for &i in &sums.touched {
        let (b, c) = std::mem::take(&mut sums.dense[i as usize]);
        if b == 0 && c == 0 {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let (n, t) = (i as usize / threads, i as usize % threads);
        if with_counts {
            let _ = write!(out, "{n},{t},{b},{c}");
        } else {
            let _ = write!(out, "{n},{t},{b}");
        }
    }
    sums.touched.clear();
    out.push(']');
}

/// Writes numbers as a JSON array.
fn numbers<T: std::fmt::Display>(items: impl IntoIterator<Item = T>, out: &mut String) {
    out.push('[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{x}");
    }
    out.push(']');
}

/// Cuts `s` to `max` characters (and an ellipsis), counting cuts.
pub(super) fn cut(s: &str, max: usize, cuts: &mut usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => {
            *cuts += 1;
            let mut t = s[..at].to_owned();
            t.push('…');
            t
        }
        None => s.to_owned(),
    }
}

/// Interns strings into one table so repeated file names are embedded once.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    index: HashMap<String, u32>,
    cuts: usize,
}

impl Strings {
    fn id(&mut self, s: &str) -> u32 {
        let s = cut(s, MAX_NAME_CHARS, &mut self.cuts);
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.clone());
        self.index.insert(s, i);
        i
    }
}

/// Reads line `line` of `file` when it is a readable source file.
/// Functions whose source the page embeds (the top lines' first ones).
const MAX_FUNCTION_VIEWS: usize = 40;
/// Lines embedded per function.
const MAX_FUNCTION_LINES: usize = 200;

fn truncate_source(text: &str) -> String {
    let mut t: String = text.chars().take(160).collect();
    if t.len() < text.len() {
        t.push('…');
    }
    t
}

fn source_line(file: &str, line: u32, cache: &mut HashMap<String, Option<Vec<String>>>) -> String {
    if line == 0 || file.starts_with('<') {
        return String::new();
    }
    let lines = cache.entry(file.to_owned()).or_insert_with(|| {
        let meta = std::fs::metadata(file).ok()?;
        // Not a source file worth reading (a device, a huge generated file).
        if !meta.is_file() || meta.len() > 16 << 20 {
            return None;
        }
        let bytes = std::fs::read(file).ok()?;
        Some(
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_owned)
                .collect(),
        )
    });
    let mut cuts = 0;
    lines
        .as_ref()
        .and_then(|l| l.get(line as usize - 1))
        .map(|l| cut(l.trim(), MAX_SOURCE_CHARS, &mut cuts))
        .unwrap_or_default()
}

/// Seconds rounded to the microsecond (shorter JSON, no float noise).
fn micros(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e6
}

/// Picks at most `max` items spread evenly over `items`, keeping the first and the last.
fn spread<T>(items: &[T], max: usize) -> Vec<&T> {
    if items.len() <= max {
        return items.iter().collect();
    }
    if max <= 1 {
        return items.iter().take(max).collect();
    }
    (0..max)
        .map(|i| &items[i * (items.len() - 1) / (max - 1)])
        .collect()
}

/// The report's call tree, flags and node ranking: computed once, then cut to different sizes
/// until the page fits its budget.
pub(crate) struct Prepared<'a> {
    report: &'a Report,
    flames: Flames<'a>,
    flags: Vec<u8>,
    score: Vec<f64>,
    rank: Vec<u32>,
    /// Nodes with a figure of their own in some view or moment.
    valued: Vec<bool>,
    /// The allocating frames that keep their name when their nodes are pruned: the heaviest
    /// [`NAMED_FRAMES`], by their largest share of a view.
    named_frames: std::collections::HashSet<u32>,
    /// The heap panel's summary, when the capture holds a heap snapshot.
    heap: Option<&'a super::HeapPanel>,
}

/// How many allocating frames keep their name inside `(other)`.
const NAMED_FRAMES: usize = 256;

impl<'a> Prepared<'a> {
    /// Ranks the nodes of `report`'s call tree (or of the one built from its sites).
    pub(crate) fn new(report: &'a Report) -> Self {
        let flames = flames(report);
        let calls = flames.calls.as_ref();
        let flags = node_flags(calls);
        let view_values: Vec<&[StackValue]> =
            flames.views.iter().map(|(_, v)| v.as_ref()).collect();
        let score = scores(calls, &view_values);
        let rank = ranks(calls, &score);
        let mut valued = vec![false; calls.nodes.len()];
        let moments = report.moments.iter().map(|m| m.values.as_slice());
        for v in view_values.iter().copied().chain(moments).flatten() {
            if let Some(x) = valued.get_mut(v.node as usize) {
                *x = true;
            }
        }
        let named_frames = named_frames(calls, &view_values);
        Prepared {
            report,
            flames,
            flags,
            score,
            rank,
            valued,
            named_frames,
            heap: None,
        }
    }

    /// Embeds `heap` as the heap panel's data (`heap` in the JSON; absent when `None`).
    pub(crate) fn with_heap(mut self, heap: Option<&'a super::HeapPanel>) -> Self {
        self.heap = heap;
        self
    }

    /// The embedded data (JSON text, not yet escaped for a page) with at most `max_nodes` call-tree nodes (moments: an eighth of that).
    pub(crate) fn build(
        &self,
        initial_view: View,
        options: &HtmlOptions,
        max_nodes: usize,
    ) -> String {
        build(self, initial_view, options, max_nodes)
    }
}

fn build(
    prepared: &Prepared<'_>,
    initial_view: View,
    options: &HtmlOptions,
    max_nodes: usize,
) -> String {
    let report = prepared.report;
    let fl = &prepared.flames;
    let calls = fl.calls.as_ref();
    let pruned = prune(prepared, max_nodes, (max_nodes / 8).max(64));
    let mut strings = Strings::default();

    let mut frames = Vec::with_capacity(pruned.frames.len() * 3);
    for f in &pruned.frames {
        match f.and_then(|i| calls.frames.get(i as usize)) {
            Some(l) => {
                frames.push(strings.id(&l.file));
                frames.push(l.line);
                frames.push(strings.id(&l.function));
            }
            None => {
                frames.push(strings.id(""));
                frames.push(0);
                frames.push(strings.id("(other)"));
            }
        }
    }

    let t = &report.totals;
    // The large arrays are written straight to JSON text; the rest goes through serde_json.
    let mut sums = Sums::default();
    let threads = fl.threads.len();
    let mut views = String::from("[");
    for (i, (view, values)) in fl.views.iter().enumerate() {
        let exact_total = match view {
            View::Peak => Some(t.peak_bytes),
            // Between checkpoints, the exact counter (live at exit) answers another question.
            View::Leaks if report.leak_window.is_none() => Some(t.leaked_bytes),
            View::Leaks => None,
            View::Allocations => Some(t.allocated_bytes),
            View::Temporary => None,
        };
        if i > 0 {
            views.push(',');
        }
        let _ = write!(
            views,
            "{{\"name\":\"{}\",\"exact_total\":{},\"values\":",
            view.name(),
            json!(exact_total)
        );
        remap(values, &pruned.map, threads, true, &mut sums, &mut views);
        views.push('}');
    }
    views.push(']');

    let moments_kept = spread(&report.moments, options.max_moments);
    let mut moments = String::from("[");
    for (i, m) in moments_kept.iter().enumerate() {
        if i > 0 {
            moments.push(',');
        }
        let _ = write!(
            moments,
            "{{\"t\":{},\"live\":{},\"values\":",
            json!(micros(m.time_s)),
            m.live_bytes
        );
        remap(
            &m.values,
            &pruned.moment_map,
            threads,
            false,
            &mut sums,
            &mut moments,
        );
        moments.push('}');
    }
    moments.push(']');

    let timeline = spread(&report.timeline, options.max_timeline_points);
    let checkpoints: Vec<Value> = report
        .checkpoints
        .iter()
        .map(|c| json!({"t": micros(c.time_s), "label": strings.id(&c.label)}))
        .collect();

    // Top lines: the union of each view's top sites, with their source read now.
    let mut chosen: Vec<&memlens_analysis::Site> = Vec::new();
    let mut seen: HashMap<&Location, ()> = HashMap::new();
    for view in View::ALL {
        for site in report.top_sites(view).take(options.max_lines) {
            if seen.insert(&site.location, ()).is_none() {
                chosen.push(site);
            }
        }
    }
    // Each top line's function, line by line (as `memlens report --source` prints it), shown
    // when its row is clicked; read now, so the page needs no file.
    let mut function_keys: Vec<(String, String)> = Vec::new();
    if options.read_sources {
        for s in &chosen {
            let key = (s.location.file.clone(), s.location.function.clone());
            if !function_keys.contains(&key)
                && function_keys.len() < MAX_FUNCTION_VIEWS
                && std::path::Path::new(&s.location.file).is_file()
            {
                function_keys.push(key);
            }
        }
    }
    let function_views = crate::source_view::function_views(report, &function_keys);
    let functions: Vec<Value> = function_views
        .iter()
        .map(|f| {
            json!({
                "file": strings.id(&f.file),
                "function": strings.id(&f.function),
                "lines": f.lines.iter().take(MAX_FUNCTION_LINES).map(|(line, fig, text)| json!([
                    line, fig.allocated, fig.peak, fig.leaked, fig.allocations,
                    truncate_source(text),
                ])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut sources = HashMap::new();
    let sites: Vec<Value> = chosen
        .iter()
        .map(|s| {
            let l = &s.location;
            let function = function_keys
                .iter()
                .position(|(file, function)| file == &l.file && function == &l.function)
                .map_or(-1, |i| i as i64);
            json!({
                "fn": function,
                "file": strings.id(&l.file),
                "line": l.line,
                "function": strings.id(&l.function),
                "peak": s.peak_bytes,
                "leaks": s.leaked_bytes,
                "allocations": s.allocated_bytes,
                "temporary": s.temporary_bytes,
                "count": s.allocations,
                "memlens": is_memlens_file(&l.file),
                "source": if options.read_sources { source_line(&l.file, l.line, &mut sources) } else { String::new() },
            })
        })
        .collect();

    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule,
                "title": f.title,
                "severity": f.severity.name(),
                "file": f.location.as_ref().map(|l| strings.id(&l.file)),
                "line": f.location.as_ref().map(|l| l.line),
                "function": f.location.as_ref().map(|l| strings.id(&l.function)),
                "bytes": f.bytes,
                "message": f.message,
                "fix": f.fix,
                "evidence": f.evidence,
            })
        })
        .collect();

    let threads: Vec<u32> = fl.threads.iter().map(|t| strings.id(t)).collect();
    let leak_window = report.leak_window.as_ref().map(|w| {
        json!({
            "from": w.from.as_deref().map(|l| strings.id(l)),
            "to": w.to.as_deref().map(|l| strings.id(l)),
            "from_t": micros(w.from_time_s),
            "to_t": micros(w.to_time_s),
        })
    });
    let heap = prepared
        .heap
        .map(|h| super::heap::to_json(h, &mut strings.cuts));
    let m = &report.meta;
    let command: Vec<u32> = m.command.iter().map(|c| strings.id(c)).collect();
    let value = json!({
        "format": "memlens-html-data",
        "version": 1,
        "initial_view": initial_view.name(),
        "meta": {
            "command": command,
            "python": m.python,
            "pid": m.pid,
            "mode": m.mode,
            "sample_rate": m.sample_rate,
            "duration_s": m.duration_s,
            "events": m.events,
            "warning": match (&m.warning, m.dropped_warning()) {
                (Some(w), Some(d)) => Some(format!("{w}; {d}")),
                (w, d) => w.clone().or(d),
            },
            "dropped_events": m.dropped_events,
        },
        "totals": crate::json::totals(t),
        "strings": strings.list,
        "threads": threads,
        "timeline": {
            "t": timeline.iter().map(|p| micros(p.time_s)).collect::<Vec<_>>(),
            "live": timeline.iter().map(|p| p.live_bytes).collect::<Vec<_>>(),
            "rss": timeline.iter().map(|p| p.rss_bytes).collect::<Vec<_>>(),
        },
        "checkpoints": checkpoints,
        "leak_window": leak_window,
        "sites": sites,
        "findings": findings,
        "pruning": {
            // What the page left out, said under the flame graph.
            "nodes_total": calls.nodes.len().saturating_sub(1),
            "nodes_kept": pruned.kept,
            "threshold": pruned.threshold,
            "moments_total": report.moments.len(),
            "moments_kept": moments_kept.len(),
            "timeline_total": report.timeline.len(),
            "timeline_kept": timeline.len(),
            "names_cut": strings.cuts,
            "from_sites": fl.from_sites,
            "max_lines": options.max_lines,
        },
        "functions": functions,
    });
    let mut value = value;
    if let Some(heap) = heap {
        value["heap"] = heap;
    }
    let mut text = value.to_string();
    text.pop(); // the closing brace: the large arrays follow
    let parents = pruned.nodes.iter().map(|n| n.0);
    let node_frames = pruned.nodes.iter().map(|n| n.1);
    for (key, array) in [
        ("frames", {
            let mut o = String::new();
            numbers(&frames, &mut o);
            o
        }),
        ("parents", {
            let mut o = String::new();
            numbers(parents, &mut o);
            o
        }),
        ("node_frames", {
            let mut o = String::new();
            numbers(node_frames, &mut o);
            o
        }),
        ("node_flags", {
            let mut o = String::new();
            numbers(&pruned.flags, &mut o);
            o
        }),
        ("views", views),
        ("moments", moments),
    ] {
        let _ = write!(text, ",\"{key}\":{array}");
    }
    text.push('}');
    text
}
