//! Offsets and flags that are the same in every supported CPython (3.9-3.13, x86-64), read off
//! Include/object.h, Include/cpython/*.h and Include/internal/pycore_*.h; `tests/layouts.rs`
//! checks each against `offsetof` in every installed interpreter's headers. Offsets that differ
//! between versions live in `crate::python` ([`crate::python::HeapLayout`]).

pub(crate) const OB_REFCNT: usize = 0;
pub(crate) const OB_TYPE: usize = 8;
pub(crate) const OB_SIZE: usize = 16;
pub(crate) const GC_HEAD: usize = 16;

pub(crate) const TP_NAME: usize = 24;
pub(crate) const TP_BASICSIZE: usize = 32;
pub(crate) const TP_ITEMSIZE: usize = 40;
pub(crate) const TP_FLAGS: usize = 168;
pub(crate) const TP_TRAVERSE: usize = 184;
pub(crate) const TP_BASE: usize = 256;
pub(crate) const TP_DICT: usize = 264;
pub(crate) const TP_DICTOFFSET: usize = 288;
pub(crate) const TP_IS_GC: usize = 328;
pub(crate) const TP_MRO: usize = 344;

pub(crate) const LIST_ITEMS: usize = 24;
pub(crate) const LIST_ALLOCATED: usize = 32;
pub(crate) const TUPLE_ITEMS: usize = 24;
pub(crate) const SET_MASK: usize = 32;
pub(crate) const SET_TABLE: usize = 40;
pub(crate) const SET_SMALLTABLE: usize = 64;
pub(crate) const DICT_KEYS: usize = 32;
pub(crate) const DICT_VALUES: usize = 40;
pub(crate) const METHOD_FUNC: usize = 16;
pub(crate) const METHOD_SELF: usize = 24;
pub(crate) const CELL_REF: usize = 16;
pub(crate) const WEAKREF_OBJECT: usize = 16;
pub(crate) const EXC_DICT: usize = 16;
pub(crate) const EXC_ARGS: usize = 24;
pub(crate) const TB_NEXT: usize = 16;
pub(crate) const TB_FRAME: usize = 24;
pub(crate) const LONG_DIGITS: usize = 24;
pub(crate) const BYTEARRAY_ALLOC: usize = 24;
pub(crate) const BYTES_SVAL: usize = 32;
/// `PyASCIIObject.length` and `.state` (the same in 3.9-3.13), and the state bits `compact`
/// and `ascii` (`Include/cpython/unicodeobject.h`).
pub(crate) const STR_LENGTH: usize = 16;
pub(crate) const STR_STATE: usize = 32;
pub(crate) const STR_COMPACT: u32 = 1 << 5;
pub(crate) const STR_ASCII: u32 = 1 << 6;

/// `PyDictKeysObject` (3.11+, Include/internal/pycore_dict.h).
pub(crate) const KEYS_LOG2_INDEX_BYTES: usize = 9;
pub(crate) const KEYS_KIND: usize = 10;
pub(crate) const KEYS_USABLE: usize = 16;
pub(crate) const KEYS_NENTRIES: usize = 24;
pub(crate) const KEYS_INDICES: usize = 32;
pub(crate) const UNICODE_ENTRY: usize = 16;

pub(crate) const TPFLAGS_INLINE_VALUES: u64 = 1 << 2;
pub(crate) const TPFLAGS_MANAGED_WEAKREF: u64 = 1 << 3;
pub(crate) const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
pub(crate) const TPFLAGS_HEAPTYPE: u64 = 1 << 9;
pub(crate) const TPFLAGS_HAVE_GC: u64 = 1 << 14;
pub(crate) const TPFLAGS_LONG_SUBCLASS: u64 = 1 << 24;
pub(crate) const TPFLAGS_LIST_SUBCLASS: u64 = 1 << 25;
pub(crate) const TPFLAGS_TUPLE_SUBCLASS: u64 = 1 << 26;
pub(crate) const TPFLAGS_BYTES_SUBCLASS: u64 = 1 << 27;
pub(crate) const TPFLAGS_UNICODE_SUBCLASS: u64 = 1 << 28;
pub(crate) const TPFLAGS_DICT_SUBCLASS: u64 = 1 << 29;
pub(crate) const TPFLAGS_BASE_EXC_SUBCLASS: u64 = 1 << 30;
pub(crate) const TPFLAGS_TYPE_SUBCLASS: u64 = 1 << 31;

