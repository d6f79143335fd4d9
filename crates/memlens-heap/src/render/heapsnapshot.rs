//! Chrome DevTools `.heapsnapshot` export (the V8 heap snapshot JSON), for DevTools and MemLab.
//!
//! Layout: `snapshot.meta` names the fields; `nodes` is a flat array of 7 numbers per node
//! (type, name, id, self_size, edge_count, trace_node_id, detachedness); `edges` a flat array of
//! 3 numbers per edge (type, name_or_index, to_node), where `to_node` is the target's offset in
//! `nodes` (node index times 7); a node's edges follow those of the node before it. Node 0 is a
//! synthetic root with one edge per Python root.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::hash::FxBuild;
use crate::model::{EdgeKind, EdgeLabel, NodeFlags, NodeId, Snapshot};

const NODE_FIELDS: usize = 7;
const META: &str = r#"{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"],"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[["context","element","property","internal","hidden","shortcut","weak"],"string_or_number","node"],"trace_function_info_fields":["function_id","name","script_name","script_id","line","column"],"trace_node_fields":["id","function_info_index","count","size","children"],"sample_fields":["timestamp_us","last_assigned_id"],"location_fields":["object_index","script_id","line","column"]}"#;

const N_STRING: u32 = 2;
const N_OBJECT: u32 = 3;
const N_CODE: u32 = 4;
const N_NUMBER: u32 = 7;
const N_NATIVE: u32 = 8;
const N_SYNTHETIC: u32 = 9;
const E_CONTEXT: u32 = 0;
const E_ELEMENT: u32 = 1;
const E_PROPERTY: u32 = 2;
const E_INTERNAL: u32 = 3;
const E_HIDDEN: u32 = 4;
const E_WEAK: u32 = 6;

struct Strings<'a> {
    map: HashMap<&'a str, u32, FxBuild>,
    list: Vec<&'a str>,
    owned: Vec<(u32, String)>,
}

impl<'a> Strings<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.map.insert(s, i);
        self.list.push(s);
        i
    }

    fn owned(&mut self, s: String) -> u32 {
        let i = self.list.len() as u32;
        // Owned strings are rare (numeric keys too large for an element index).
        self.list.push("");
        self.owned.push((i, s));
        i
    }
}

fn push_num(buf: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn node_type(snap: &Snapshot, n: NodeId) -> u32 {
    if snap.flags(n).contains(NodeFlags::SYNTHETIC) {
        return N_NATIVE;
    }
    match snap.type_name(n) {
        "str" | "bytes" | "builtins.str" | "builtins.bytes" => N_STRING,
        "int" | "float" | "bool" | "complex" => N_NUMBER,
        "code" => N_CODE,
        _ => N_OBJECT,
    }
}

/// Writes `snap` as a V8 `.heapsnapshot`.
pub(crate) fn write<'a>(snap: &'a Snapshot, out: &mut dyn Write) -> io::Result<()> {
    let n = snap.node_count();
    let mut strings = Strings {
        map: HashMap::default(),
        list: Vec::new(),
        owned: Vec::new(),
    };
    let root_name = strings.id("(Python roots)");
    let edge_total = snap.edge_count() + snap.roots.len();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(b"{\"snapshot\":{\"meta\":");
    buf.extend_from_slice(META.as_bytes());
    buf.extend_from_slice(b",\"node_count\":");
    push_num(&mut buf, n as u64 + 1);
    buf.extend_from_slice(b",\"edge_count\":");
    push_num(&mut buf, edge_total as u64);
    buf.extend_from_slice(b",\"trace_function_count\":0},\n\"nodes\":[");

    let row = |buf: &mut Vec<u8>, vals: [u64; NODE_FIELDS], first: bool| {
        if !first {
            buf.push(b',');
        }
        for (i, v) in vals.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            push_num(buf, *v);
        }
        buf.push(b'\n');
    };
    row(
        &mut buf,
        [
            u64::from(N_SYNTHETIC),
            u64::from(root_name),
            1,
            0,
            snap.roots.len() as u64,
            0,
            0,
        ],
        true,
    );
    for i in 0..n {
        let id = NodeId(i as u32);
        let t = node_type(snap, id);
        let name = match (t, snap.preview(id)) {
            (N_STRING | N_NUMBER, Some(p)) => strings.id(p),
            _ => strings.id(snap.type_name(id)),
        };
        let edges = snap.edge_range(i as u32).len() as u64;
        row(
            &mut buf,
            [
                u64::from(t),
                u64::from(name),
                2 * i as u64 + 3,
                snap.size[i],
                edges,
                0,
                0,
            ],
            false,
        );
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"],\n\"edges\":[");
    let mut first = true;
    let mut edge = |buf: &mut Vec<u8>, ty: u32, name: u64, to: u64| {
        if !first {
            buf.push(b',');
        }
        first = false;
        push_num(buf, u64::from(ty));
        buf.push(b',');
        push_num(buf, name);
        buf.push(b',');
        push_num(buf, (to + 1) * NODE_FIELDS as u64);
        buf.push(b'\n');
    };
    for r in &snap.roots {
        let name = strings.id(snap.string(r.description));
        edge(&mut buf, E_PROPERTY, u64::from(name), u64::from(r.node.0));
    }
    for i in 0..n {
        for (ordinal, e) in snap.edges(NodeId(i as u32)).enumerate() {
            let named = |strings: &mut Strings<'a>, s| u64::from(strings.id(snap.string(s)));
            let (mut ty, name) = match e.label {
                EdgeLabel::Attr(s) | EdgeLabel::Key(s) | EdgeLabel::OtherKey(s) => {
                    (E_PROPERTY, named(&mut strings, s))
                }
                EdgeLabel::IntKey(k) if (0..=i64::from(u32::MAX)).contains(&k) => {
                    (E_ELEMENT, k as u64)
                }
                EdgeLabel::IntKey(k) => (E_PROPERTY, u64::from(strings.owned(k.to_string()))),
                EdgeLabel::Index(k) => (E_ELEMENT, k),
                EdgeLabel::Cell(s) | EdgeLabel::Local(s) => (E_CONTEXT, named(&mut strings, s)),
                EdgeLabel::Internal(s) => (E_INTERNAL, named(&mut strings, s)),
                EdgeLabel::Hidden | EdgeLabel::None => (E_HIDDEN, ordinal as u64),
            };
            let mut name = name;
            if e.kind == EdgeKind::Weak {
                // Weak edges are named; an element index becomes its decimal text.
                if matches!(ty, E_ELEMENT | E_HIDDEN) {
                    name = u64::from(strings.owned(name.to_string()));
                }
                ty = E_WEAK;
            }
            edge(&mut buf, ty, name, u64::from(e.to.0));
        }
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(
        b"],\n\"trace_function_infos\":[],\"trace_tree\":[],\"samples\":[],\"locations\":[],\n\"strings\":[",
    );
    let mut owned = strings.owned.iter().peekable();
    for (i, s) in strings.list.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let text: &str = match owned.peek() {
            Some((j, o)) if *j as usize == i => {
                owned.next();
                o
            }
            _ => s,
        };
        serde_json::to_writer(&mut buf, text)?;
        buf.push(b'\n');
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"]}\n");
    out.write_all(&buf)?;
    out.flush()
}
