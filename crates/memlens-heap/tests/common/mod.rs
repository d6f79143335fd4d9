//! A heap shaped like a real Python program's, built with the `SnapshotBuilder`.
#![allow(dead_code)]

use memlens_heap::{
    EdgeKind, EdgeLabel, NodeFlags, NodeId, Object, RootKind, SnapshotBuilder, TypeId,
};

pub const MODULE: u64 = 72;
pub const MODULE_DICT: u64 = 640;
pub const RECORD: u64 = 48;
pub const INSTANCE_DICT: u64 = 104;
pub const PAYLOAD: u64 = 1033;
pub const CLOSURE_BYTES: u64 = 500_033;
pub const BUFFER: u64 = 200_057;
pub const TB_BYTES: u64 = 10_033;

pub fn str_size(s: &str) -> u64 {
    49 + s.len() as u64
}

pub fn record_name(i: usize) -> String {
    if i.is_multiple_of(2) {
        "alice".to_string()
    } else {
        format!("user{i}")
    }
}

/// Retained size of the `_RESULTS` list holding `n` records.
pub fn results_retained(n: usize) -> u64 {
    let mut total = 56 + 8 * n as u64;
    for i in 0..n {
        total += RECORD + INSTANCE_DICT + str_size(&record_name(i)) + PAYLOAD;
    }
    total
}

pub struct App {
    pub bytes: Vec<u8>,
    pub results: NodeId,
    pub records: Vec<NodeId>,
    pub record_names: Vec<NodeId>,
    pub closure_bytes: NodeId,
    pub buffer: NodeId,
    pub listener: NodeId,
    pub tb_bytes: Vec<NodeId>,
    pub registry_list: NodeId,
    pub weak_only: NodeId,
    pub noise: NodeId,
}

struct T {
    module: TypeId,
    dict: TypeId,
    list: TypeId,
    str_: TypeId,
    bytes: TypeId,
    record: TypeId,
    type_: TypeId,
    function: TypeId,
    tuple: TypeId,
    cell: TypeId,
    method: TypeId,
    listener: TypeId,
    bytearray: TypeId,
    value_error: TypeId,
    traceback: TypeId,
    frame: TypeId,
    weakref: TypeId,
    int: TypeId,
}

