//! `memlens heap`: who keeps memory alive in a heap snapshot, and what grew between snapshots.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use memlens_heap::{Analysis, Format, HeapReport, ReportOptions, Snapshot};

/// Arguments of `memlens heap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heap snapshot to analyse: a `.mlheap` file or a capture holding snapshots (with
    /// --diff: the newest one).
    snapshot: PathBuf,
    /// An older snapshot of the same program to compare with. Repeat it, oldest first, for
    /// growth across three or more snapshots: then only what grew every time is shown.
    #[arg(long = "diff", value_name = "OLDER")]
    diff: Vec<PathBuf>,
    /// Explain why objects are alive: a type name (`Record`, `app.models.Record`, `app.*`) or an
    /// allocation site (`app/cache.py:12`). Prints only the answer (text); exits 1 when no
    /// object matches.
    #[arg(long, value_name = "PATTERN")]
    why: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Rows per view.
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Which heap snapshot of a capture to read: 1 for the first, 2 for the second, ...
    /// [default: the last one].
    #[arg(long = "snapshot", value_name = "N")]
    pick: Option<usize>,
    /// Write here instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Readable summary.
    Text,
    /// JSON (the `memlens-heap` contract).
    Json,
    /// Chrome DevTools / MemLab `.heapsnapshot` of the snapshot's graph.
    Heapsnapshot,
}

/// The magic of memlens capture files (`memlens-format`), to say what they are.
const CAPTURE_MAGIC: &[u8] = b"MLENS\0\r\n";

/// Reads a heap snapshot file, or snapshot number `pick` (1-based; default the last) of a
/// capture, joined with the capture's allocation sites when it was recorded with `--exact`.
/// Every failure is one line naming the file.
fn load(path: &Path, pick: Option<usize>) -> anyhow::Result<Snapshot> {
    // A regular file only (a device or a pipe could be endless), mapped when large and quiet.
    let bytes = memlens_analysis::CaptureBytes::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(CAPTURE_MAGIC) {
        return from_capture(&bytes, pick)
            .with_context(|| format!("cannot read {}", path.display()));
    }
    if pick.is_some() {
        anyhow::bail!(
            "--snapshot picks a snapshot inside a capture; {} is a single heap snapshot",
            path.display()
        );
    }
    Snapshot::read_from(&bytes).with_context(|| format!("cannot read {}", path.display()))
}

/// The chosen heap snapshot chunk of a capture, with allocation sites for an exact capture.
fn from_capture(bytes: &[u8], pick: Option<usize>) -> anyhow::Result<Snapshot> {
    let reader = memlens_format::Reader::new(bytes)?;
    if !holds_snapshot(&reader) {
        anyhow::bail!(
            "the capture holds no heap snapshot (take one with `memlens run --heap-snapshot exit`, \
             SIGUSR2 during `memlens run`, or memlens.snapshot() while tracking)"
        );
    }
    // Chunk headers up to a damaged one (a killed process leaves a cut last chunk); chunks are
    // decompressed one at a time below, never all at once (each may inflate to 256 MiB).
    let spans: Vec<memlens_format::ChunkSpan<'_>> =
        reader.chunk_spans().map_while(Result::ok).collect();
    let heaps: Vec<usize> = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind() == memlens_format::ChunkKind::HeapSnapshot)
        .map(|(i, _)| i)
        .collect();
    let index = match pick {
        None => heaps.len() - 1,
        Some(n) if (1..=heaps.len()).contains(&n) => n - 1,
        Some(n) => anyhow::bail!(
            "--snapshot {n}: the capture holds {} heap snapshot{} (1 to {})",
            heaps.len(),
            if heaps.len() == 1 { "" } else { "s" },
            heaps.len()
        ),
    };
    let at = heaps[index];
    let chunk = spans[at]
        .load()
        .context("the capture's heap snapshot is in a damaged part of the file")?;
    let mut snap = Snapshot::read_from(&chunk.data)?;
    drop(chunk);
    if reader.header().mode == memlens_format::Mode::Exact {
        join_sites(&mut snap, &spans[..at], &reader.header().library_prefixes)?;
    }
    Ok(snap)
}

/// Whether a chunk header of the capture (read without decompressing anything) says it holds a
/// heap snapshot.
fn holds_snapshot(reader: &memlens_format::Reader<'_>) -> bool {
    reader
        .chunk_spans()
        .map_while(Result::ok)
        .any(|s| s.kind() == memlens_format::ChunkKind::HeapSnapshot)
}