/// numpy's `PyArrayObject_fields` (numpy/ndarraytypes.h, unchanged from numpy 1.7 to 2.x):
/// `data`, `nd`, `dimensions`, `strides`, `base`, `descr`, `flags`.
pub(crate) const NDARRAY_ND: usize = 24;
pub(crate) const NDARRAY_DIMENSIONS: usize = 32;
pub(crate) const NDARRAY_STRIDES: usize = 40;
pub(crate) const NDARRAY_BASE: usize = 48;
pub(crate) const NDARRAY_DESCR: usize = 56;
pub(crate) const NDARRAY_FLAGS: usize = 64;
/// `NPY_ARRAY_OWNDATA`: the array frees its data buffer.
pub(crate) const NPY_OWNDATA: i32 = 0x4;

/// Every offset above that a C compiler can check, by the name the layout probe prints.
pub const COMMON_OFFSETS: &[(&str, usize)] = &[
    ("type.tp_name", TP_NAME),
    ("type.tp_basicsize", TP_BASICSIZE),
    ("type.tp_itemsize", TP_ITEMSIZE),
    ("type.tp_flags", TP_FLAGS),
    ("type.tp_traverse", TP_TRAVERSE),
    ("type.tp_base", TP_BASE),
    ("type.tp_dict", TP_DICT),
    ("type.tp_dictoffset", TP_DICTOFFSET),
    ("type.tp_is_gc", TP_IS_GC),
    ("type.tp_mro", TP_MRO),
    ("varobject.ob_size", OB_SIZE),
    ("sizeof(PyGC_Head)", GC_HEAD),
    ("list.ob_item", LIST_ITEMS),
    ("list.allocated", LIST_ALLOCATED),
    ("tuple.ob_item", TUPLE_ITEMS),
    ("set.mask", SET_MASK),
    ("set.table", SET_TABLE),
    ("set.smalltable", SET_SMALLTABLE),
    ("dict.ma_keys", DICT_KEYS),
    ("dict.ma_values", DICT_VALUES),
    ("method.im_func", METHOD_FUNC),
    ("method.im_self", METHOD_SELF),
    ("cell.ob_ref", CELL_REF),
    ("weakref.wr_object", WEAKREF_OBJECT),
    ("exc.dict", EXC_DICT),
    ("exc.args", EXC_ARGS),
    ("tb.tb_next", TB_NEXT),
    ("tb.tb_frame", TB_FRAME),
    ("long.digits", LONG_DIGITS),
    ("bytearray.ob_alloc", BYTEARRAY_ALLOC),
    ("bytes.ob_sval", BYTES_SVAL),
    ("Py_TPFLAGS_HEAPTYPE", TPFLAGS_HEAPTYPE as usize),
    ("Py_TPFLAGS_HAVE_GC", TPFLAGS_HAVE_GC as usize),
];

/// `PyTypeObject.tp_members` (the same in 3.9-3.13), and the `PyMemberDef` fields the walker
/// reads to name `__slots__` and C members (Include/descrobject.h: `name`, `type`, `offset`).
pub(crate) const TP_MEMBERS: usize = 240;
pub(crate) const MEMBER_SIZE: usize = 40;
pub(crate) const MEMBER_TYPE: usize = 8;
pub(crate) const MEMBER_OFFSET: usize = 16;
/// `T_OBJECT` and `T_OBJECT_EX` (Include/structmember.h): members holding an object pointer.
pub(crate) const T_OBJECT: i32 = 6;
pub(crate) const T_OBJECT_EX: i32 = 16;

