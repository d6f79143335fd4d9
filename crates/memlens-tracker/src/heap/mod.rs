//! The heap walker: every object of the running interpreter, every reference between them and
//! the roots that hold them, streamed into a [`memlens_heap::SnapshotBuilder`].
//!
//! The walk runs with the GIL held and allocates no Python object. It starts from explicit
//! roots (each module in `sys.modules`, the `sys` and `builtins` dicts, every thread's frames,
//! exceptions and state) and follows references breadth-first; then it visits the objects of
//! the garbage collector's lists (every generation and the permanent one, so objects hidden by
//! `gc.freeze()` are found) that the roots did not reach. References come from `tp_traverse`
//! (only for objects the GC could traverse: `Py_TPFLAGS_HAVE_GC` and `tp_is_gc`), and from
//! per-type extractors that name them (dict keys, indices, attributes, closure cells, frame
//! locals) or find what traverse leaves out (`str` dict keys, weak referents, code constants,
//! numpy's `.base`). Objects the GC does not track (ints, strs, untracked tuples and dicts) are
//! found through their referrers. An object that the roots do not reach and whose refcount
//! exceeds the references found to it is held from outside the heap (C code): it becomes a
//! root of kind [`RootKind::RefcountSurplus`]. Immortal objects (3.12+) are never such roots.
//!
//! Sizes come from the type layout: `tp_basicsize + |ob_size| * tp_itemsize`, plus the GC
//! header and the managed-dict pre-header, with exact formulas for `str`, `int`, `list`,
//! `dict` (`_PyDict_SizeOf`), `set`, instance values (3.11+) and numpy buffers the array owns.

mod ffi;
mod layout;

use std::collections::HashSet;
use std::ffi::{CStr, c_int, c_void};
use std::hash::{BuildHasher, BuildHasherDefault};
use std::io::Write;

use memlens_heap::{
    EdgeKind, EdgeLabel, HeapError, NodeFlags, NodeId, Object, RootKind, SnapshotBuilder, StrId,
    TypeId,
};

use layout::*;
pub use layout::{COMMON_OFFSETS, HeapExtra};

use crate::python::{FrameModel, Layout, LocalsModel, ManagedDict};

/// The roots the caller hands in: objects it holds references to while the walk runs.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// `sys.modules` (a dict).
    pub modules: usize,
    /// `sys.__dict__`.
    pub sys_dict: usize,
    /// `builtins.__dict__`.
    pub builtins: usize,
    /// Names of threads by `threading.get_ident()`, to describe thread roots.
    pub thread_names: Vec<(u64, String)>,
    /// A class defined in Python deriving from `object` only (or 0): its `tp_traverse` is the
    /// interpreter's `subtype_traverse`, which tells the walker which instances it can read
    /// completely without calling traverse.
    pub plain_class: usize,
    /// Store the program's values: the first 64 characters of every `str` and `bytes`. Off by
    /// default (they may be tokens, passwords, environment values); a keyed hash of each whole
    /// value is stored either way, for duplicate detection.
    pub values: bool,
}

/// What a walk found.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapStats {
    /// Objects written (synthetic frame nodes included).
    pub objects: u64,
    /// References written.
    pub edges: u64,
    /// Roots written.
    pub roots: u64,
    /// Sum of shallow sizes, bytes.
    pub bytes: u64,
}

/// Walks the heap of the running interpreter into `builder`.
///
/// # Safety
/// The caller holds the GIL for the whole call, runs no Python code meanwhile, and `roots`
/// names live objects of the kinds documented on [`Roots`] (or 0).
pub unsafe fn walk<W: Write>(
    layout: &'static Layout,
    roots: &Roots,
    mut builder: SnapshotBuilder<W>,
) -> Result<(W, HeapStats), HeapError> {
    // Readers tell "no value stored" from "no str in the heap" by this key.
    builder.set_meta("values", if roots.values { "stored" } else { "none" })?;
    let mut w = Walker::new(layout, builder)?;
    // SAFETY: forwarded from the caller.
    unsafe { w.run(roots)? };
    let stats = w.stats;
    Ok((w.b.finish()?, stats))
}

/// Whether the garbage collector of this interpreter is collecting (`gc.collecting`, set for
/// the whole collection including its `gc.callbacks`), when its lists are being rearranged.
///
/// # Safety
/// The caller holds the GIL.
pub unsafe fn gc_running(layout: &'static Layout) -> bool {
    let Some(x) = HeapExtra::of(layout.version.1) else {
        return false;
    };
    // SAFETY: the interpreter state is alive; `gc.collecting` is an int at this offset
    // (checked against the headers by tests/layouts.rs).
    unsafe {
        let interp = ffi::PyInterpreterState_Get() as usize;
        rd::<c_int>(interp, x.gc_collecting) != 0
    }
}

/// Hashes object addresses: a 64x64->128-bit multiply folded onto itself, so every input bit
/// reaches the low bits that pick a bucket (addresses are 16-byte aligned, and a plain multiply
/// would leave their low bits zero).
#[derive(Default, Clone, Copy)]
struct AddrHasher(u64);

#[inline(always)]
fn mix(v: u64) -> u64 {
    let m = u128::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    (m >> 64) as u64 ^ m as u64
}

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix(v ^ self.0);
    }
}

/// Address -> node id and the strong references found to it: open addressing with linear
/// probing over packed `(address, id, found)` slots, so a lookup costs one cache miss (the walk
/// does one per reference). Address 0 marks a free slot; the table doubles at 3/4 load.
struct NodeIds {
    slots: Vec<(u64, u32, u32)>,
    len: usize,
}

impl NodeIds {
    fn with_capacity(n: usize) -> Self {
        let cap = (n + n / 2).next_power_of_two().max(1024);
        NodeIds {
            slots: vec![(0, 0, 0); cap],
            len: 0,
        }
    }

