//! Several processes of one program (`--follow-fork` children, `multiprocessing` workers) as
//! one report: each process becomes a root frame (`process 4242: python app.py`) above its own
//! stacks, so every renderer (text, JSON, HTML, pprof, speedscope, collapsed) shows them side by
//! side and in total.
//!
//! Totals add up, except the peak: the processes' live bytes are put on one clock (each
//! capture's start time plus its counter samples, every 20 ms) and the highest sum is the
//! tree's combined peak, never below the highest single process's exact peak. It is an
//! estimate to within a sampling interval; the sum of the processes' peaks
//! ([`combined_peak`]'s second figure) is an upper bound.

use std::collections::HashMap;

use crate::model::{
    CallNode, CallTree, CheckpointMark, Flame, Location, Meta, Report, Site, ThreadInfo, Timeline,
    TimelinePoint, Totals, View,
};

/// The tree's combined peak (on one clock) and the sum of the processes' peaks.
pub fn combined_peak(reports: &[&Report]) -> (u64, u64) {
    let timeline = merged_timeline(reports);
    let sum = reports.iter().map(|r| r.totals.peak_bytes).sum();
    let single = reports
        .iter()
        .map(|r| r.totals.peak_bytes)
        .max()
        .unwrap_or(0);
    let on_clock = timeline.iter().map(|p| p.live_bytes).max().unwrap_or(0);
    (on_clock.max(single).min(sum), sum)
}

