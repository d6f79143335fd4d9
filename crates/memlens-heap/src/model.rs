//! The in-memory heap graph: nodes in parallel arrays, edges in CSR arrays, a string table.

use std::fmt;

/// Marks "no value" in the `u32` index arrays.
pub(crate) const NONE: u32 = u32::MAX;

/// Bit 31 of a packed edge label: the reference is weak.
pub(crate) const WEAK_BIT: u32 = 1 << 31;
const TAG_SHIFT: u32 = 27;
const TAG_MASK: u32 = 0xF;
/// Largest payload a packed label holds inline (27 bits).
pub(crate) const PAYLOAD_MAX: u32 = (1 << TAG_SHIFT) - 1;

/// Index of an object in a snapshot: the n-th object added to the builder is `NodeId(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// Index of an interned string in a snapshot's string table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StrId(pub u32);

/// Index of a type (a qualified type name such as `app.models.Record`) in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// Index of an allocation site (file, line) in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(pub u32);

/// Whether a reference keeps its target alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EdgeKind {
    /// An owned reference: it keeps the target alive.
    #[default]
    Strong,
    /// A weak reference (`weakref.ref`, `WeakValueDictionary` entries): it does not keep the
    /// target alive, so dominators and retainer paths ignore it.
    Weak,
}

/// How a reference is named: the label shown on an edge of a retainer path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EdgeLabel {
    /// No name is known.
    #[default]
    None,
    /// An attribute (`obj.name`), including slots and managed-dict attributes.
    Attr(StrId),
    /// A dict entry with a `str` key.
    Key(StrId),
    /// A dict entry with an `int` key.
    IntKey(i64),
    /// A dict entry whose key is neither `str` nor `int`; the string is a short repr of the key.
    OtherKey(StrId),
    /// A list, tuple or other sequence element at this index.
    Index(u64),
    /// A closure cell of a function, named after the free variable.
    Cell(StrId),
    /// A local variable of a frame.
    Local(StrId),
    /// An interpreter-internal reference (`__dict__`, `tb_frame`, `f_back`, `ob_type`, `base`, ...).
    Internal(StrId),
    /// A reference inferred from a refcount surplus: something outside the walk holds it.
    Hidden,
}

/// Tags of packed edge labels (bits 27..31 of the `u32`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Tag {
    None = 0,
    Attr = 1,
    Key = 2,
    IntKey = 3,
    IntKeyBig = 4,
    OtherKey = 5,
    Index = 6,
    IndexBig = 7,
    Cell = 8,
    Local = 9,
    Internal = 10,
    Hidden = 11,
}

impl Tag {
    pub(crate) fn from_u8(v: u8) -> Option<Tag> {
        Some(match v {
            0 => Tag::None,
            1 => Tag::Attr,
            2 => Tag::Key,
            3 => Tag::IntKey,
            4 => Tag::IntKeyBig,
            5 => Tag::OtherKey,
            6 => Tag::Index,
            7 => Tag::IndexBig,
            8 => Tag::Cell,
            9 => Tag::Local,
            10 => Tag::Internal,
            11 => Tag::Hidden,
            _ => return None,
        })
    }
}

pub(crate) fn pack(tag: Tag, payload: u32, kind: EdgeKind) -> u32 {
    debug_assert!(payload <= PAYLOAD_MAX);
    let weak = if kind == EdgeKind::Weak { WEAK_BIT } else { 0 };
    weak | ((tag as u32) << TAG_SHIFT) | payload
}

pub(crate) fn tag_of(packed: u32) -> Tag {
    // Packed labels are only ever created by `pack` with a valid tag.
    Tag::from_u8(((packed >> TAG_SHIFT) & TAG_MASK) as u8).unwrap_or(Tag::None)
}

pub(crate) fn payload_of(packed: u32) -> u32 {
    packed & PAYLOAD_MAX
}

/// How a root holds its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RootKind {
    /// A module in `sys.modules`.
    Module,
    /// The `sys` module's dict.
    SysDict,
    /// The `builtins` module.
    Builtins,
    /// A frame (or a local of a frame) of a live thread.
    ThreadFrame,
    /// Thread state: the current exception, context variables, ...
    ThreadState,
    /// An exception being handled.
    Exception,
    /// An object whose refcount exceeds its known referrers: held from outside the walk (C code).
    RefcountSurplus,
    /// An object found only through the garbage collector's lists (for example after `gc.freeze()`).
    GcOnly,
    /// Any other root.
    Other,
}