/// numpy's `PyArrayObject_fields.data` and `PyArray_Descr.type_num` (an `int` after four
/// chars in numpy 1.x and 2.x), and `NPY_OBJECT`.
pub(crate) const NDARRAY_DATA: usize = 16;
pub(crate) const DESCR_TYPE_NUM: usize = 28;
pub(crate) const NPY_OBJECT: i32 = 17;

/// Offsets of one CPython version that only the heap walker reads, checked against each
/// interpreter's headers by `tests/layouts.rs` (`layout_probe.c` prints them by these names).
#[derive(Debug)]
pub struct HeapExtra {
    /// `PyInterpreterState.gc.collecting`: non-zero during a collection (and its callbacks).
    pub gc_collecting: usize,
    /// `PyCodeObject.co_stacksize` (int): slots of a frame's value stack.
    pub co_stacksize: usize,
    /// `PyFrameObject.f_valuestack` (3.9, 3.10): the start of the value stack.
    pub f_valuestack: Option<usize>,
    /// `_PyInterpreterFrame.stacktop` (int, 3.11+): the stack depth saved at the last call.
    pub stacktop: Option<usize>,
    /// Whether `stacktop` is -1 while the frame runs (3.12+, `_PyFrame_GetStackPointer`), so a
    /// value in range is exact; in 3.11 it may be stale.
    pub stacktop_exact: bool,
    /// The `_PyInterpreterFrame` embedded in generators, coroutines and async generators
    /// (`gi_iframe`, `cr_iframe`, `ag_iframe`: one offset, 3.11+).
    pub gen_iframe: Option<usize>,
    /// `gi_frame_state` (int8, 3.11+): the frame's locals are valid below `FRAME_COMPLETED`.
    pub gen_frame_state: Option<usize>,
    /// `gi_frame` (3.9, 3.10): the generator's frame object.
    pub gen_frame: Option<usize>,
}

/// 3.12 (3.13 differs only in where the GC state sits).
const V3_12: HeapExtra = HeapExtra {
    gc_collecting: 312,
    co_stacksize: 64,
    f_valuestack: None,
    stacktop: Some(64),
    stacktop_exact: true,
    gen_iframe: Some(72),
    gen_frame_state: Some(67),
    gen_frame: None,
};

impl HeapExtra {
    /// The extras of CPython 3.`minor` (3.9 to 3.13).
    pub fn of(minor: u8) -> Option<&'static HeapExtra> {
        Some(match minor {
            9 | 10 => &HeapExtra {
                gc_collecting: 816,
                co_stacksize: 32,
                f_valuestack: Some(64),
                stacktop: None,
                stacktop_exact: false,
                gen_iframe: None,
                gen_frame_state: None,
                gen_frame: Some(16),
            },
            11 => &HeapExtra {
                gc_collecting: 848,
                co_stacksize: 68,
                f_valuestack: None,
                stacktop: Some(64),
                stacktop_exact: false,
                gen_iframe: Some(80),
                gen_frame_state: Some(75),
                gen_frame: None,
            },
            12 => &V3_12,
            13 => &HeapExtra {
                gc_collecting: 7600,
                ..V3_12
            },
            _ => return None,
        })
    }

    /// Each offset by the name `layout_probe.c` prints it under.
    pub fn probe_names(&self) -> Vec<(&'static str, usize)> {
        let mut out = vec![
            ("interp.gc.collecting", self.gc_collecting),
            ("code.co_stacksize", self.co_stacksize),
            ("type.tp_members", TP_MEMBERS),
        ];
        out.extend(self.f_valuestack.map(|v| ("frame.f_valuestack", v)));
        out.extend(self.stacktop.map(|v| ("iframe.stacktop", v)));
        if let Some(v) = self.gen_iframe {
            out.extend([
                ("gen.gi_iframe", v),
                ("coro.cr_iframe", v),
                ("asyncgen.ag_iframe", v),
            ]);
        }
        out.extend(self.gen_frame_state.map(|v| ("gen.gi_frame_state", v)));
        out.extend(self.gen_frame.map(|v| ("gen.gi_frame", v)));
        out
    }
}