/// Every process's live bytes and RSS summed on one clock: a point wherever one process has
/// one, holding each other process's latest figures (0 before it started or after it ended).
fn merged_timeline(reports: &[&Report]) -> Timeline {
    let origin = reports
        .iter()
        .map(|r| r.meta.start_unix_ns)
        .min()
        .unwrap_or(0);
    let mut events: Vec<(f64, usize, u64, u64)> = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let offset = r.meta.start_unix_ns.saturating_sub(origin) as f64 / 1e9;
        for p in &r.timeline {
            events.push((offset + p.time_s, i, p.live_bytes, p.rss_bytes));
        }
        // Ended: it holds nothing after its last point.
        if let Some(last) = r.timeline.last() {
            events.push((offset + last.time_s + 1e-9, i, 0, 0));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut live = vec![0u64; reports.len()];
    let mut rss = vec![0u64; reports.len()];
    events
        .into_iter()
        .map(|(t, i, l, r)| {
            live[i] = l;
            rss[i] = r;
            TimelinePoint {
                time_s: t,
                live_bytes: live.iter().sum(),
                rss_bytes: rss.iter().sum(),
            }
        })
        .collect()
}

/// One report for several processes' reports.
pub fn merge(reports: &[&Report]) -> Report {
    let origin = reports
        .iter()
        .map(|r| r.meta.start_unix_ns)
        .min()
        .unwrap_or(0);
    let mut frames: Vec<Location> = Vec::new();
    let mut frame_ids: HashMap<Location, u32> = HashMap::new();
    let mut frame_id = |l: &Location, frames: &mut Vec<Location>| -> u32 {
        *frame_ids.entry(l.clone()).or_insert_with(|| {
            frames.push(l.clone());
            frames.len() as u32 - 1
        })
    };
    let mut nodes = vec![CallNode::default()];
    let mut threads: Vec<ThreadInfo> = Vec::new();
    let mut flames: HashMap<View, Flame> = HashMap::new();
    let mut sites: HashMap<Location, Site> = HashMap::new();
    let mut checkpoints: Vec<CheckpointMark> = Vec::new();
    let mut warnings = Vec::new();
    for r in reports {
        let offset = r.meta.start_unix_ns.saturating_sub(origin) as f64 / 1e9;
        let process = Location {
            file: "<process>".into(),
            line: r.meta.pid,
            function: format!("process {}: {}", r.meta.pid, r.meta.command.join(" ")),
        };
        let root_frame = frame_id(&process, &mut frames);
        nodes.push(CallNode {
            parent: 0,
            frame: root_frame,
        });
        let process_node = nodes.len() as u32 - 1;
        // Parents come before children, so one pass maps every node.
        let mut node_map = vec![process_node; r.calls.nodes.len().max(1)];
        for (old, n) in r.calls.nodes.iter().enumerate().skip(1) {
            let frame = match r.calls.frames.get(n.frame as usize) {
                Some(l) => frame_id(l, &mut frames),
                None => continue,
            };
            let parent = node_map
                .get(n.parent as usize)
                .copied()
                .unwrap_or(process_node);
            nodes.push(CallNode { parent, frame });
            node_map[old] = nodes.len() as u32 - 1;
        }
        let thread_base = threads.len() as u32;
        threads.extend(r.threads.iter().map(|t| ThreadInfo {
            name: format!("{} (pid {})", t.name, r.meta.pid),
            ..t.clone()
        }));
        for f in &r.flames {
            let merged = flames.entry(f.view).or_insert_with(|| Flame {
                view: f.view,
                values: Vec::new(),
            });
            merged.values.extend(f.values.iter().map(|v| {
                let mut v = *v;
                v.node = node_map
                    .get(v.node as usize)
                    .copied()
                    .unwrap_or(process_node);
                v.thread += thread_base;
                v
            }));
        }
        for s in &r.sites {
            let e = sites.entry(s.location.clone()).or_insert_with(|| Site {
                peak_bytes: 0,
                leaked_bytes: 0,
                allocated_bytes: 0,
                allocations: 0,
                temporary_bytes: 0,
                high_water_bytes: 0,
                ..s.clone()
            });
            e.peak_bytes = e.peak_bytes.saturating_add(s.peak_bytes);
            e.leaked_bytes = e.leaked_bytes.saturating_add(s.leaked_bytes);
            e.allocated_bytes = e.allocated_bytes.saturating_add(s.allocated_bytes);
            e.allocations = e.allocations.saturating_add(s.allocations);
            e.temporary_bytes = e.temporary_bytes.saturating_add(s.temporary_bytes);
            // Processes may hold it at the same time: the sum is what it could have held.
            e.high_water_bytes = e.high_water_bytes.saturating_add(s.high_water_bytes);
        }
        checkpoints.extend(r.checkpoints.iter().map(|c| CheckpointMark {
            time_s: c.time_s + offset,
            label: format!("{} (pid {})", c.label, r.meta.pid),
        }));
        if let Some(w) = &r.meta.warning {
            warnings.push(format!("pid {}: {w}", r.meta.pid));
        }
    }
    checkpoints.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    let timeline = merged_timeline(reports);
    let (peak, sum_of_peaks) = combined_peak(reports);
    if reports.len() > 1 {
        // Said once, where the figures are: the lines of the peak view add up to the sum.
        warnings.insert(
            0,
            format!(
                "{} processes: each line's peak figure is what it held at its own process's \
                 peak ({} in all); the tree's combined peak on one clock is {}",
                reports.len(),
                crate::human_bytes(sum_of_peaks),
                crate::human_bytes(peak)
            ),
        );
    }
    let peak_time_s = timeline
        .iter()
        .find(|p| p.live_bytes >= peak)
        .map_or(0.0, |p| p.time_s);
    let first = reports.first().map(|r| &r.meta);
    let modes: Vec<&str> = reports.iter().map(|r| r.meta.mode.as_str()).collect();
    let mut flames: Vec<Flame> = flames.into_values().collect();
    flames.sort_by_key(|f| View::ALL.iter().position(|&v| v == f.view));
    let mut report = Report {
        meta: Meta {
            command: first.map_or_else(Vec::new, |m| m.command.clone()),
            python: first.map_or_else(String::new, |m| m.python.clone()),
            pid: first.map_or(0, |m| m.pid),
            mode: if modes.windows(2).all(|w| w[0] == w[1]) {
                modes.first().copied().unwrap_or("exact").to_owned()
            } else {
                "mixed".to_owned()
            },
            sample_rate: first.map_or(1, |m| m.sample_rate),
            duration_s: timeline.last().map_or(0.0, |p| p.time_s),
            events: reports.iter().map(|r| r.meta.events).sum(),
            warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
            dropped_events: reports.iter().map(|r| r.meta.dropped_events).sum(),
            sites_estimated: reports.iter().any(|r| r.meta.sites_estimated),
            start_unix_ns: origin,
            processes: reports.len() as u32,
        },
        totals: Totals {
            peak_bytes: peak,
            peak_time_s,
            leaked_bytes: reports.iter().map(|r| r.totals.leaked_bytes).sum(),
            allocated_bytes: reports.iter().map(|r| r.totals.allocated_bytes).sum(),
            allocations: reports.iter().map(|r| r.totals.allocations).sum(),
            rss_peak_bytes: timeline.iter().map(|p| p.rss_bytes).max().unwrap_or(0),
        },
        sites: sites.into_values().collect(),
        timeline,
        findings: Vec::new(),
        threads,
        calls: CallTree { frames, nodes },
        flames,
        moments: Vec::new(),
        checkpoints,
        leak_window: None,
    };
    report.findings = crate::findings::check(&report);
    report
}