impl RootKind {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            RootKind::Module => 0,
            RootKind::SysDict => 1,
            RootKind::Builtins => 2,
            RootKind::ThreadFrame => 3,
            RootKind::ThreadState => 4,
            RootKind::Exception => 5,
            RootKind::RefcountSurplus => 6,
            RootKind::GcOnly => 7,
            RootKind::Other => 8,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<RootKind> {
        Some(match v {
            0 => RootKind::Module,
            1 => RootKind::SysDict,
            2 => RootKind::Builtins,
            3 => RootKind::ThreadFrame,
            4 => RootKind::ThreadState,
            5 => RootKind::Exception,
            6 => RootKind::RefcountSurplus,
            7 => RootKind::GcOnly,
            8 => RootKind::Other,
            _ => return None,
        })
    }

    /// A short lower-case name (`module`, `thread frame`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RootKind::Module => "module",
            RootKind::SysDict => "sys dict",
            RootKind::Builtins => "builtins",
            RootKind::ThreadFrame => "thread frame",
            RootKind::ThreadState => "thread state",
            RootKind::Exception => "exception",
            RootKind::RefcountSurplus => "refcount surplus",
            RootKind::GcOnly => "gc only",
            RootKind::Other => "other",
        }
    }
}

/// Per-object flags (a small bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NodeFlags(pub u8);

impl NodeFlags {
    /// No flag.
    pub const EMPTY: NodeFlags = NodeFlags(0);
    /// The object is immortal (CPython 3.12+): its refcount says nothing.
    pub const IMMORTAL: NodeFlags = NodeFlags(1);
    /// The object is a weak reference object (`weakref.ref`, a proxy).
    pub const WEAKREF: NodeFlags = NodeFlags(2);
    /// The object is tracked by the cyclic garbage collector.
    pub const GC_TRACKED: NodeFlags = NodeFlags(4);
    /// The object sits in the permanent generation (`gc.freeze()`).
    pub const FROZEN: NodeFlags = NodeFlags(8);
    /// The object's value preview was cut short (so equal previews may hide different values).
    pub const PREVIEW_TRUNCATED: NodeFlags = NodeFlags(16);
    /// The object is a class (an instance of `type` or of a metaclass).
    pub const CLASS: NodeFlags = NodeFlags(32);
    /// The node stands for something that is not a Python object (an arena, a native buffer).
    pub const SYNTHETIC: NodeFlags = NodeFlags(64);
    /// The record carries a hash of the object's whole value (`str`, `bytes`; format 3+):
    /// equal hashes of equal-size objects of one type are equal values.
    pub const VALUE_HASH: NodeFlags = NodeFlags(128);

    /// Whether every flag of `other` is set in `self`.
    pub fn contains(self, other: NodeFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for NodeFlags {
    type Output = NodeFlags;
    fn bitor(self, rhs: NodeFlags) -> NodeFlags {
        NodeFlags(self.0 | rhs.0)
    }
}

/// One object as the walker describes it to [`SnapshotBuilder::add_object`](crate::SnapshotBuilder::add_object).
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    /// The object's address (`id(obj)` in CPython); 0 for synthetic nodes.
    pub address: u64,
    /// The object's type.
    pub type_id: TypeId,
    /// Shallow size in bytes: the object's own memory, not what it references.
    pub size: u64,
    /// Where the object was allocated, when the capture knows it (exact mode).
    pub site: Option<SiteId>,
    /// Flags.
    pub flags: NodeFlags,
    /// A short preview of the value (the content of a `str`, a `bytes` prefix): only when the
    /// program's values are asked for (`values=True`), since they may be secrets.
    pub preview: Option<&'a str>,
    /// A hash of the whole value (`str`, `bytes`), for duplicate detection without the value.
    pub value_hash: Option<u64>,
}

impl<'a> Object<'a> {
    /// An object with the given address, type and shallow size, and nothing else.
    pub fn new(address: u64, type_id: TypeId, size: u64) -> Object<'a> {
        Object {
            address,
            type_id,
            size,
            site: None,
            flags: NodeFlags::EMPTY,
            preview: None,
            value_hash: None,
        }
    }

    /// Sets the allocation site.
    pub fn site(mut self, site: SiteId) -> Object<'a> {
        self.site = Some(site);
        self
    }

    /// Sets the flags.
    pub fn flags(mut self, flags: NodeFlags) -> Object<'a> {
        self.flags = flags;
        self
    }

    /// Sets the value preview.
    pub fn preview(mut self, preview: &'a str) -> Object<'a> {
        self.preview = Some(preview);
        self
    }

    /// Sets the hash of the whole value.
    pub fn value_hash(mut self, hash: u64) -> Object<'a> {
        self.value_hash = Some(hash);
        self
    }
}

