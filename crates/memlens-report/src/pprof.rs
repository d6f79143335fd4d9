//! pprof's `profile.proto`, gzipped, as `go tool pprof` reads it: four sample types
//! (`alloc_objects`/count, `alloc_space`/bytes, `inuse_objects`/count, `inuse_space`/bytes),
//! one sample per allocating stack and thread, with a `thread` label.
//!
//! `alloc_*` are the allocations view. `inuse_*` are the live set the view asks about: the peak
//! set for `peak` and `allocations`, what leaked for `leaks`, and for `temporary` the bytes
//! allocated and soon freed. The default sample type is `alloc_space` for the allocations view
//! and `inuse_space` otherwise. The messages below are written by hand after the published
//! field numbers of `profile.proto` (no code generation).

use std::collections::HashMap;
use std::io::Write as _;

use memlens_analysis::{Report, View};
use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<PLocation>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "10")]
    duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
    #[prost(int64, repeated, tag = "13")]
    comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
struct Label {
    #[prost(int64, tag = "1")]
    key: i64,
    #[prost(int64, tag = "2")]
    str: i64,
}

#[derive(Clone, PartialEq, Message)]
struct PLocation {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
    #[prost(int64, tag = "2")]
    line: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
    #[prost(int64, tag = "3")]
    system_name: i64,
    #[prost(int64, tag = "4")]
    filename: i64,
}

/// The string table: index 0 is the empty string, as pprof requires.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings::default();
        s.id("");
        s
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

fn inuse_view(view: View) -> View {
    match view {
        View::Leaks => View::Leaks,
        View::Temporary => View::Temporary,
        View::Peak | View::Allocations => View::Peak,
    }
}

/// The uncompressed `Profile` message.
pub fn encode(report: &Report, view: View) -> Vec<u8> {
    let mut strings = Strings::new();
    let vt = |strings: &mut Strings, t: &str, u: &str| ValueType {
        r#type: strings.id(t),
        unit: strings.id(u),
    };
    let sample_type = vec![
        vt(&mut strings, "alloc_objects", "count"),
        vt(&mut strings, "alloc_space", "bytes"),
        vt(&mut strings, "inuse_objects", "count"),
        vt(&mut strings, "inuse_space", "bytes"),
    ];
    // Values per (node, thread): [alloc count, alloc bytes, inuse count, inuse bytes].
    let mut values: HashMap<(u32, u32), [i64; 4]> = HashMap::new();
    for (v, offset) in [(View::Allocations, 0), (inuse_view(view), 2)] {
        for sv in report.flame(v).map(|f| f.values.as_slice()).unwrap_or(&[]) {
            let e = values.entry((sv.node, sv.thread)).or_default();
            // Figures past i64::MAX only come from corrupt captures: saturate.
            let count = i64::try_from(sv.count).unwrap_or(i64::MAX);
            let bytes = i64::try_from(sv.bytes).unwrap_or(i64::MAX);
            e[offset] = e[offset].saturating_add(count);
            e[offset + 1] = e[offset + 1].saturating_add(bytes);
        }
    }
    let mut keys: Vec<(u32, u32)> = values.keys().copied().collect();
    keys.sort_unstable();

    // One function per (name, file), one location per frame (function and line).
    let mut functions: Vec<Function> = Vec::new();
    let mut function_ids: HashMap<(i64, i64), u64> = HashMap::new();
    let mut locations: Vec<PLocation> = Vec::new();
    let mut location_of_frame: HashMap<u32, u64> = HashMap::new();
    let mut location_id = |frame: u32, strings: &mut Strings| -> u64 {
        if let Some(&id) = location_of_frame.get(&frame) {
            return id;
        }
        let l = &report.calls.frames[frame as usize];
        let key = (strings.id(&l.function), strings.id(&l.file));
        let next = functions.len() as u64 + 1;
        let function_id = *function_ids.entry(key).or_insert(next);
        if function_id == next {
            functions.push(Function {
                id: next,
                name: key.0,
                system_name: key.0,
                filename: key.1,
            });
        }
        let id = locations.len() as u64 + 1;
        locations.push(PLocation {
            id,
            line: vec![Line {
                function_id,
                line: i64::from(l.line),
            }],
        });
        location_of_frame.insert(frame, id);
        id
    };
    let thread_key = strings.id("thread");
    let mut samples = Vec::with_capacity(keys.len());
    for key in keys {
        let (node, thread) = key;
        let mut location_ids = Vec::new();
        let mut n = node as usize;
        let nodes = &report.calls.nodes;
        // Leaf first, as pprof expects.
        while n != 0 && n < nodes.len() && location_ids.len() < nodes.len() {
            location_ids.push(location_id(nodes[n].frame, &mut strings));
            n = nodes[n].parent as usize;
        }
        let label = report
            .threads
            .get(thread as usize)
            .map(|t| Label {
                key: thread_key,
                str: strings.id(&t.name),
            })
            .into_iter()
            .collect();
        samples.push(Sample {
            location_id: location_ids,
            value: values[&key].to_vec(),
            label,
        });
    }
    let comment = vec![
        strings.id(&format!("memlens {} view", view.name())),
        strings.id(&format!("command: {}", report.meta.command.join(" "))),
    ];
    // A string-table index of the preferred type's name (profile.proto), not an index into
    // `sample_type`: `go tool pprof` opens on it.
    let preferred = strings.id(if view == View::Allocations {
        "alloc_space"
    } else {
        "inuse_space"
    });
    let profile = Profile {
        period_type: Some(vt(&mut strings, "space", "bytes")),
        period: report.meta.sample_rate.max(1) as i64,
        sample_type,
        sample: samples,
        location: locations,
        function: functions,
        duration_nanos: (report.meta.duration_s * 1e9) as i64,
        comment,
        default_sample_type: preferred,
        string_table: strings.table,
    };
    profile.encode_to_vec()
}

/// Writes the gzipped profile.
pub fn render(report: &Report, view: View, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&encode(report, view))?;
    gz.finish()?;
    Ok(())
}