    /// The slot of `addr`, filled with id `fresh` when new; true when it was new.
    #[inline]
    fn slot(&mut self, addr: u64, fresh: u32) -> (&mut (u64, u32, u32), bool) {
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = mix(addr) as usize & mask;
        loop {
            let k = self.slots[i].0;
            if k == addr {
                return (&mut self.slots[i], false);
            }
            if k == 0 {
                self.slots[i] = (addr, fresh, 0);
                self.len += 1;
                return (&mut self.slots[i], true);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let bigger = vec![(0, 0, 0); 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, bigger);
        self.len = 0;
        for (k, v, f) in old {
            if k != 0 {
                self.slot(k, v).0.2 = f;
            }
        }
    }

    /// Starts loading the slot of `addr` into the cache (the walk knows an object's references
    /// before it looks them up, so several misses overlap).
    #[inline(always)]
    fn prefetch(&self, addr: u64) {
        let i = mix(addr) as usize & (self.slots.len() - 1);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults; the pointer is inside `slots`.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(i) as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    fn contains(&self, addr: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = mix(addr) as usize & mask;
        loop {
            match self.slots[i].0 {
                0 => return false,
                k if k == addr => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

type AddrMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<AddrHasher>>;
type AddrSet = HashSet<u64, BuildHasherDefault<AddrHasher>>;

/// Reads `T` at `base + offset`.
///
/// # Safety
/// `base + offset` must be readable memory holding a `T`.
#[inline(always)]
unsafe fn rd<T: Copy>(base: usize, offset: usize) -> T {
    // SAFETY: the caller guarantees the address is readable; unaligned reads are allowed.
    unsafe { std::ptr::read_unaligned((base + offset) as *const T) }
}

/// What the walker knows about one type object.
#[derive(Clone, Copy)]
struct TypeInfo {
    id: TypeId,
    kind: Kind,
    /// Exact builtin type (extractors are complete; traverse is not needed).
    exact: bool,
    flags: u64,
    basicsize: usize,
    itemsize: usize,
    dictoffset: isize,
    traverse: usize,
    is_gc: usize,
    /// Index into `Walker::members` of the type's object members (`__slots__`, C members), or
    /// `u32::MAX` when it has none.
    members: u32,
    /// A class defined in Python whose bases up to `object` are too: `subtype_traverse`
    /// reports exactly its members, its `__dict__` (or attribute values) and its class, which
    /// the extractors read, so traverse is not called.
    plain: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Other,
    Str,
    Bytes,
    ByteArray,
    Int,
    Dict,
    List,
    Tuple,
    Set,
    Module,
    Type,
    Function,
    Method,
    Cell,
    Frame,
    Traceback,
    Code,
    Weakref,
    Exception,
    NdArray,
    /// Generators, coroutines and async generators.
    Generator,
}

/// A queued node: an object, or an interpreter frame of a thread (3.11+) that has no frame
/// object of its own.
#[derive(Clone, Copy)]
struct Item {
    addr: usize,
    frame: bool,
}

/// Fixed edge labels, interned once.
struct Labels {
    dict: StrId,
    key: StrId,
    class: StrId,
    base: StrId,
    mro: StrId,
    code: StrId,
    globals: StrId,
    closure: StrId,
    defaults: StrId,
    func: StrId,
    self_: StrId,
    cell: StrId,
    f_back: StrId,
    f_locals: StrId,
    frame_obj: StrId,
    tb_next: StrId,
    tb_frame: StrId,
    traceback: StrId,
    context: StrId,
    cause: StrId,
    args: StrId,
    referent: StrId,
    consts: StrId,
    names: StrId,
    array_base: StrId,
    descr: StrId,
    value_stack: StrId,
    gi_frame: StrId,
}

struct Walker<W: Write> {
    l: &'static Layout,
    x: &'static HeapExtra,
    /// Object members of types, named (see `TypeInfo::members`).
    members: Vec<Vec<(usize, StrId)>>,
    /// Value stacks of thread frames whose depth is not known: (frame node, first slot,
    /// slots). After the roots are walked, a slot that holds an object found nowhere else but
    /// in the GC's lists becomes a reference from its frame.
    stacks: Vec<(u32, usize, usize)>,
    /// `subtype_traverse` (from `Roots::plain_class`), or 0.
    subtype_traverse: usize,
    /// `MEMLENS_HEAP_VERIFY` is set: check instances read without traverse against it.
    verify: bool,
    /// Attribute labels of shared keys (3.11+): keys object -> (entries named, labels).
    key_labels: AddrMap<(usize, Vec<EdgeLabel>)>,
    b: SnapshotBuilder<W>,
    ids: NodeIds,
    queue: Vec<Item>,
    types: AddrMap<TypeInfo>,
    /// The type looked up last (address 0: none yet).
    last_type: (usize, TypeInfo),
    /// `str` object -> interned text.
    strs: AddrMap<StrId>,
    /// Key type -> the label of keys of that type that are neither `str` nor `int`.
    other_keys: AddrMap<StrId>,
    /// Closure tuple -> the code object naming its cells.
    closure_of: AddrMap<usize>,
    frozen: AddrSet,
    labels: Labels,
    dict_sizeof: Option<unsafe extern "C" fn(*mut c_void) -> isize>,
    traversed: Vec<usize>,
    labeled: Vec<(usize, EdgeLabel, bool)>,
    /// Scratch: the labels available to name traverse's references.
    names: Vec<(usize, EdgeLabel, bool)>,
    text: String,
    preview: String,
    /// Whether previews of values are stored (`Roots::values`).
    values: bool,
    /// Keys the value hashes of this snapshot: a hash can be compared within the snapshot but
    /// not checked against guesses of a value (the key is random and never stored).
    value_key: std::hash::RandomState,
    stats: HeapStats,
    none: usize,
    t: BuiltinTypes,
}

struct BuiltinTypes {
    dict: usize,
    list: usize,
    tuple: usize,
    str_: usize,
    bytes: usize,
    bytearray: usize,
    int: usize,
    set: usize,
    frozenset: usize,
    module: usize,
    function: usize,
    method: usize,
    cell: usize,
    frame: usize,
    traceback: usize,
    type_: usize,
    code: usize,
    weakref: usize,
    proxy: usize,
    callable_proxy: usize,
    generator: usize,
    coroutine: usize,
    async_generator: usize,
}

impl BuiltinTypes {
    fn get() -> Self {
        use std::ptr::addr_of;
        // Taking the addresses of the interpreter's static type objects; nothing is read here.
        BuiltinTypes {
            dict: addr_of!(ffi::PyDict_Type) as usize,
            list: addr_of!(ffi::PyList_Type) as usize,
            tuple: addr_of!(ffi::PyTuple_Type) as usize,
            str_: addr_of!(ffi::PyUnicode_Type) as usize,
            bytes: addr_of!(ffi::PyBytes_Type) as usize,
            bytearray: addr_of!(ffi::PyByteArray_Type) as usize,
            int: addr_of!(ffi::PyLong_Type) as usize,
            set: addr_of!(ffi::PySet_Type) as usize,
            frozenset: addr_of!(ffi::PyFrozenSet_Type) as usize,
            module: addr_of!(ffi::PyModule_Type) as usize,
            function: addr_of!(ffi::PyFunction_Type) as usize,
            method: addr_of!(ffi::PyMethod_Type) as usize,
            cell: addr_of!(ffi::PyCell_Type) as usize,
            frame: addr_of!(ffi::PyFrame_Type) as usize,
            traceback: addr_of!(ffi::PyTraceBack_Type) as usize,
            type_: addr_of!(ffi::PyType_Type) as usize,
            code: addr_of!(ffi::PyCode_Type) as usize,
            weakref: addr_of!(ffi::_PyWeakref_RefType) as usize,
            proxy: addr_of!(ffi::_PyWeakref_ProxyType) as usize,
            callable_proxy: addr_of!(ffi::_PyWeakref_CallableProxyType) as usize,
            generator: addr_of!(ffi::PyGen_Type) as usize,
            coroutine: addr_of!(ffi::PyCoro_Type) as usize,
            async_generator: addr_of!(ffi::PyAsyncGen_Type) as usize,
        }
    }
}

/// The `visitproc` handed to `tp_traverse`: appends each referent to a `Vec<usize>`.
unsafe extern "C" fn visit(obj: *mut c_void, arg: *mut c_void) -> c_int {
    if !obj.is_null() {
        // SAFETY: `arg` is the `&mut Vec<usize>` passed by `Walker::traverse`, alive and not
        // otherwise borrowed during the traverse call. Pushing cannot unwind short of aborting.
        let out = unsafe { &mut *(arg as *mut Vec<usize>) };
        out.push(obj as usize);
    }
    0
}

/// Longest preview kept for `str` and `bytes` values (characters).
const PREVIEW: usize = 64;
/// Longest dict key or attribute name kept as a label (characters).
const LABEL: usize = 200;

impl<W: Write> Walker<W> {
    fn new(l: &'static Layout, mut b: SnapshotBuilder<W>) -> Result<Self, HeapError> {
        let mut i = |s: &str| b.intern(s);
        let labels = Labels {
            dict: i("__dict__")?,
            key: i("key")?,
            class: i("__class__")?,
            base: i("__base__")?,
            mro: i("__mro__")?,
            code: i("__code__")?,
            globals: i("__globals__")?,
            closure: i("__closure__")?,
            defaults: i("__defaults__")?,
            func: i("__func__")?,
            self_: i("__self__")?,
            cell: i("cell_contents")?,
            f_back: i("f_back")?,
            f_locals: i("f_locals")?,
            frame_obj: i("frame object")?,
            tb_next: i("tb_next")?,
            tb_frame: i("tb_frame")?,
            traceback: i("__traceback__")?,
            context: i("__context__")?,
            cause: i("__cause__")?,
            args: i("args")?,
            referent: i("referent")?,
            consts: i("co_consts")?,
            names: i("co_names")?,
            array_base: i("base")?,
            descr: i("dtype")?,
            value_stack: i("value stack")?,
            gi_frame: i("gi_frame")?,
        };
        let x = HeapExtra::of(l.version.1).ok_or_else(|| {
            HeapError::Build(format!(
                "no heap layout for CPython {}.{}",
                l.version.0, l.version.1
            ))
        })?;
        Ok(Walker {
            l,
            x,
            members: Vec::new(),
            stacks: Vec::new(),
            subtype_traverse: 0,
            verify: std::env::var_os("MEMLENS_HEAP_VERIFY").is_some_and(|v| v == "1"),
            key_labels: AddrMap::default(),
            b,
            ids: NodeIds::with_capacity(1 << 16),
            queue: Vec::new(),
            types: AddrMap::default(),
            last_type: (
                0,
                TypeInfo {
                    id: TypeId(0),
                    kind: Kind::Other,
                    exact: false,
                    flags: 0,
                    basicsize: 0,
                    itemsize: 0,
                    dictoffset: 0,
                    traverse: 0,
                    is_gc: 0,
                    members: u32::MAX,
                    plain: false,
                },
            ),
            strs: AddrMap::default(),
            closure_of: AddrMap::default(),
            other_keys: AddrMap::default(),
            frozen: AddrSet::default(),
            labels,
            dict_sizeof: ffi::dict_sizeof(),
            traversed: Vec::new(),
            labeled: Vec::new(),
            names: Vec::new(),
            text: String::new(),
            preview: String::new(),
            values: false,
            value_key: std::hash::RandomState::new(),
            stats: HeapStats::default(),
            none: std::ptr::addr_of!(ffi::_Py_NoneStruct) as usize,
            t: BuiltinTypes::get(),
        })
    }

    /// The node id of the object at `addr`, queueing it when first seen; counts a strong
    /// reference to it when `strong`.
    #[inline]
    fn id(&mut self, addr: usize, strong: bool) -> u32 {
        let next = self.queue.len() as u32;
        let (slot, new) = self.ids.slot(addr as u64, next);
        if strong {
            slot.2 = slot.2.saturating_add(1);
        }
        let id = slot.1;
        if new {
            self.queue.push(Item { addr, frame: false });
        }
        id
    }

    fn synthetic(&mut self, addr: usize) -> u32 {
        let id = self.queue.len() as u32;
        self.queue.push(Item { addr, frame: true });
        id
    }

    fn edge(
        &mut self,
        from: u32,
        to: usize,
        label: EdgeLabel,
        kind: EdgeKind,
    ) -> Result<(), HeapError> {
        let t = self.id(to, kind == EdgeKind::Strong);
        self.stats.edges += 1;
        self.b.add_edge(NodeId(from), NodeId(t), label, kind)
    }

    fn root(&mut self, addr: usize, kind: RootKind, description: &str) -> Result<(), HeapError> {
        if addr == 0 {
            return Ok(());
        }
        let id = self.id(addr, false);
        self.stats.roots += 1;
        self.b.add_root(NodeId(id), kind, description)
    }

    /// Interns the text of a `str` object (cached by address: nothing is freed during the walk).
    ///
    /// # Safety
    /// `s` is a live `str`.
    unsafe fn str_id(&mut self, s: usize) -> Result<StrId, HeapError> {
        if let Some(&id) = self.strs.get(&(s as u64)) {
            return Ok(id);
        }
        // SAFETY: forwarded.
        let id = match unsafe { ascii_text(s, self.l.ascii_size, LABEL) } {
            Some(text) => self.b.intern(text)?,
            None => {
                // SAFETY: forwarded.
                unsafe { self.l.read_str(s, LABEL, &mut self.text) };
                self.b.intern(&self.text)?
            }
        };
        self.strs.insert(s as u64, id);
        Ok(id)
    }

    /// # Safety
    /// `obj` is a live object.
    unsafe fn type_of(&self, obj: usize) -> usize {
        // SAFETY: every object starts with its refcount and type.
        unsafe { rd(obj, OB_TYPE) }
    }

    /// # Safety
    /// `tp` is a live type object.
    unsafe fn derives(&self, mut tp: usize, target: usize) -> bool {
        let mut guard = 0;
        while tp != 0 && guard < 64 {
            if tp == target {
                return true;
            }
            // SAFETY: tp_base of a live type is a live type or null.
            tp = unsafe { rd(tp, TP_BASE) };
            guard += 1;
        }
        false
    }

    /// # Safety
    /// `tp` is a live type object.
    unsafe fn type_info(&mut self, tp: usize) -> Result<TypeInfo, HeapError> {
        // Objects of one type often come in runs (a list's elements): one comparison then.
        if self.last_type.0 == tp {
            return Ok(self.last_type.1);
        }
        if let Some(&info) = self.types.get(&(tp as u64)) {
            self.last_type = (tp, info);
            return Ok(info);
        }
        // SAFETY: tp is a live type; its fields have the PyTypeObject layout.
        let info = unsafe {
            let flags: u64 = rd::<u64>(tp, TP_FLAGS);
            let t = &self.t;
            let exact_kinds = [
                (t.dict, Kind::Dict),
                (t.list, Kind::List),
                (t.tuple, Kind::Tuple),
                (t.str_, Kind::Str),
                (t.bytes, Kind::Bytes),
                (t.bytearray, Kind::ByteArray),
                (t.int, Kind::Int),
                (t.set, Kind::Set),
                (t.frozenset, Kind::Set),
                (t.module, Kind::Module),
                (t.function, Kind::Function),
                (t.method, Kind::Method),
                (t.cell, Kind::Cell),
                (t.frame, Kind::Frame),
                (t.traceback, Kind::Traceback),
                (t.type_, Kind::Type),
                (t.code, Kind::Code),
                (t.weakref, Kind::Weakref),
                (t.proxy, Kind::Weakref),
                (t.callable_proxy, Kind::Weakref),
                (t.generator, Kind::Generator),
                (t.coroutine, Kind::Generator),
                (t.async_generator, Kind::Generator),
            ];
            let exact = exact_kinds.iter().find(|(a, _)| *a == tp).map(|&(_, k)| k);
            let kind = match exact {
                Some(k) => k,
                None if flags & TPFLAGS_UNICODE_SUBCLASS != 0 => Kind::Str,
                None if flags & TPFLAGS_BYTES_SUBCLASS != 0 => Kind::Bytes,
                None if flags & TPFLAGS_LONG_SUBCLASS != 0 => Kind::Int,
                None if flags & TPFLAGS_DICT_SUBCLASS != 0 => Kind::Dict,
                None if flags & TPFLAGS_LIST_SUBCLASS != 0 => Kind::List,
                None if flags & TPFLAGS_TUPLE_SUBCLASS != 0 => Kind::Tuple,
                None if flags & TPFLAGS_TYPE_SUBCLASS != 0 => Kind::Type,
                None if flags & TPFLAGS_BASE_EXC_SUBCLASS != 0 => Kind::Exception,
                None if self.derives(tp, t.weakref) => Kind::Weakref,
                None if self.derives(tp, t.bytearray) => Kind::ByteArray,
                None if self.derives(tp, t.module) => Kind::Module,
                None if self.is_ndarray(tp) => Kind::NdArray,
                None => Kind::Other,
            };
            let name = self.type_name(tp);
            let members = if exact.is_some() {
                u32::MAX
            } else {
                self.type_members(tp)?
            };
            let traverse: usize = rd(tp, TP_TRAVERSE);
            let plain = exact.is_none()
                && kind == Kind::Other
                && flags & TPFLAGS_HEAPTYPE != 0
                && self.subtype_traverse != 0
                && traverse == self.subtype_traverse
                && self.plain_bases(tp);
            TypeInfo {
                members,
                plain,
                id: self.b.add_type(&name)?,
                kind,
                exact: exact.is_some(),
                flags,
                basicsize: rd::<isize>(tp, TP_BASICSIZE).max(0) as usize,
                itemsize: rd::<isize>(tp, TP_ITEMSIZE).max(0) as usize,
                dictoffset: rd(tp, TP_DICTOFFSET),
                traverse: rd(tp, TP_TRAVERSE),
                is_gc: rd(tp, TP_IS_GC),
            }
        };
        self.types.insert(tp as u64, info);
        self.last_type = (tp, info);
        Ok(info)
    }

    /// Whether every base of `tp` up to `object` is traversed by `subtype_traverse` (so
    /// `subtype_traverse` ends at `object`, which has no traverse of its own).
    ///
    /// # Safety
    /// `tp` is a live type object.
    unsafe fn plain_bases(&self, mut tp: usize) -> bool {
        let object = std::ptr::addr_of!(ffi::PyBaseObject_Type) as usize;
        for _ in 0..64 {
            if tp == object {
                return true;
            }
            // SAFETY: tp is a live type; tp_base of a live type is a live type or null.
            unsafe {
                if tp == 0 || rd::<usize>(tp, TP_TRAVERSE) != self.subtype_traverse {
                    return false;
                }
                tp = rd(tp, TP_BASE);
            }
        }
        false
    }

    /// Collects the object members (`T_OBJECT`, `T_OBJECT_EX`: `__slots__` of classes, object
    /// fields of C types) of `tp` and its bases, named; returns their index in `self.members`.
    ///
    /// # Safety
    /// `tp` is a live type object.
    unsafe fn type_members(&mut self, mut tp: usize) -> Result<u32, HeapError> {
        let mut found: Vec<(usize, StrId)> = Vec::new();
        let mut guard = 0;
        // SAFETY: tp_members of a live type is null or an array of PyMemberDef ended by a null
        // name; names are NUL-terminated C strings.
        unsafe {
            while tp != 0 && guard < 64 {
                guard += 1;
                let basicsize = rd::<isize>(tp, TP_BASICSIZE).max(0) as usize;
                let mut m: usize = rd(tp, TP_MEMBERS);
                let mut k = 0;
                while m != 0 && k < 4096 {
                    let name: *const std::ffi::c_char = rd(m, 0);
                    if name.is_null() {
                        break;
                    }
                    let ty: c_int = rd(m, MEMBER_TYPE);
                    let off = rd::<isize>(m, MEMBER_OFFSET);
                    if (ty == T_OBJECT || ty == T_OBJECT_EX)
                        && off > 0
                        && (off as usize) + 8 <= basicsize
                        && !found.iter().any(|&(o, _)| o == off as usize)
                    {
                        let text = CStr::from_ptr(name).to_string_lossy();
                        found.push((off as usize, self.b.intern(&text)?));
                    }
                    m += MEMBER_SIZE;
                    k += 1;
                }
                tp = rd(tp, TP_BASE);
            }
        }
        if found.is_empty() {
            return Ok(u32::MAX);
        }
        self.members.push(found);
        Ok((self.members.len() - 1) as u32)
    }

    /// # Safety
    /// `tp` is a live type object.
    unsafe fn is_ndarray(&self, mut tp: usize) -> bool {
        let mut guard = 0;
        while tp != 0 && guard < 64 {
            // SAFETY: tp_name of a live type is a NUL-terminated C string.
            let name = unsafe { CStr::from_ptr(rd::<*const std::ffi::c_char>(tp, TP_NAME)) };
            if name.to_bytes() == b"numpy.ndarray" {
                return true;
            }
            tp = unsafe { rd(tp, TP_BASE) };
            guard += 1;
        }
        false
    }

    /// The qualified name of a type: `tp_name` for static types (`dict`, `numpy.ndarray`),
    /// `__module__` + `.` + `__qualname__` for heap types (`app.models.Record`).
    ///
    /// # Safety
    /// `tp` is a live type object.
    unsafe fn type_name(&mut self, tp: usize) -> String {
        // SAFETY: as documented; heap types have the PyHeapTypeObject layout.
        unsafe {
            let flags: u64 = rd::<u64>(tp, TP_FLAGS);
            let raw = CStr::from_ptr(rd::<*const std::ffi::c_char>(tp, TP_NAME))
                .to_string_lossy()
                .into_owned();
            if flags & TPFLAGS_HEAPTYPE == 0 {
                return raw.strip_prefix("builtins.").unwrap_or(&raw).to_owned();
            }
            let mut qualname = String::new();
            let q: usize = rd(tp, self.l.heap.ht_qualname);
            if q != 0 && rd::<usize>(q, OB_TYPE) == self.t.str_ {
                self.l.read_str(q, 512, &mut qualname);
            }
            if qualname.is_empty() {
                qualname = raw.rsplit('.').next().unwrap_or(&raw).to_owned();
            }
            let mut module = String::new();
            let dict: usize = rd(tp, TP_DICT);
            if dict != 0 && rd::<usize>(dict, OB_TYPE) == self.t.dict {
                let mut pos: isize = 0;
                let mut k: *mut c_void = std::ptr::null_mut();
                let mut v: *mut c_void = std::ptr::null_mut();
                let mut name = String::new();
                while ffi::PyDict_Next(dict as *mut c_void, &mut pos, &mut k, &mut v) != 0 {
                    if rd::<usize>(k as usize, OB_TYPE) != self.t.str_ {
                        continue;
                    }
                    self.l.read_str(k as usize, 16, &mut name);
                    if name == "__module__" {
                        if rd::<usize>(v as usize, OB_TYPE) == self.t.str_ {
                            self.l.read_str(v as usize, 512, &mut module);
                        }
                        break;
                    }
                }
            }
            if module.is_empty() || module == "builtins" {
                qualname
            } else {
                format!("{module}.{qualname}")
            }
        }
    }

    /// # Safety
    /// `obj` is live and of type `info`.
    unsafe fn is_gc(&self, obj: usize, info: &TypeInfo) -> bool {
        if info.flags & TPFLAGS_HAVE_GC == 0 {
            return false;
        }
        if info.is_gc == 0 {
            return true;
        }
        // SAFETY: tp_is_gc is the type's own predicate, called as the GC calls it.
        unsafe {
            let f: ffi::Inquiry = std::mem::transmute::<usize, ffi::Inquiry>(info.is_gc);
            f(obj as *mut c_void) != 0
        }
    }

    fn run_roots(&mut self, roots: &Roots) -> Result<(), HeapError> {
        // SAFETY (for the block): the caller of `walk` guarantees the GIL and live roots.
        unsafe {
            if roots.modules != 0 {
                let mut pos: isize = 0;
                let mut k: *mut c_void = std::ptr::null_mut();
                let mut v: *mut c_void = std::ptr::null_mut();
                let mut name = String::new();
                let mut found = Vec::new();
                while ffi::PyDict_Next(roots.modules as *mut c_void, &mut pos, &mut k, &mut v) != 0
                {
                    if rd::<usize>(k as usize, OB_TYPE) == self.t.str_ {
                        self.l.read_str(k as usize, LABEL, &mut name);
                    } else {
                        name.clear();
                    }
                    found.push((v as usize, format!("module `{name}`")));
                }
                for (m, desc) in found {
                    self.root(m, RootKind::Module, &desc)?;
                }
            }
            self.root(roots.sys_dict, RootKind::SysDict, "sys dict")?;
            self.root(roots.builtins, RootKind::Builtins, "builtins")?;
            self.thread_roots(roots)?;
        }
        Ok(())
    }

    /// Frames, exceptions and state of every thread of this interpreter.
    ///
    /// # Safety
    /// GIL held.
    unsafe fn thread_roots(&mut self, roots: &Roots) -> Result<(), HeapError> {
        let h = self.l.heap;
        // SAFETY: the interpreter and its thread states are alive while we hold the GIL; the
        // other threads are blocked outside Python code, so their frame chains are stable.
        unsafe {
            let interp = ffi::PyInterpreterState_Get();
            let mut ts = ffi::PyInterpreterState_ThreadHead(interp) as usize;
            let mut guard = 0;
            while ts != 0 && guard < 100_000 {
                guard += 1;
                let ident: u64 = rd::<u64>(ts, h.tstate_thread_id);
                let name = roots
                    .thread_names
                    .iter()
                    .find(|(i, _)| *i == ident)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_else(|| format!("{ident:#x}"));
                let who = format!("thread \"{name}\"");
                self.frame_roots(ts, &who)?;
                let cur: usize = rd(ts, h.tstate_current_exception);
                if cur != 0 && cur != self.none {
                    self.root(
                        cur,
                        RootKind::Exception,
                        &format!("{who} current exception"),
                    )?;
                }
                let mut item: usize = rd(ts, h.tstate_exc_info);
                let mut g = 0;
                while item != 0 && g < 10_000 {
                    g += 1;
                    let v: usize = rd(item, h.stackitem_exc_value);
                    if v != 0 && v != self.none {
                        self.root(v, RootKind::Exception, &format!("{who} handled exception"))?;
                    }
                    item = rd(item, h.stackitem_previous);
                }
                for (off, what) in [
                    (h.tstate_dict, "state dict"),
                    (h.tstate_context, "context"),
                    (h.tstate_async_exc, "pending async exception"),
                ] {
                    let o: usize = rd(ts, off);
                    if o != 0 && o != self.none {
                        self.root(o, RootKind::ThreadState, &format!("{who} {what}"))?;
                    }
                }
                ts = ffi::PyThreadState_Next(ts as *mut c_void) as usize;
            }
        }
        Ok(())
    }

    /// # Safety
    /// `ts` is a live thread state; GIL held.
    unsafe fn frame_roots(&mut self, ts: usize, who: &str) -> Result<(), HeapError> {
        let mut frames = Vec::new();
        // SAFETY: as in `thread_roots`.
        unsafe {
            self.l.visit_frames(ts, self.t.code, |addr, raw| {
                frames.push((addr, raw));
                true
            })
        };
        let object_frames = matches!(self.l.frames, FrameModel::FrameObject { .. });
        for (addr, raw) in frames {
            // SAFETY: the frames and their code objects are alive (the thread waits for the GIL).
            let (names, line) = unsafe {
                let line = if object_frames {
                    ffi::PyFrame_GetLineNumber(addr as *mut c_void)
                } else {
                    ffi::PyCode_Addr2Line(raw.code as *mut c_void, raw.lasti)
                };
                (self.l.code_names(raw.code), line)
            };
            let desc = format!("{who} frame `{}` ({}:{line})", names.qualname, names.file);
            // SAFETY: as above; the value stack lies inside the frame's own slots.
            let stack = unsafe { self.value_stack(addr, raw.code) };
            let id = if object_frames {
                // Before 3.11 the frame is a frame object: a root like any object.
                self.root(addr, RootKind::ThreadFrame, &desc)?;
                self.id(addr, false)
            } else {
                let id = self.synthetic(addr);
                self.stats.roots += 1;
                self.b.add_root(NodeId(id), RootKind::ThreadFrame, &desc)?;
                id
            };
            if let Some((base, slots)) = stack {
                self.stacks.push((id, base, slots));
            }
        }
        Ok(())
    }

    /// The value stack of a thread's frame whose depth is not known exactly: its first slot
    /// and its number of slots (`co_stacksize`). `None` for a 3.12+ frame that saved its depth
    /// (its stack is then walked with its locals, see [`Self::exact_stack`]).
    ///
    /// # Safety
    /// `frame` is a live frame (a frame object before 3.11) running `code`.
    unsafe fn value_stack(&self, frame: usize, code: usize) -> Option<(usize, usize)> {
        // SAFETY: as documented.
        unsafe {
            if code == 0 || rd::<usize>(code, OB_TYPE) != self.t.code {
                return None;
            }
            if let Some(off) = self.x.f_valuestack {
                let slots = rd::<c_int>(code, self.x.co_stacksize).clamp(0, 1 << 20) as usize;
                let base: usize = rd(frame, off);
                return (base != 0 && slots > 0).then_some((base, slots));
            }
            if self.exact_stack(frame, code).is_some() {
                return None;
            }
            let (base, _, slots) = self.iframe_stack(frame, code)?;
            (slots > 0).then_some((base, slots))
        }
    }

    /// The value stack of an interpreter frame (3.11+): its first slot, the number of locals
    /// before it (`co_nlocalsplus`) and its size (`co_stacksize`).
    ///
    /// # Safety
    /// `frame` is a live `_PyInterpreterFrame` running the live code object `code`.
    unsafe fn iframe_stack(&self, frame: usize, code: usize) -> Option<(usize, usize, usize)> {
        let LocalsModel::Interpreter {
            localsplus,
            co_nlocalsplus,
            ..
        } = self.l.heap.locals
        else {
            return None;
        };
        // SAFETY: as documented.
        unsafe {
            let n = rd::<c_int>(code, co_nlocalsplus).max(0) as usize;
            let slots = rd::<c_int>(code, self.x.co_stacksize).clamp(0, 1 << 20) as usize;
            Some((frame + localsplus + 8 * n, n, slots))
        }
    }

    /// The value stack of an interpreter frame as `(first slot, depth)` when its depth is
    /// known exactly: 3.12+ sets `stacktop` to -1 while a frame runs and saves it when the
    /// frame calls a Python function.
    ///
    /// # Safety
    /// `frame` is a live `_PyInterpreterFrame` running the live code object `code`.
    unsafe fn exact_stack(&self, frame: usize, code: usize) -> Option<(usize, usize)> {
        let (Some(top_off), true) = (self.x.stacktop, self.x.stacktop_exact) else {
            return None;
        };
        // SAFETY: as documented.
        unsafe {
            let (base, n, slots) = self.iframe_stack(frame, code)?;
            let top = rd::<c_int>(frame, top_off);
            if top < 0 || (top as usize) < n || top as usize > n + slots {
                return None;
            }
            Some((base, top as usize - n))
        }
    }

    /// Links the objects that only a thread frame's value stack holds: slots of stacks of
    /// unknown depth that hold one of `unreached` (objects of the GC's lists that no root
    /// reaches). Only such objects are linked, and no other slot is dereferenced, so a stale
    /// slot above the real top can neither crash the walk nor give a reachable object a false
    /// retainer.
    ///
    /// # Safety
    /// The recorded stacks belong to live frames; GIL held.
    unsafe fn link_value_stacks(&mut self, unreached: &[usize]) -> Result<(), HeapError> {
        let stacks = std::mem::take(&mut self.stacks);
        if stacks.is_empty() || unreached.is_empty() {
            return Ok(());
        }
        let set: AddrSet = unreached.iter().map(|&o| o as u64).collect();
        let label = EdgeLabel::Internal(self.labels.value_stack);
        for (frame, base, slots) in stacks {
            for k in 0..slots {
                // SAFETY: the slot lies inside the frame's value stack.
                let v: usize = unsafe { rd(base, 8 * k) };
                if v != 0 && set.contains(&(v as u64)) {
                    self.edge(frame, v, label, EdgeKind::Strong)?;
                }
            }
        }
        Ok(())
    }

    /// Walks everything queued, then the GC's objects that the roots did not reach.
    ///
    /// # Safety
    /// GIL held; roots alive.
    unsafe fn run(&mut self, roots: &Roots) -> Result<(), HeapError> {
        let h = self.l.heap;
        self.values = roots.values;
        if roots.plain_class != 0 {
            // SAFETY: the caller passes a live class (a type object).
            self.subtype_traverse = unsafe { rd(roots.plain_class, TP_TRAVERSE) };
        }
        // SAFETY: the interpreter state outlives the call.
        let interp = unsafe { ffi::PyInterpreterState_Get() } as usize;
        let lists: Vec<usize> = (0..3)
            .map(|i| interp + h.gc_generations + 24 * i)
            .chain(std::iter::once(interp + h.gc_permanent))
            .collect();
        // SAFETY: the permanent generation is a valid circular list while we hold the GIL.
        unsafe {
            let mut frozen = AddrSet::default();
            gc_list(interp + h.gc_permanent, |o| {
                frozen.insert(o as u64);
            });
            self.frozen = frozen;
        }
        // Size the tables once: untracked objects (strs, ints) are about as many as tracked ones.
        // The GC's objects, read once (the lists are linked lists: a cache miss per object).
        let mut gc_objects: Vec<usize> = Vec::new();
        for &head in &lists {
            // SAFETY: as above.
            unsafe { gc_list(head, |o| gc_objects.push(o)) };
        }
        let tracked = gc_objects.len();
        // Untracked objects (strs, ints) are typically twice as many as tracked ones.
        let expect = 3 * tracked + 4096;
        self.ids = NodeIds::with_capacity(expect);
        self.queue.reserve(expect);
        self.b.reserve_strings(tracked);
        self.strs.reserve(4096);
        self.run_roots(roots)?;
        let mut next = 0;
        // SAFETY: forwarded.
        unsafe { self.drain(&mut next)? };
        let reached = self.queue.len();
        // Objects of the GC lists that no root reaches: garbage cycles, or objects held by C.
        let mut unreached = Vec::new();
        for (i, &o) in gc_objects.iter().enumerate() {
            if let Some(&ahead) = gc_objects.get(i + 8) {
                self.ids.prefetch(ahead as u64);
            }
            if !self.ids.contains(o as u64) {
                unreached.push(o);
            }
        }
        drop(gc_objects);
        // SAFETY: forwarded.
        unsafe { self.link_value_stacks(&unreached)? };
        for o in unreached {
            self.id(o, false);
        }
        // SAFETY: forwarded.
        unsafe { self.drain(&mut next)? };
        // Held from outside the heap: more references than the walk found.
        let mut surplus = Vec::new();
        for &(addr, id, found) in &self.ids.slots {
            if addr == 0 || (id as usize) < reached {
                continue;
            }
            // SAFETY: every address in the table is a live object.
            let (refcnt, immortal) = unsafe { self.refcount(addr as usize) };
            if !immortal && refcnt > i64::from(found) {
                surplus.push(id);
            }
        }
        surplus.sort_unstable();
        for id in surplus {
            self.stats.roots += 1;
            self.b.add_root(
                NodeId(id),
                RootKind::RefcountSurplus,
                "held outside the Python heap (refcount surplus)",
            )?;
        }
        Ok(())
    }

    /// # Safety
    /// `obj` is alive.
    unsafe fn refcount(&self, obj: usize) -> (i64, bool) {
        // SAFETY: every object starts with its refcount.
        let raw: isize = unsafe { rd(obj, OB_REFCNT) };
        let immortal = self.l.heap.immortal && (raw as i32) < 0;
        (raw as i64, immortal)
    }

    /// # Safety
    /// GIL held; every queued address is a live object or interpreter frame.
    unsafe fn drain(&mut self, next: &mut usize) -> Result<(), HeapError> {
        while *next < self.queue.len() {
            let i = *next;
            *next += 1;
            if let Some(ahead) = self.queue.get(i + 4) {
                prefetch_object(ahead.addr);
            }
            let item = self.queue[i];
            // SAFETY: forwarded.
            unsafe {
                if item.frame {
                    self.emit_iframe(i as u32, item.addr)?;
                } else {
                    self.emit_object(i as u32, item.addr)?;
                }
            }
        }
        Ok(())
    }

    /// A thread's interpreter frame (3.11+): a synthetic `frame` node holding the locals.
    ///
    /// # Safety
    /// `f` is a live `_PyInterpreterFrame` with a code object.
    unsafe fn emit_iframe(&mut self, id: u32, f: usize) -> Result<(), HeapError> {
        let ty = self.b.add_type("frame")?;
        self.b
            .add_object(Object::new(f as u64, ty, 0).flags(NodeFlags(NodeFlags::SYNTHETIC.0)))?;
        self.stats.objects += 1;
        self.labeled.clear();
        // SAFETY: forwarded.
        unsafe {
            self.iframe_locals(f, true)?;
            if let FrameModel::Interpreter { code: code_off, .. } = self.l.frames {
                let code: usize = rd(f, code_off);
                if code != 0
                    && rd::<usize>(code, OB_TYPE) == self.t.code
                    && let Some((base, depth)) = self.exact_stack(f, code)
                {
                    let label = EdgeLabel::Internal(self.labels.value_stack);
                    for k in 0..depth {
                        let v: usize = rd(base, 8 * k);
                        if v != 0 {
                            self.labeled.push((v, label, true));
                        }
                    }
                }
            }
        }
        let labeled = std::mem::take(&mut self.labeled);
        for &(to, label, _) in &labeled {
            self.edge(id, to, label, EdgeKind::Strong)?;
        }
        self.labeled = labeled;
        Ok(())
    }

    /// Pushes the locals of an interpreter frame (3.11+) onto `self.labeled`, named by the
    /// code object; with `all`, also its frame object, `f_locals` and code.
    ///
    /// # Safety
    /// `f` is a live `_PyInterpreterFrame`.
    unsafe fn iframe_locals(&mut self, f: usize, all: bool) -> Result<(), HeapError> {
        let LocalsModel::Interpreter {
            localsplus,
            frame_obj,
            f_locals,
            co_nlocalsplus,
            co_localsplusnames,
            ..
        } = self.l.heap.locals
        else {
            return Ok(());
        };
        let FrameModel::Interpreter { code: code_off, .. } = self.l.frames else {
            return Ok(());
        };
        // SAFETY: the frame's code object is alive; localsplus has co_nlocalsplus slots.
        unsafe {
            let code: usize = rd(f, code_off);
            if code == 0 || rd::<usize>(code, OB_TYPE) != self.t.code {
                return Ok(());
            }
            let n = rd::<c_int>(code, co_nlocalsplus).max(0) as usize;
            let names: usize = rd(code, co_localsplusnames);
            for i in 0..n {
                let v: usize = rd(f, localsplus + 8 * i);
                if v == 0 {
                    continue;
                }
                let label = match self.tuple_item(names, i) {
                    Some(s) => EdgeLabel::Local(self.str_id(s)?),
                    None => EdgeLabel::None,
                };
                self.labeled.push((v, label, true));
            }
            if all {
                let fo: usize = rd(f, frame_obj);
                if fo != 0 {
                    self.labeled
                        .push((fo, EdgeLabel::Internal(self.labels.frame_obj), true));
                }
                let fl: usize = rd(f, f_locals);
                if fl != 0 {
                    self.labeled
                        .push((fl, EdgeLabel::Internal(self.labels.f_locals), true));
                }
                self.labeled
                    .push((code, EdgeLabel::Internal(self.labels.code), true));
            }
        }
        Ok(())
    }

    /// Item `i` of a tuple if it is a `str`.
    ///
    /// # Safety
    /// `t` is a live tuple or 0.
    unsafe fn tuple_item(&self, t: usize, i: usize) -> Option<usize> {
        if t == 0 {
            return None;
        }
        // SAFETY: t is a live tuple; i is checked against its size.
        unsafe {
            let n: isize = rd(t, OB_SIZE);
            if i >= n.max(0) as usize {
                return None;
            }
            let s: usize = rd(t, TUPLE_ITEMS + 8 * i);
            (s != 0 && rd::<usize>(s, OB_TYPE) == self.t.str_).then_some(s)
        }
    }

    /// Writes one object and its references.
    ///
    /// # Safety
    /// `obj` is a live object; GIL held.
    unsafe fn emit_object(&mut self, id: u32, obj: usize) -> Result<(), HeapError> {
        // SAFETY (for the block): obj is live, so are its type and what it references.
        unsafe {
            let tp = self.type_of(obj);
            let info = self.type_info(tp)?;
            let gc = self.is_gc(obj, &info);
            let mut flags = 0u8;
            if gc {
                // Tracked: `_gc_next` of the PyGC_Head before the object is set.
                if rd::<usize>(obj - GC_HEAD, 0) != 0 {
                    flags |= NodeFlags::GC_TRACKED.0;
                }
                if !self.frozen.is_empty() && self.frozen.contains(&(obj as u64)) {
                    flags |= NodeFlags::FROZEN.0;
                }
            }
            if self.refcount(obj).1 {
                flags |= NodeFlags::IMMORTAL.0;
            }
            if info.kind == Kind::Weakref {
                flags |= NodeFlags::WEAKREF.0;
            }
            if info.kind == Kind::Type {
                flags |= NodeFlags::CLASS.0;
            }
            let size = self.size(obj, tp, &info, gc);
            self.stats.bytes += size;
            let preview = &mut self.preview;
            preview.clear();
            let mut ascii = None;
            let mut hash = None;
            match info.kind {
                Kind::Str => {
                    let len = rd::<isize>(obj, STR_LENGTH).max(0) as usize;
                    hash = str_data(self.l, obj).map(|(kind, data, n)| {
                        let bytes = std::slice::from_raw_parts(data as *const u8, n * kind);
                        self.value_key.hash_one((kind, bytes))
                    });
                    if self.values {
                        ascii = ascii_text(obj, self.l.ascii_size, PREVIEW);
                        if ascii.is_none() {
                            self.l.read_str(obj, PREVIEW, preview);
                        }
                        if len > PREVIEW {
                            flags |= NodeFlags::PREVIEW_TRUNCATED.0;
                        }
                    }
                }
                Kind::Bytes => {
                    let n = rd::<isize>(obj, OB_SIZE).max(0) as usize;
                    let all = std::slice::from_raw_parts((obj + BYTES_SVAL) as *const u8, n);
                    hash = Some(self.value_key.hash_one((1usize, all)));
                    if self.values {
                        use std::fmt::Write as _;
                        let _ = write!(preview, "{}", all[..n.min(PREVIEW)].escape_ascii());
                        if n > PREVIEW {
                            flags |= NodeFlags::PREVIEW_TRUNCATED.0;
                        }
                    }
                }
                _ => {}
            }
            let mut o = Object::new(obj as u64, info.id, size).flags(NodeFlags(flags));
            if self.values && matches!(info.kind, Kind::Str | Kind::Bytes) {
                o = o.preview(ascii.unwrap_or(&self.preview));
            }
            if let Some(h) = hash {
                o = o.value_hash(h);
            }
            self.b.add_object(o)?;
            self.stats.objects += 1;
            if info.exact && matches!(info.kind, Kind::Str | Kind::Bytes | Kind::Int) {
                return Ok(()); // leaves: no references
            }
            self.references(id, obj, tp, &info, gc)
        }
    }

    /// Shallow size in bytes, from the type layout.
    ///
    /// # Safety
    /// `obj` is live and of type `tp`.
    unsafe fn size(&self, obj: usize, tp: usize, info: &TypeInfo, gc: bool) -> u64 {
        let h = self.l.heap;
        // SAFETY: obj is live; each read follows the layout of its kind.
        unsafe {
            let mut pre = if gc || info.flags & TPFLAGS_HAVE_GC != 0 {
                GC_HEAD
            } else {
                0
            };
            let managed = match h.managed {
                ManagedDict::None => false,
                ManagedDict::Split311 => info.flags & TPFLAGS_MANAGED_DICT != 0,
                _ => info.flags & (TPFLAGS_MANAGED_DICT | TPFLAGS_MANAGED_WEAKREF) != 0,
            };
            if managed {
                pre += 16;
            }
            let ob_size = rd::<isize>(obj, OB_SIZE).unsigned_abs();
            let body = match info.kind {
                Kind::Str if info.exact => {
                    let len = rd::<isize>(obj, 16).max(0) as usize;
                    let state: u32 = rd(obj, 32);
                    let kind = ((state >> 2) & 7).max(1) as usize;
                    if state & (1 << 6) != 0 {
                        self.l.ascii_size + len + 1
                    } else {
                        self.l.compact_size + (len + 1) * kind
                    }
                }
                Kind::Int if h.long_tag => {
                    let tag: usize = rd(obj, 16);
                    LONG_DIGITS + 4 * (tag >> 3).max(1)
                }
                Kind::List => info.basicsize + 8 * rd::<isize>(obj, LIST_ALLOCATED).max(0) as usize,
                Kind::Dict => match self.dict_sizeof {
                    Some(f) => f(obj as *mut c_void).max(0) as usize,
                    None => info.basicsize,
                },
                Kind::ByteArray => {
                    info.basicsize + rd::<isize>(obj, BYTEARRAY_ALLOC).max(0) as usize
                }
                Kind::Set => {
                    let table: usize = rd(obj, SET_TABLE);
                    let mask = rd::<isize>(obj, SET_MASK).max(0) as usize;
                    info.basicsize
                        + if table != obj + SET_SMALLTABLE {
                            (mask + 1) * 16
                        } else {
                            0
                        }
                }
                Kind::NdArray => {
                    let mut n = info.basicsize;
                    let aflags: c_int = rd(obj, NDARRAY_FLAGS);
                    if aflags & NPY_OWNDATA != 0 {
                        n += ndarray_nbytes(obj);
                    }
                    n
                }
                // Some variable-size types keep something else than `ob_size` at its place
                // (generators size themselves from their code object): trust only plausible
                // item counts.
                _ if info.itemsize > 0 && info.kind != Kind::Str && ob_size < (1 << 32) => {
                    info.basicsize + ob_size * info.itemsize
                }
                _ => info.basicsize,
            };
            let values = if managed && info.flags & TPFLAGS_MANAGED_DICT != 0 {
                self.values_size(obj, tp, info)
            } else {
                0
            };
            (pre + body + values) as u64
        }
    }

    /// Bytes of an instance's attribute values (3.11+): the separately allocated values array
    /// (3.11, 3.12) or the inline values after the header (3.13).
    ///
    /// # Safety
    /// `obj` is live, its type manages its dict.
    unsafe fn values_size(&self, obj: usize, tp: usize, info: &TypeInfo) -> usize {
        let h = self.l.heap;
        let Some(keys_off) = h.ht_cached_keys else {
            return 0;
        };
        // SAFETY: managed-dict types are heap types; their cached keys are shared keys.
        unsafe {
            let keys: usize = rd(tp, keys_off);
            if keys == 0 {
                return 0;
            }
            let usable =
                (rd::<isize>(keys, KEYS_USABLE) + rd::<isize>(keys, KEYS_NENTRIES)).max(0) as usize;
            match h.managed {
                ManagedDict::Split311 => {
                    let values: usize = rd(obj - 32, 0);
                    if values == 0 {
                        0
                    } else {
                        usable.div_ceil(8) * 8 + 8 + usable * 8
                    }
                }
                ManagedDict::Tagged312 => {
                    let dorv: usize = rd(obj - 24, 0);
                    if dorv & 1 == 0 {
                        0
                    } else {
                        (usable + 2).div_ceil(8) * 8 + usable * 8
                    }
                }
                ManagedDict::Inline313 if info.flags & TPFLAGS_INLINE_VALUES != 0 => {
                    usable.div_ceil(8) * 8 + (usable + 1) * 8
                }
                _ => 0,
            }
        }
    }

    /// Collects and writes the references of `obj`.
    ///
    /// # Safety
    /// `obj` is live and of type `tp`; GIL held.
    unsafe fn references(
        &mut self,
        id: u32,
        obj: usize,
        tp: usize,
        info: &TypeInfo,
        gc: bool,
    ) -> Result<(), HeapError> {
        self.labeled.clear();
        // SAFETY: forwarded; the extractors read the layouts of their kinds.
        let complete = unsafe { self.extract(obj, tp, info)? };
        self.traversed.clear();
        if !complete && gc && info.traverse != 0 {
            // SAFETY: the type supports GC for this object (HAVE_GC and tp_is_gc), so its
            // tp_traverse accepts it; the visitor only records pointers.
            unsafe {
                let f: ffi::TraverseProc =
                    std::mem::transmute::<usize, ffi::TraverseProc>(info.traverse);
                let out = &mut self.traversed as *mut Vec<usize> as *mut c_void;
                f(obj as *mut c_void, visit, out);
            }
        }
        if self.verify && complete && info.plain && gc && info.traverse != 0 {
            // SAFETY: as below.
            unsafe { self.verify_plain(obj, tp, info)? };
        }
        let labeled = std::mem::take(&mut self.labeled);
        let traversed = std::mem::take(&mut self.traversed);
        // Extras: references traverse does not report (or everything, for complete extractors).
        const AHEAD: usize = 8;
        for &(to, _, _) in labeled.iter().take(AHEAD) {
            self.ids.prefetch(to as u64);
        }
        for (i, &(to, label, extra)) in labeled.iter().enumerate() {
            if let Some(&(next, _, _)) = labeled.get(i + AHEAD) {
                self.ids.prefetch(next as u64);
            }
            if extra || complete {
                let kind = if matches!(label, EdgeLabel::Internal(s) if s == self.labels.referent) {
                    EdgeKind::Weak
                } else {
                    EdgeKind::Strong
                };
                self.edge(id, to, label, kind)?;
            }
        }
        // Traverse's references, named by the extractor where it knows them.
        let mut names = std::mem::take(&mut self.names);
        names.clear();
        if !traversed.is_empty() {
            names.extend(labeled.iter().copied().filter(|l| !l.2));
            names.sort_unstable_by_key(|l| l.0);
        }
        for &to in traversed.iter().take(AHEAD) {
            self.ids.prefetch(to as u64);
        }
        for (k, &to) in traversed.iter().enumerate() {
            if let Some(&next) = traversed.get(k + AHEAD) {
                self.ids.prefetch(next as u64);
            }
            let mut label = EdgeLabel::None;
            let mut i = names.partition_point(|l| l.0 < to);
            while i < names.len() && names[i].0 == to {
                if !names[i].2 {
                    label = names[i].1;
                    names[i].2 = true;
                    break;
                }
                i += 1;
            }
            if label == EdgeLabel::None && to == tp {
                label = EdgeLabel::Internal(self.labels.class);
            }
            self.edge(id, to, label, EdgeKind::Strong)?;
        }
        self.labeled = labeled;
        self.traversed = traversed;
        self.names = names;
        Ok(())
    }

    /// The self-check behind `MEMLENS_HEAP_VERIFY=1` (used by the tests): the references the
    /// extractors found for an instance read without traverse must be exactly those its
    /// `tp_traverse` reports.
    ///
    /// # Safety
    /// `obj` is live and of type `tp`, a GC type; GIL held.
    unsafe fn verify_plain(
        &mut self,
        obj: usize,
        tp: usize,
        info: &TypeInfo,
    ) -> Result<(), HeapError> {
        let mut reported: Vec<usize> = Vec::new();
        // SAFETY: the object is a GC object of this type, so its tp_traverse accepts it.
        unsafe {
            let f: ffi::TraverseProc =
                std::mem::transmute::<usize, ffi::TraverseProc>(info.traverse);
            f(
                obj as *mut c_void,
                visit,
                &mut reported as *mut Vec<usize> as *mut c_void,
            );
        }
        let mut found: Vec<usize> = self.labeled.iter().filter(|l| !l.2).map(|l| l.0).collect();
        found.sort_unstable();
        reported.sort_unstable();
        if found == reported {
            return Ok(());
        }
        // SAFETY: tp is a live type.
        let name = unsafe { self.type_name(tp) };
        Err(HeapError::Build(format!(
            "walker self-check: a `{name}` instance's references {found:x?} differ from its \
             tp_traverse {reported:x?}"
        )))
    }

    /// Per-type extractors: push named references onto `self.labeled` as `(target, label,
    /// extra)`; `extra` marks references that `tp_traverse` does not report. Returns true when
    /// the extractor reports every reference (traverse is then skipped).
    ///
    /// # Safety
    /// `obj` is live and of type `tp`.
    unsafe fn extract(
        &mut self,
        obj: usize,
        tp: usize,
        info: &TypeInfo,
    ) -> Result<bool, HeapError> {
        let h = self.l.heap;
        let lb = &self.labels;
        let (dict, base, mro) = (lb.dict, lb.base, lb.mro);
        // SAFETY (for the block): each arm reads the layout of its kind, checked by
        // tests/layouts.rs; referenced objects are alive while obj is.
        unsafe {
            match info.kind {
                Kind::List => {
                    let n = rd::<isize>(obj, OB_SIZE).max(0) as usize;
                    let items: usize = rd(obj, LIST_ITEMS);
                    for i in 0..n {
                        let v: usize = rd(items, 8 * i);
                        if v != 0 {
                            self.labeled.push((v, EdgeLabel::Index(i as u64), false));
                        }
                    }
                    return Ok(info.exact);
                }
                Kind::Tuple => {
                    let n = rd::<isize>(obj, OB_SIZE).max(0) as usize;
                    let code = self.closure_of.get(&(obj as u64)).copied();
                    for i in 0..n {
                        let v: usize = rd(obj, TUPLE_ITEMS + 8 * i);
                        if v == 0 {
                            continue;
                        }
                        let label = match code.and_then(|c| self.freevar_name(c, i)) {
                            Some(s) => EdgeLabel::Cell(self.str_id(s)?),
                            None => EdgeLabel::Index(i as u64),
                        };
                        self.labeled.push((v, label, false));
                    }
                    return Ok(info.exact);
                }
                Kind::Dict => {
                    let split = rd::<usize>(obj, DICT_VALUES) != 0;
                    self.dict_items(obj, !split && info.exact)?;
                    if !info.exact {
                        self.instance(obj, tp, info)?;
                    }
                    return Ok(info.exact);
                }
                Kind::Module => {
                    let d = ffi::PyModule_GetDict(obj as *mut c_void) as usize;
                    if d != 0 {
                        self.labeled.push((d, EdgeLabel::Internal(dict), false));
                    }
                }
                Kind::Type => {
                    let d: usize = rd(obj, TP_DICT);
                    if d != 0 {
                        self.labeled.push((d, EdgeLabel::Internal(dict), false));
                    }
                    let b: usize = rd(obj, TP_BASE);
                    if b != 0 {
                        self.labeled.push((b, EdgeLabel::Internal(base), false));
                    }
                    let m: usize = rd(obj, TP_MRO);
                    if m != 0 {
                        self.labeled.push((m, EdgeLabel::Internal(mro), false));
                    }
                }
                Kind::Function => {
                    let code: usize = rd(obj, h.func_code);
                    let closure: usize = rd(obj, h.func_closure);
                    if closure != 0 && code != 0 {
                        self.closure_of.insert(closure as u64, code);
                    }
                    self.fields(
                        obj,
                        &[
                            (h.func_code, self.labels.code),
                            (h.func_globals, self.labels.globals),
                            (h.func_closure, self.labels.closure),
                            (h.func_defaults, self.labels.defaults),
                            (h.func_dict, dict),
                        ],
                        false,
                    );
                }
                Kind::Method => {
                    self.fields(
                        obj,
                        &[
                            (METHOD_FUNC, self.labels.func),
                            (METHOD_SELF, self.labels.self_),
                        ],
                        false,
                    );
                }
                Kind::Cell => {
                    let v: usize = rd(obj, CELL_REF);
                    if v != 0 {
                        self.labeled
                            .push((v, EdgeLabel::Internal(self.labels.cell), false));
                    }
                }
                Kind::Traceback => {
                    self.fields(
                        obj,
                        &[
                            (TB_NEXT, self.labels.tb_next),
                            (TB_FRAME, self.labels.tb_frame),
                        ],
                        false,
                    );
                }
                Kind::Exception => {
                    self.fields(
                        obj,
                        &[
                            (EXC_DICT, dict),
                            (EXC_ARGS, self.labels.args),
                            (h.exc_traceback, self.labels.traceback),
                            (h.exc_context, self.labels.context),
                            (h.exc_cause, self.labels.cause),
                        ],
                        false,
                    );
                }
                Kind::Frame => self.frame_object(obj)?,
                Kind::Weakref => {
                    let v: usize = rd(obj, WEAKREF_OBJECT);
                    if v != 0 && v != self.none {
                        self.labeled
                            .push((v, EdgeLabel::Internal(self.labels.referent), true));
                    }
                }
                Kind::Code => {
                    self.fields(
                        obj,
                        &[
                            (h.co_consts, self.labels.consts),
                            (h.co_names, self.labels.names),
                        ],
                        true,
                    );
                    return Ok(true);
                }
                Kind::NdArray => {
                    self.fields(
                        obj,
                        &[
                            (NDARRAY_BASE, self.labels.array_base),
                            (NDARRAY_DESCR, self.labels.descr),
                        ],
                        true,
                    );
                    let descr: usize = rd(obj, NDARRAY_DESCR);
                    if descr != 0 && rd::<c_int>(descr, DESCR_TYPE_NUM) == NPY_OBJECT {
                        // numpy does not traverse object elements (arrays are not GC types);
                        // should a version do so, they only name its references.
                        let extra = info.flags & TPFLAGS_HAVE_GC == 0;
                        self.object_elements(obj, extra);
                    }
                }
                Kind::Generator => {
                    if let (Some(off), Some(state)) = (self.x.gen_iframe, self.x.gen_frame_state) {
                        // A frame that has not completed still holds its locals: name them.
                        if rd::<i8>(obj, state) < 1 {
                            let start = self.labeled.len();
                            self.iframe_locals(obj + off, false)?;
                            for l in &mut self.labeled[start..] {
                                l.2 = false;
                            }
                        }
                    } else if let Some(off) = self.x.gen_frame {
                        self.fields(obj, &[(off, self.labels.gi_frame)], false);
                    }
                }
                Kind::Other if info.plain => {
                    self.instance(obj, tp, info)?;
                    self.labeled
                        .push((tp, EdgeLabel::Internal(self.labels.class), false));
                    return Ok(true);
                }
                Kind::Str | Kind::Bytes | Kind::ByteArray | Kind::Int | Kind::Set | Kind::Other => {
                }
            }
            if !info.exact {
                self.instance(obj, tp, info)?;
            }
            Ok(false)
        }
    }

    /// Pushes the elements of a numpy array of dtype `object`, labelled by flat index (C order).
    ///
    /// # Safety
    /// `obj` is a live numpy array whose elements are object pointers.
    unsafe fn object_elements(&mut self, obj: usize, extra: bool) {
        // SAFETY: `data`, `dimensions` and `strides` describe the array's own elements.
        unsafe {
            let nd = rd::<c_int>(obj, NDARRAY_ND).clamp(0, 64) as usize;
            let data: usize = rd(obj, NDARRAY_DATA);
            if data == 0 {
                return;
            }
            let dims_at: usize = rd(obj, NDARRAY_DIMENSIONS);
            let strides_at: usize = rd(obj, NDARRAY_STRIDES);
            let mut dims = [0usize; 64];
            let mut strides = [0isize; 64];
            let mut total: usize = 1;
            for i in 0..nd {
                dims[i] = rd::<isize>(dims_at, 8 * i).max(0) as usize;
                strides[i] = rd::<isize>(strides_at, 8 * i);
                total = total.saturating_mul(dims[i]);
            }
            if total == 0 || total > (1 << 32) {
                return;
            }
            // An odometer over the indices, innermost dimension fastest.
            let mut index = [0usize; 64];
            for flat in 0..total {
                let mut at = data as isize;
                for i in 0..nd {
                    at += index[i] as isize * strides[i];
                }
                let v: usize = rd(at as usize, 0);
                if v != 0 {
                    self.labeled.push((v, EdgeLabel::Index(flat as u64), extra));
                }
                for i in (0..nd).rev() {
                    index[i] += 1;
                    if index[i] < dims[i] {
                        break;
                    }
                    index[i] = 0;
                }
            }
        }
    }

    /// Pushes the non-null object pointers at `fields` (offset, name) of `obj` as internal
    /// references; `extra` as in [`Self::extract`].
    ///
    /// # Safety
    /// Each offset is a `PyObject *` field of the live object `obj`.
    unsafe fn fields(&mut self, obj: usize, fields: &[(usize, StrId)], extra: bool) {
        for &(off, name) in fields {
            // SAFETY: forwarded.
            let v: usize = unsafe { rd(obj, off) };
            if v != 0 {
                self.labeled.push((v, EdgeLabel::Internal(name), extra));
            }
        }
    }

    /// The name of free variable `i` of a code object (the `i`-th cell of its closure).
    ///
    /// # Safety
    /// `code` is a live code object.
    unsafe fn freevar_name(&self, code: usize, i: usize) -> Option<usize> {
        // SAFETY: as documented; the tuples named are the code object's own.
        unsafe {
            if rd::<usize>(code, OB_TYPE) != self.t.code {
                return None;
            }
            match self.l.heap.locals {
                LocalsModel::FrameObject { co_freevars, .. } => {
                    self.tuple_item(rd(code, co_freevars), i)
                }
                LocalsModel::Interpreter {
                    co_nlocalsplus,
                    co_nfreevars,
                    co_localsplusnames,
                    ..
                } => {
                    let n = rd::<c_int>(code, co_nlocalsplus).max(0) as usize;
                    let nfree = rd::<c_int>(code, co_nfreevars).max(0) as usize;
                    if i >= nfree || nfree > n {
                        return None;
                    }
                    self.tuple_item(rd(code, co_localsplusnames), n - nfree + i)
                }
            }
        }
    }

    /// A frame object's locals (named), `f_back` and, on 3.11+, its interpreter frame's locals.
    ///
    /// # Safety
    /// `obj` is a live frame object.
    unsafe fn frame_object(&mut self, obj: usize) -> Result<(), HeapError> {
        // SAFETY: as documented.
        unsafe {
            match self.l.heap.locals {
                LocalsModel::FrameObject {
                    f_localsplus,
                    co_nlocals,
                    co_varnames,
                    co_cellvars,
                    co_freevars,
                } => {
                    let FrameModel::FrameObject { f_back, f_code, .. } = self.l.frames else {
                        return Ok(());
                    };
                    let back: usize = rd(obj, f_back);
                    if back != 0 {
                        self.labeled
                            .push((back, EdgeLabel::Internal(self.labels.f_back), false));
                    }
                    let code: usize = rd(obj, f_code);
                    if code == 0 {
                        return Ok(());
                    }
                    let nlocals = rd::<c_int>(code, co_nlocals).max(0) as usize;
                    let mut slot = 0;
                    for (names, count) in [
                        (rd::<usize>(code, co_varnames), Some(nlocals)),
                        (rd::<usize>(code, co_cellvars), None),
                        (rd::<usize>(code, co_freevars), None),
                    ] {
                        let n = match count {
                            Some(n) => n,
                            None if names != 0 => rd::<isize>(names, OB_SIZE).max(0) as usize,
                            None => 0,
                        };
                        for i in 0..n {
                            let v: usize = rd(obj, f_localsplus + 8 * (slot + i));
                            if v == 0 {
                                continue;
                            }
                            let label = match self.tuple_item(names, i) {
                                Some(s) => EdgeLabel::Local(self.str_id(s)?),
                                None => EdgeLabel::None,
                            };
                            self.labeled.push((v, label, false));
                        }
                        slot += n;
                    }
                }
                LocalsModel::Interpreter {
                    f_frame, f_back, ..
                } => {
                    let back: usize = rd(obj, f_back);
                    if back != 0 {
                        self.labeled
                            .push((back, EdgeLabel::Internal(self.labels.f_back), false));
                    }
                    let f: usize = rd(obj, f_frame);
                    if f != 0 {
                        let start = self.labeled.len();
                        self.iframe_locals(f, false)?;
                        // Traverse reports these when the frame object owns its frame; only
                        // their names are wanted here.
                        for l in &mut self.labeled[start..] {
                            l.2 = false;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A dict's values named by their keys; with `keys`, the key objects too (extras: traverse
    /// skips `str` keys).
    ///
    /// # Safety
    /// `d` is a live dict.
    unsafe fn dict_items(&mut self, d: usize, keys: bool) -> Result<(), HeapError> {
        let key_label = EdgeLabel::Internal(self.labels.key);
        // SAFETY: PyDict_Next on a live dict with the GIL held; borrowed references.
        unsafe {
            let mut pos: isize = 0;
            let mut k: *mut c_void = std::ptr::null_mut();
            let mut v: *mut c_void = std::ptr::null_mut();
            while ffi::PyDict_Next(d as *mut c_void, &mut pos, &mut k, &mut v) != 0 {
                let (k, v) = (k as usize, v as usize);
                if keys {
                    self.labeled.push((k, key_label, false));
                }
                let label = self.key_label(k)?;
                self.labeled.push((v, label, false));
            }
        }
        Ok(())
    }

    /// How a value under dict key `k` is named.
    ///
    /// # Safety
    /// `k` is a live object.
    unsafe fn key_label(&mut self, k: usize) -> Result<EdgeLabel, HeapError> {
        // SAFETY: k is live; int digits follow the layout of this version.
        unsafe {
            let ktp = self.type_of(k);
            if ktp == self.t.str_ {
                return Ok(EdgeLabel::Key(self.str_id(k)?));
            }
            if ktp == self.t.int
                && let Some(v) = self.small_int(k)
            {
                return Ok(EdgeLabel::IntKey(v));
            }
            if let Some(&s) = self.other_keys.get(&(ktp as u64)) {
                return Ok(EdgeLabel::OtherKey(s));
            }
            let name = self.type_name(ktp);
            let s = self.b.intern(&format!("<{name}>"))?;
            self.other_keys.insert(ktp as u64, s);
            Ok(EdgeLabel::OtherKey(s))
        }
    }

    /// The value of an `int` that fits in 60 bits.
    ///
    /// # Safety
    /// `k` is a live `int`.
    unsafe fn small_int(&self, k: usize) -> Option<i64> {
        // SAFETY: digits follow the header; at most two are read, within ndigits.
        unsafe {
            let (n, negative) = if self.l.heap.long_tag {
                let tag: usize = rd(k, 16);
                (tag >> 3, tag & 3 == 2)
            } else {
                let s: isize = rd(k, OB_SIZE);
                (s.unsigned_abs(), s < 0)
            };
            if n > 2 {
                return None;
            }
            let mut v: i64 = 0;
            for i in (0..n).rev() {
                v = (v << 30) | i64::from(rd::<u32>(k, LONG_DIGITS + 4 * i) & 0x3fff_ffff);
            }
            Some(if negative { -v } else { v })
        }
    }

    /// Attributes of an instance: its `__dict__` (through `tp_dictoffset` or the managed dict)
    /// and, on 3.11+, the values it keeps without a dict, named by the type's shared keys.
    ///
    /// # Safety
    /// `obj` is live and of type `tp`.
    unsafe fn instance(&mut self, obj: usize, tp: usize, info: &TypeInfo) -> Result<(), HeapError> {
        let h = self.l.heap;
        let dict_label = EdgeLabel::Internal(self.labels.dict);
        // SAFETY: as documented; pre-header words exist for managed-dict types.
        unsafe {
            if info.members != u32::MAX {
                // `__slots__` and C members: names for what traverse reports.
                for &(off, name) in &self.members[info.members as usize] {
                    let v: usize = rd(obj, off);
                    if v != 0 {
                        self.labeled.push((v, EdgeLabel::Attr(name), false));
                    }
                }
            }
            let managed = h.managed != ManagedDict::None && info.flags & TPFLAGS_MANAGED_DICT != 0;
            if !managed && info.dictoffset != 0 {
                let off = if info.dictoffset > 0 {
                    info.dictoffset as usize
                } else {
                    let n = rd::<isize>(obj, OB_SIZE).unsigned_abs();
                    let size = (info.basicsize + n * info.itemsize).div_ceil(8) * 8;
                    (size as isize + info.dictoffset) as usize
                };
                let d: usize = rd(obj, off);
                if d != 0 {
                    self.labeled.push((d, dict_label, false));
                }
                return Ok(());
            }
            if !managed {
                return Ok(());
            }
            let mut values = 0usize;
            match h.managed {
                ManagedDict::Split311 => {
                    let d: usize = rd(obj - 24, 0);
                    if d != 0 {
                        self.labeled.push((d, dict_label, false));
                    }
                    values = rd(obj - 32, 0);
                }
                ManagedDict::Tagged312 => {
                    let dorv: usize = rd(obj - 24, 0);
                    if dorv & 1 == 1 {
                        // `_PyDictOrValues_GetValues`: the tagged pointer is one byte before.
                        values = dorv + 1;
                    } else if dorv != 0 {
                        self.labeled.push((dorv, dict_label, false));
                    }
                }
                ManagedDict::Inline313 => {
                    let d: usize = rd(obj - 24, 0);
                    let v = obj + info.basicsize;
                    // While the inline values are `valid` (a byte of their prefix), they hold
                    // the attributes, even when a dict was made that shares them: traverse
                    // (`_PyObject_VisitManagedDict`) reports the values then, not the dict,
                    // which the object still owns.
                    if info.flags & TPFLAGS_INLINE_VALUES != 0 && rd::<u8>(v, 3) != 0 {
                        values = v;
                        if d != 0 {
                            self.labeled.push((d, dict_label, true));
                        }
                    } else if d != 0 {
                        self.labeled.push((d, dict_label, false));
                    }
                }
                ManagedDict::None => {}
            }
            if values == 0 {
                return Ok(());
            }
            let Some(keys_off) = h.ht_cached_keys else {
                return Ok(());
            };
            let keys: usize = rd(tp, keys_off);
            if keys == 0 || rd::<u8>(keys, KEYS_KIND) == 0 {
                return Ok(());
            }
            let n = (rd::<isize>(keys, KEYS_NENTRIES).max(0) as usize).min(1 << 16);
            // The names of shared keys, read once per keys object (and again if it grew).
            let mut cached = self.key_labels.remove(&(keys as u64)).unwrap_or_default();
            if cached.0 != n {
                let index_bytes = 1usize << rd::<u8>(keys, KEYS_LOG2_INDEX_BYTES);
                let entries = keys + KEYS_INDICES + index_bytes;
                cached.1.clear();
                for i in 0..n {
                    let k: usize = rd(entries, UNICODE_ENTRY * i);
                    cached
                        .1
                        .push(if k != 0 && rd::<usize>(k, OB_TYPE) == self.t.str_ {
                            EdgeLabel::Attr(self.str_id(k)?)
                        } else {
                            EdgeLabel::None
                        });
                }
                cached.0 = n;
            }
            // 3.13's inline values say how many slots they have (`capacity`, their first byte).
            let slots = if h.managed == ManagedDict::Inline313 {
                usize::from(rd::<u8>(values, 0))
            } else {
                n
            };
            for (i, &label) in cached.1.iter().enumerate().take(slots) {
                let v: usize = rd(values, h.dictvalues_values + 8 * i);
                if v != 0 {
                    self.labeled.push((v, label, false));
                }
            }
            self.key_labels.insert(keys as u64, cached);
        }
        Ok(())
    }
}

/// Bytes of an array's data: the product of its dimensions times the item size (the stride of
/// the innermost dimension of a contiguous array).
///
/// # Safety
/// `obj` is a live numpy array.
unsafe fn ndarray_nbytes(obj: usize) -> usize {
    // SAFETY: dimensions and strides hold `nd` entries each.
    unsafe {
        let nd = rd::<c_int>(obj, NDARRAY_ND).clamp(0, 64) as usize;
        if nd == 0 {
            return 8;
        }
        let dims: usize = rd(obj, NDARRAY_DIMENSIONS);
        let strides: usize = rd(obj, NDARRAY_STRIDES);
        let mut count: usize = 1;
        let mut item = 0usize;
        for i in 0..nd {
            let d = rd::<isize>(dims, 8 * i).max(0) as usize;
            count = count.saturating_mul(d);
            let s = rd::<isize>(strides, 8 * i).unsigned_abs();
            if s != 0 && (item == 0 || s < item) {
                item = s;
            }
        }
        count.saturating_mul(item.max(1))
    }
}

/// The text of a compact ASCII `str` (its first `max` characters) read in place, or `None` for
/// other strings (which [`Layout::read_str`] decodes character by character).
///
/// # Safety
/// `obj` is a live `str` and `ascii_size` the size of `PyASCIIObject` in this interpreter.
#[inline]
unsafe fn ascii_text<'a>(obj: usize, ascii_size: usize, max: usize) -> Option<&'a str> {
    // SAFETY: the length and state words follow the object header of every `str`; a compact
    // ASCII string keeps `length` bytes right after its header, and ASCII is valid UTF-8.
    unsafe {
        let state: u32 = rd(obj, STR_STATE);
        if state & (STR_COMPACT | STR_ASCII) != (STR_COMPACT | STR_ASCII) {
            return None;
        }
        let len = rd::<isize>(obj, STR_LENGTH).max(0) as usize;
        let bytes = std::slice::from_raw_parts((obj + ascii_size) as *const u8, len.min(max));
        Some(std::str::from_utf8_unchecked(bytes))
    }
}

/// A `str`'s code points: `(bytes per code point, data address, length)`; `None` for a legacy
/// string not made ready (3.9 to 3.11: its data is only in `wstr`). Equal strings have equal
/// kinds (the interpreter always picks the narrowest), so equal data means equal values.
///
/// # Safety
/// `obj` is a live `str`.
unsafe fn str_data(l: &Layout, obj: usize) -> Option<(usize, usize, usize)> {
    // SAFETY: the length and state words follow the header of every `str`; a compact string
    // keeps its data right after its header, a legacy one points at it from `data.any`.
    unsafe {
        let len = rd::<isize>(obj, STR_LENGTH).max(0) as usize;
        let state: u32 = rd(obj, STR_STATE);
        let kind = ((state >> 2) & 7) as usize;
        if !matches!(kind, 1 | 2 | 4) {
            return None;
        }
        let data = if state & STR_COMPACT == 0 {
            rd::<usize>(obj, l.compact_size)
        } else if state & STR_ASCII != 0 {
            obj + l.ascii_size
        } else {
            obj + l.compact_size
        };
        (data != 0).then_some((kind, data, len))
    }
}

/// Starts loading an object's header into the cache.
#[inline(always)]
fn prefetch_object(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Calls `f` with every object of a GC list (`head` is the list's `PyGC_Head`).
///
/// # Safety
/// `head` is a live GC list head and nothing mutates the list meanwhile (GIL held).
unsafe fn gc_list(head: usize, mut f: impl FnMut(usize)) {
    // SAFETY: `_gc_next` links a circular list of PyGC_Heads; objects follow their heads.
    unsafe {
        let mut g: usize = rd::<usize>(head, 0) & !1;
        let mut guard: u64 = 0;
        while g != 0 && g != head && guard < (1 << 34) {
            guard += 1;
            f(g + GC_HEAD);
            g = rd::<usize>(g, 0) & !1;
        }
    }
}