/// A root of the heap graph: an object the interpreter keeps alive by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    /// The object held.
    pub node: NodeId,
    /// How it is held.
    pub kind: RootKind,
    /// A readable description, e.g. ``module `app.cache` `` or
    /// ``thread "MainThread" frame `f` local `x` ``.
    pub description: StrId,
}

/// One outgoing reference of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The referenced object.
    pub to: NodeId,
    /// How the reference is named.
    pub label: EdgeLabel,
    /// Whether it is weak.
    pub kind: EdgeKind,
}

/// An interned string table: one byte buffer and end offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StringTable {
    pub(crate) bytes: String,
    pub(crate) ends: Vec<usize>,
}

impl StringTable {
    pub(crate) fn get(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn push(&mut self, s: &str) -> u32 {
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len());
        (self.ends.len() - 1) as u32
    }
}

/// A heap snapshot: every object, every reference between them, the roots, and a string table.
///
/// Nodes live in parallel arrays indexed by [`NodeId`]; the outgoing edges of node `n` are the
/// CSR slice `edge_start[n]..edge_start[n + 1]`, in the order the walker reported them. Build one
/// with [`SnapshotBuilder`](crate::SnapshotBuilder), read one with [`Snapshot::read_from`].
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) strings: StringTable,
    pub(crate) types: Vec<u32>,
    pub(crate) sites: Vec<(u32, u32)>,
    pub(crate) meta: Vec<(u32, u32)>,
    pub(crate) addr: Vec<u64>,
    pub(crate) ty: Vec<u32>,
    pub(crate) size: Vec<u64>,
    pub(crate) site: Vec<u32>,
    pub(crate) flags: Vec<u8>,
    pub(crate) preview: Vec<u32>,
    /// `(node, hash of its whole value)` for the nodes flagged `VALUE_HASH`, in node order.
    pub(crate) value_hash: Vec<(u32, u64)>,
    pub(crate) edge_start: Vec<u32>,
    pub(crate) edge_to: Vec<u32>,
    pub(crate) edge_label: Vec<u32>,
    pub(crate) big: Vec<i64>,
    pub(crate) roots: Vec<Root>,
}

impl Snapshot {
    /// Number of objects.
    pub fn node_count(&self) -> usize {
        self.addr.len()
    }

    /// Number of references.
    pub fn edge_count(&self) -> usize {
        self.edge_to.len()
    }

    /// Total shallow size of all objects, in bytes.
    pub fn total_size(&self) -> u64 {
        self.size.iter().sum()
    }

    /// The roots, in the order they were added.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// A string of the table.
    pub fn string(&self, id: StrId) -> &str {
        self.strings.get(id.0)
    }

    /// Number of distinct types.
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// The name of a type.
    pub fn type_name_of(&self, t: TypeId) -> &str {
        self.strings.get(self.types[t.0 as usize])
    }

    /// The address of an object.
    pub fn address(&self, n: NodeId) -> u64 {
        self.addr[n.0 as usize]
    }

    /// The type of an object.
    pub fn type_id(&self, n: NodeId) -> TypeId {
        TypeId(self.ty[n.0 as usize])
    }

    /// The type name of an object.
    pub fn type_name(&self, n: NodeId) -> &str {
        self.strings.get(self.types[self.ty[n.0 as usize] as usize])
    }

    /// The shallow size of an object, in bytes.
    pub fn shallow_size(&self, n: NodeId) -> u64 {
        self.size[n.0 as usize]
    }

    /// The flags of an object.
    pub fn flags(&self, n: NodeId) -> NodeFlags {
        NodeFlags(self.flags[n.0 as usize])
    }

    /// The value preview of an object, if the walker recorded one.
    pub fn preview(&self, n: NodeId) -> Option<&str> {
        match self.preview[n.0 as usize] {
            NONE => None,
            s => Some(self.strings.get(s)),
        }
    }

    /// The hash of an object's whole value, if the walker recorded one (`str`, `bytes`).
    pub fn value_hash(&self, n: NodeId) -> Option<u64> {
        if self.flags[n.0 as usize] & NodeFlags::VALUE_HASH.0 == 0 {
            return None;
        }
        self.value_hash
            .binary_search_by_key(&n.0, |&(id, _)| id)
            .ok()
            .map(|i| self.value_hash[i].1)
    }