/// The HTML report's heap panel for the capture at `path`: its last heap snapshot (joined with
/// allocation sites when exact), summarised to [`memlens_report::html::MAX_HEAP_ROWS`] rows per
/// list; `None` when the capture holds no snapshot. Checking that costs only the chunk headers.
pub(crate) fn html_panel(path: &Path) -> anyhow::Result<Option<memlens_report::html::HeapPanel>> {
    use memlens_report::html::{HeapDominator, HeapPanel, HeapSite, HeapSuspect, HeapType};
    let bytes = memlens_analysis::CaptureBytes::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let reader = memlens_format::Reader::new(&bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !holds_snapshot(&reader) {
        return Ok(None);
    }
    let snap = from_capture(&bytes, None)
        .with_context(|| format!("cannot read the heap snapshot of {}", path.display()))?;
    let analysis = Analysis::new(&snap);
    let options = ReportOptions::new().top(memlens_report::html::MAX_HEAP_ROWS);
    let report = HeapReport::new(&[&analysis], &options);
    // Each type's main allocation site: the line that allocated most of its instances' bytes.
    let mut by_site: HashMap<(&str, &str, u32), u64> = HashMap::new();
    for n in 0..snap.node_count() {
        let node = memlens_heap::NodeId(n as u32);
        if let Some((file, line)) = snap.alloc_site(node) {
            *by_site
                .entry((snap.type_name(node), file, line))
                .or_default() += snap.shallow_size(node);
        }
    }
    let mut main_sites: HashMap<&str, (&str, u32, u64)> = HashMap::new();
    for ((type_name, file, line), bytes) in by_site {
        let best = main_sites.entry(type_name).or_insert((file, line, bytes));
        // Ties go to the earlier line of the first file name, so the choice is stable.
        if (bytes, std::cmp::Reverse((file, line))) > (best.2, std::cmp::Reverse((best.0, best.1)))
        {
            *best = (file, line, bytes);
        }
    }
    let site = |s: &Option<memlens_heap::Site>| {
        s.as_ref().map(|s| HeapSite {
            file: s.file.clone(),
            line: s.line,
        })
    };
    Ok(Some(HeapPanel {
        objects: report.objects,
        bytes: report.bytes,
        reachable_objects: report.reachable_objects,
        reachable_bytes: report.reachable_bytes,
        suspects: report
            .suspects
            .iter()
            .map(|s| HeapSuspect {
                kind: match s.kind {
                    memlens_heap::SuspectKind::Holder => "holder",
                    memlens_heap::SuspectKind::Accumulation => "accumulation",
                }
                .into(),
                type_name: s.type_name.clone(),
                retained_bytes: s.retained_bytes,
                share: s.share,
                objects: s.objects,
                message: s.message.clone(),
                path: s.path.clone(),
                alloc_site: site(&s.alloc_site),
            })
            .collect(),
        dominators: report
            .dominators
            .iter()
            .map(|d| HeapDominator {
                type_name: d.type_name.clone(),
                retained_bytes: d.retained_bytes,
                retained_objects: d.retained_objects,
                path: d.path.clone(),
                alloc_site: site(&d.alloc_site),
            })
            .collect(),
        types: report
            .types
            .iter()
            .map(|t| HeapType {
                type_name: t.type_name.clone(),
                count: t.count,
                shallow_bytes: t.shallow_bytes,
                retained_bytes: t.retained_bytes,
                alloc_site: main_sites
                    .get(t.type_name.as_str())
                    .map(|&(file, line, _)| HeapSite {
                        file: file.to_owned(),
                        line,
                    }),
            })
            .collect(),
    }))
}

/// [`html_panel`], or `None` with a one-line warning on standard error when the snapshot cannot
/// be read: a damaged snapshot must not cost the user the rest of the page.
pub(crate) fn html_panel_or_warn(path: &Path) -> Option<memlens_report::html::HeapPanel> {
    html_panel(path).unwrap_or_else(|e| {
        eprintln!("memlens: warning: the HTML report has no heap panel: {e:#}");
        None
    })
}

/// Replays the events before the snapshot and gives each object the site of the live block
/// it sits in: the innermost frame of the program's own code (frames of the standard library
/// and site-packages fold into their caller, as for `memlens report` sites). A GC object's
/// block starts 16 bytes (its GC header) or 32 bytes (plus the managed-dict pre-header, 3.11+)
/// before the object.
fn join_sites(
    snap: &mut Snapshot,
    chunks: &[memlens_format::ChunkSpan<'_>],
    library: &[String],
) -> anyhow::Result<()> {
    use memlens_format::{AddrMap, ChunkKind, Record};
    let mut strings: HashMap<u32, String> = HashMap::new();
    let mut functions: HashMap<u32, u32> = HashMap::new();
    let mut frames: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut stacks: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut live: AddrMap<(u64, u32)> = AddrMap::default();
    for span in chunks.iter().filter(|c| c.kind() == ChunkKind::Events) {
        let chunk = span.load()?;
        for record in chunk.records() {
            match record? {
                Record::String { id, text } => {
                    strings.insert(id, text);
                }
                Record::Function { id, file, .. } => {
                    functions.insert(id, file);
                }
                Record::Frame { id, function, line } => {
                    frames.insert(id, (function, line));
                }
                Record::Stack { id, parent, frame } => {
                    stacks.insert(id, (parent, frame));
                }
                Record::Alloc {
                    addr, size, stack, ..
                } => {
                    live.insert(addr, (size, stack));
                }
                Record::Free { addr } => {
                    live.remove(&addr);
                }
                _ => {}
            }
        }
    }
    let is_library = |file: &str| {
        file.starts_with("<frozen")
            || library
                .iter()
                .any(|p| !p.is_empty() && file.starts_with(p.as_str()))
    };
    let mut sites: Vec<(String, u32)> = Vec::new();
    let mut site_index: HashMap<(u32, u32), usize> = HashMap::new();
    let mut by_stack: HashMap<u32, Option<usize>> = HashMap::new();
    let mut site_of_stack = |stack: u32| -> Option<usize> {
        if let Some(&s) = by_stack.get(&stack) {
            return s;
        }
        let mut first = None;
        let mut chosen = None;
        let mut s = stack;
        let mut guard = 0;
        while s != 0 && guard < 10_000 {
            guard += 1;
            let Some(&(parent, frame)) = stacks.get(&s) else {
                break;
            };
            if let Some(&(function, line)) = frames.get(&frame) {
                let file = functions.get(&function).copied().unwrap_or(u32::MAX);
                first.get_or_insert((file, line));
                if !strings.get(&file).is_some_and(|f| is_library(f)) {
                    chosen = Some((file, line));
                    break;
                }
            }
            s = parent;
        }
        let result = chosen.or(first).map(|(file, line)| {
            *site_index.entry((file, line)).or_insert_with(|| {
                let name = strings
                    .get(&file)
                    .cloned()
                    .unwrap_or_else(|| "<unknown>".into());
                sites.push((name, line));
                sites.len() - 1
            })
        });
        by_stack.insert(stack, result);
        result
    };
    let mut assigned: Vec<Option<usize>> = Vec::with_capacity(snap.node_count());
    for n in 0..snap.node_count() {
        let node = memlens_heap::NodeId(n as u32);
        let mut site = None;
        if !snap
            .flags(node)
            .contains(memlens_heap::NodeFlags::SYNTHETIC)
        {
            let addr = snap.address(node);
            for back in [0u64, 16, 32] {
                if let Some(&(size, stack)) = addr.checked_sub(back).and_then(|a| live.get(&a))
                    && size >= back + 16
                {
                    site = site_of_stack(stack);
                    break;
                }
            }
        }
        assigned.push(site);
    }
    snap.set_alloc_sites(&sites, |n| assigned[n.0 as usize]);
    Ok(())
}

/// Runs `memlens heap`.
pub fn exec(args: Args) -> anyhow::Result<u8> {
    if args.format == FormatArg::Heapsnapshot && (!args.diff.is_empty() || args.why.is_some()) {
        anyhow::bail!(
            "--format heapsnapshot exports one snapshot's graph; --diff and --why do not apply \
             (DevTools compares two exported snapshots itself)"
        );
    }
    let newest = load(&args.snapshot, args.pick)?;
    let output = |write: &mut dyn FnMut(&mut dyn Write) -> anyhow::Result<()>| match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write(&mut out)?;
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            write(&mut out)?;
            Ok(out.flush()?)
        }
    };
    if args.format == FormatArg::Heapsnapshot {
        return output(&mut |out| Ok(newest.write_heapsnapshot(out)?)).map(|()| 0);
    }
    let older: Vec<Snapshot> = args
        .diff
        .iter()
        .map(|p| load(p, None))
        .collect::<Result<_, _>>()?;
    let analyses: Vec<Analysis<'_>> = older
        .iter()
        .chain(std::iter::once(&newest))
        .map(Analysis::new)
        .collect();
    let series: Vec<&Analysis<'_>> = analyses.iter().collect();
    let options = ReportOptions::new().top(args.top).why(args.why.clone());
    let report = HeapReport::new(&series, &options);
    let format = match args.format {
        FormatArg::Json => Format::Json,
        _ => Format::Text,
    };
    output(&mut |out| Ok(report.write(format, out)?))?;
    // As grep: --why that matches nothing exits 1 (the report still says so).
    Ok(match &report.why {
        Some(w) if w.matched == 0 => 1,
        _ => 0,
    })
}