/// Builds the app heap with `n` records in `_RESULTS`, `noise` entries in a second list, and
/// addresses offset by `base` (so that snapshots of one program differ in addresses).
pub fn app(n: usize, noise: usize, base: u64) -> App {
    let mut b = SnapshotBuilder::new(Vec::new()).unwrap();
    b.set_meta("python", "3.12.1").unwrap();
    let t = T {
        module: b.add_type("module").unwrap(),
        dict: b.add_type("dict").unwrap(),
        list: b.add_type("list").unwrap(),
        str_: b.add_type("str").unwrap(),
        bytes: b.add_type("bytes").unwrap(),
        record: b.add_type("app.models.Record").unwrap(),
        type_: b.add_type("type").unwrap(),
        function: b.add_type("function").unwrap(),
        tuple: b.add_type("tuple").unwrap(),
        cell: b.add_type("cell").unwrap(),
        method: b.add_type("method").unwrap(),
        listener: b.add_type("app.events.Listener").unwrap(),
        bytearray: b.add_type("bytearray").unwrap(),
        value_error: b.add_type("ValueError").unwrap(),
        traceback: b.add_type("traceback").unwrap(),
        frame: b.add_type("frame").unwrap(),
        weakref: b.add_type("weakref.ReferenceType").unwrap(),
        int: b.add_type("int").unwrap(),
    };
    let site = b.add_site("app/cache.py", 12).unwrap();
    let mut addr = base;
    let mut obj = |b: &mut SnapshotBuilder<Vec<u8>>, o: Object<'_>| {
        addr += 0x40;
        b.add_object(Object { address: addr, ..o }).unwrap()
    };
    let module = |b: &mut SnapshotBuilder<Vec<u8>>,
                  obj: &mut dyn FnMut(&mut SnapshotBuilder<Vec<u8>>, Object<'_>) -> NodeId,
                  name: &str| {
        let m = obj(b, Object::new(0, t.module, MODULE));
        let d = obj(b, Object::new(0, t.dict, MODULE_DICT));
        b.add_internal(m, d, "__dict__").unwrap();
        let nm = obj(b, Object::new(0, t.str_, str_size(name)).preview(name));
        b.add_key(d, nm, "__name__").unwrap();
        b.add_root(m, RootKind::Module, &format!("module `{name}`"))
            .unwrap();
        (m, d)
    };

    // app.models: class Registry with a class attribute `instances`, and class Record.
    let (_, models) = module(&mut b, &mut obj, "app.models");
    let record_class = obj(
        &mut b,
        Object::new(0, t.type_, 1064).flags(NodeFlags::CLASS),
    );
    b.add_key(models, record_class, "Record").unwrap();
    let registry = obj(
        &mut b,
        Object::new(0, t.type_, 1064).flags(NodeFlags::CLASS),
    );
    b.add_key(models, registry, "Registry").unwrap();
    let reg_dict = obj(&mut b, Object::new(0, t.dict, 272));
    b.add_internal(registry, reg_dict, "__dict__").unwrap();
    let registry_list = obj(&mut b, Object::new(0, t.list, 56 + 8 * 3));
    b.add_key(reg_dict, registry_list, "instances").unwrap();
    for i in 0..3 {
        let d = obj(&mut b, Object::new(0, t.dict, 232));
        b.add_index(registry_list, d, i).unwrap();
    }

    // app.cache: `_RESULTS` list of records, a weak reference, a noise list.
    let (_, cache) = module(&mut b, &mut obj, "app.cache");
    let results = obj(&mut b, Object::new(0, t.list, 56 + 8 * n as u64).site(site));
    b.add_key(cache, results, "_RESULTS").unwrap();
    let mut records = Vec::new();
    let mut record_names = Vec::new();
    for i in 0..n {
        let r = obj(
            &mut b,
            Object::new(0, t.record, RECORD).flags(NodeFlags::GC_TRACKED),
        );
        b.add_index(results, r, i as u64).unwrap();
        b.add_internal(r, record_class, "__class__").unwrap();
        let d = obj(&mut b, Object::new(0, t.dict, INSTANCE_DICT));
        b.add_internal(r, d, "__dict__").unwrap();
        let name = record_name(i);
        let s = obj(
            &mut b,
            Object::new(0, t.str_, str_size(&name)).preview(&name),
        );
        b.add_key(d, s, "name").unwrap();
        let p = obj(&mut b, Object::new(0, t.bytes, PAYLOAD));
        b.add_key(d, p, "payload").unwrap();
        b.add_key(d, r, "self_ref").unwrap(); // a cycle
        records.push(r);
        record_names.push(s);
    }
    let weakref = obj(
        &mut b,
        Object::new(0, t.weakref, 80).flags(NodeFlags::WEAKREF),
    );
    b.add_key(cache, weakref, "_WEAK").unwrap();
    let weak_only = obj(&mut b, Object::new(0, t.record, RECORD));
    b.add_edge(weakref, weak_only, EdgeLabel::None, EdgeKind::Weak)
        .unwrap();
    let noise_list = obj(&mut b, Object::new(0, t.list, 56 + 8 * noise as u64));
    b.add_key(cache, noise_list, "_NOISE").unwrap();
    for i in 0..noise {
        let v = obj(&mut b, Object::new(0, t.int, 28));
        b.add_index(noise_list, v, i as u64).unwrap();
    }

    // app.handlers: a closure capturing a large bytes object.
    let (_, handlers) = module(&mut b, &mut obj, "app.handlers");
    let func = obj(&mut b, Object::new(0, t.function, 152));
    b.add_key(handlers, func, "handler").unwrap();
    let closure = obj(&mut b, Object::new(0, t.tuple, 48));
    b.add_internal(func, closure, "__closure__").unwrap();
    let cell = obj(&mut b, Object::new(0, t.cell, 32));
    let payload_name = b.intern("payload").unwrap();
    b.add_edge(
        closure,
        cell,
        EdgeLabel::Cell(payload_name),
        EdgeKind::Strong,
    )
    .unwrap();
    let closure_bytes = obj(&mut b, Object::new(0, t.bytes, CLOSURE_BYTES));
    b.add_internal(cell, closure_bytes, "cell_contents")
        .unwrap();

    // app.events: a bound method kept in a list of listeners.
    let (_, events) = module(&mut b, &mut obj, "app.events");
    let listeners = obj(&mut b, Object::new(0, t.list, 64));
    b.add_key(events, listeners, "_LISTENERS").unwrap();
    let method = obj(&mut b, Object::new(0, t.method, 48));
    b.add_index(listeners, method, 0).unwrap();
    let listener = obj(&mut b, Object::new(0, t.listener, 48));
    b.add_internal(method, listener, "__self__").unwrap();
    let on_event = obj(&mut b, Object::new(0, t.function, 152));
    b.add_internal(method, on_event, "__func__").unwrap();
    b.add_key(events, on_event, "on_event").unwrap();
    let ldict = obj(&mut b, Object::new(0, t.dict, INSTANCE_DICT));
    b.add_internal(listener, ldict, "__dict__").unwrap();
    let buffer = obj(&mut b, Object::new(0, t.bytearray, BUFFER));
    b.add_key(ldict, buffer, "buffer").unwrap();

    // An exception being handled on the main thread keeps a frame's locals alive.
    let exc = obj(&mut b, Object::new(0, t.value_error, 72));
    let tb = obj(&mut b, Object::new(0, t.traceback, 64));
    b.add_internal(exc, tb, "__traceback__").unwrap();
    let frame = obj(&mut b, Object::new(0, t.frame, 400));
    b.add_internal(tb, frame, "tb_frame").unwrap();
    let rows = obj(&mut b, Object::new(0, t.list, 80));
    let rows_name = b.intern("rows").unwrap();
    b.add_edge(frame, rows, EdgeLabel::Local(rows_name), EdgeKind::Strong)
        .unwrap();
    let mut tb_bytes = Vec::new();
    for i in 0..3 {
        let x = obj(&mut b, Object::new(0, t.bytes, TB_BYTES));
        b.add_index(rows, x, i).unwrap();
        tb_bytes.push(x);
    }
    b.add_root(
        exc,
        RootKind::Exception,
        "thread \"MainThread\" handled exception",
    )
    .unwrap();

    let bytes = b.finish().unwrap();
    App {
        bytes,
        results,
        records,
        record_names,
        closure_bytes,
        buffer,
        listener,
        tb_bytes,
        registry_list,
        weak_only,
        noise: noise_list,
    }
}