    /// Whether the program's values (`str`/`bytes` previews) were stored: the snapshot's
    /// `values` metadata, or, for snapshots older than it, whether any preview is present.
    pub fn values_stored(&self) -> bool {
        match self.meta_value("values") {
            Some(v) => v == "stored",
            None => self.preview.iter().any(|&p| p != NONE),
        }
    }

    /// The allocation site (file, line) of an object, if known.
    pub fn alloc_site(&self, n: NodeId) -> Option<(&str, u32)> {
        match self.site[n.0 as usize] {
            NONE => None,
            s => {
                let (file, line) = self.sites[s as usize];
                Some((self.strings.get(file), line))
            }
        }
    }

    /// Free-form metadata recorded by the walker (`python`, `pid`, `time`, ...).
    pub fn meta(&self) -> impl Iterator<Item = (&str, &str)> {
        self.meta
            .iter()
            .map(|&(k, v)| (self.strings.get(k), self.strings.get(v)))
    }

    /// The last value recorded for a metadata key.
    pub fn meta_value(&self, key: &str) -> Option<&str> {
        self.meta()
            .filter(|&(k, _)| k == key)
            .last()
            .map(|(_, v)| v)
    }

    /// The outgoing references of an object, in the order they were added.
    pub fn edges(&self, n: NodeId) -> impl ExactSizeIterator<Item = Edge> + '_ {
        let range = self.edge_range(n.0);
        range.map(move |e| {
            let packed = self.edge_label[e];
            Edge {
                to: NodeId(self.edge_to[e]),
                label: self.unpack_label(packed),
                kind: if packed & WEAK_BIT != 0 {
                    EdgeKind::Weak
                } else {
                    EdgeKind::Strong
                },
            }
        })
    }

    pub(crate) fn edge_range(&self, n: u32) -> std::ops::Range<usize> {
        self.edge_start[n as usize] as usize..self.edge_start[n as usize + 1] as usize
    }

    /// The source node of edge `e` (binary search in the CSR offsets).
    pub(crate) fn edge_source(&self, e: usize) -> u32 {
        (self.edge_start.partition_point(|&s| s as usize <= e) - 1) as u32
    }

    pub(crate) fn unpack_label(&self, packed: u32) -> EdgeLabel {
        let p = payload_of(packed);
        match tag_of(packed) {
            Tag::None => EdgeLabel::None,
            Tag::Attr => EdgeLabel::Attr(StrId(p)),
            Tag::Key => EdgeLabel::Key(StrId(p)),
            Tag::IntKey => EdgeLabel::IntKey(unzig(p as u64)),
            Tag::IntKeyBig => EdgeLabel::IntKey(self.big[p as usize]),
            Tag::OtherKey => EdgeLabel::OtherKey(StrId(p)),
            Tag::Index => EdgeLabel::Index(p as u64),
            Tag::IndexBig => EdgeLabel::Index(self.big[p as usize] as u64),
            Tag::Cell => EdgeLabel::Cell(StrId(p)),
            Tag::Local => EdgeLabel::Local(StrId(p)),
            Tag::Internal => EdgeLabel::Internal(StrId(p)),
            Tag::Hidden => EdgeLabel::Hidden,
        }
    }
}

/// Two snapshots are equal when they hold the same strings, types, sites, metadata, objects,
/// edges (compared by their unpacked labels) and roots.
impl PartialEq for Snapshot {
    fn eq(&self, other: &Snapshot) -> bool {
        self.strings == other.strings
            && self.types == other.types
            && self.sites == other.sites
            && self.meta == other.meta
            && self.addr == other.addr
            && self.ty == other.ty
            && self.size == other.size
            && self.site == other.site
            && self.flags == other.flags
            && self.preview == other.preview
            && self.value_hash == other.value_hash
            && self.edge_start == other.edge_start
            && self.edge_to == other.edge_to
            && self.roots == other.roots
            && self
                .edge_label
                .iter()
                .zip(&other.edge_label)
                .all(|(&a, &b)| {
                    a & WEAK_BIT == b & WEAK_BIT && self.unpack_label(a) == other.unpack_label(b)
                })
    }
}

impl Eq for Snapshot {}

impl fmt::Display for RootKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Zigzag-encodes a signed integer.
pub(crate) fn zig(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Decodes a zigzag-encoded integer.
pub(crate) fn unzig(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
