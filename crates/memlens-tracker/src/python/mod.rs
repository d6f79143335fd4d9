//! Everything that depends on the CPython version: struct layouts, read in place.
//!
//! One file per version holds a [`Layout`] read off that version's headers; [`Layout::detect`]
//! picks one once at start-up from `sys.version_info`. The rest of the tracker works on plain
//! [`RawFrame`]s and [`CodeNames`]. `tests/layouts.rs` compiles a C program against each
//! installed interpreter's own headers and checks every offset here against `offsetof`.

mod v3_10;
mod v3_11;
mod v3_12;
mod v3_13;
mod v3_9;

use std::ffi::c_void;

/// How the current frame is found and what a frame looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameModel {
    /// 3.9, 3.10: `tstate->frame` is a `PyFrameObject` with `f_back`, `f_code`, `f_lasti`.
    FrameObject {
        /// `PyThreadState.frame`.
        tstate_frame: usize,
        /// `PyFrameObject.f_back`.
        f_back: usize,
        /// `PyFrameObject.f_code`.
        f_code: usize,
        /// `PyFrameObject.f_lasti` (int).
        f_lasti: usize,
        /// `f_lasti` counts code units (2 bytes) rather than bytes (3.10).
        lasti_in_units: bool,
    },
    /// 3.11+: `_PyInterpreterFrame`s on the thread's data stack.
    Interpreter {
        /// `PyThreadState.cframe` (3.11, 3.12) or `None` when the frame hangs off tstate.
        tstate_cframe: Option<usize>,
        /// `_PyCFrame.current_frame` or `PyThreadState.current_frame`.
        current_frame: usize,
        /// `f_code` / `f_executable`.
        code: usize,
        /// `previous`.
        previous: usize,
        /// `prev_instr` / `instr_ptr`.
        instr: usize,
        /// `owner` (char).
        owner: usize,
        /// Frames with `owner >= this` are C-stack shims, never Python code (3.12+).
        shim_owner: Option<u8>,
        /// `f_executable` may be something other than a code object (3.13).
        check_code_type: bool,
    },
}

/// Offsets of one CPython version (x86-64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `(major, minor)`.
    pub version: (u8, u8),
    /// How frames are walked.
    pub frames: FrameModel,
    /// `PyCodeObject.co_filename`.
    pub co_filename: usize,
    /// `PyCodeObject.co_name`.
    pub co_name: usize,
    /// `PyCodeObject.co_qualname` (3.11+).
    pub co_qualname: Option<usize>,
    /// `PyCodeObject.co_firstlineno` (int).
    pub co_firstlineno: usize,
    /// `PyCodeObject._co_firsttraceable` (int, 3.11+).
    pub co_firsttraceable: Option<usize>,
    /// `PyCodeObject.co_code_adaptive`: where the bytecode starts (3.11+).
    pub co_code_adaptive: Option<usize>,
    /// `sizeof(PyASCIIObject)`: compact ASCII data follows it.
    pub ascii_size: usize,
    /// `sizeof(PyCompactUnicodeObject)`: compact non-ASCII data follows it.
    pub compact_size: usize,
    /// pymalloc pool size (`POOL_SIZE`): 4 KiB before 3.10, 16 KiB after (radix tree).
    pub pool_size: usize,
    /// What the heap walker reads (`src/heap`).
    pub heap: HeapLayout,
}

/// Where a frame keeps its local variables and how they are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalsModel {
    /// 3.9, 3.10: `PyFrameObject.f_localsplus`, named by `co_varnames`, `co_cellvars`,
    /// `co_freevars` in that order.
    FrameObject {
        /// `PyFrameObject.f_localsplus`.
        f_localsplus: usize,
        /// `PyCodeObject.co_nlocals` (int).
        co_nlocals: usize,
        /// `PyCodeObject.co_varnames`.
        co_varnames: usize,
        /// `PyCodeObject.co_cellvars`.
        co_cellvars: usize,
        /// `PyCodeObject.co_freevars`.
        co_freevars: usize,
    },
    /// 3.11+: `_PyInterpreterFrame.localsplus`, named by `co_localsplusnames`.
    Interpreter {
        /// `PyFrameObject.f_frame`.
        f_frame: usize,
        /// `PyFrameObject.f_back`.
        f_back: usize,
        /// `_PyInterpreterFrame.localsplus`.
        localsplus: usize,
        /// `_PyInterpreterFrame.frame_obj`.
        frame_obj: usize,
        /// `_PyInterpreterFrame.f_locals`.
        f_locals: usize,
        /// `PyCodeObject.co_nlocalsplus` (int).
        co_nlocalsplus: usize,
        /// `PyCodeObject.co_nfreevars` (int).
        co_nfreevars: usize,
        /// `PyCodeObject.co_localsplusnames`.
        co_localsplusnames: usize,
    },
}

/// Where an instance keeps its attributes when its type manages the dict (3.11+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedDict {
    /// 3.9, 3.10: only `tp_dictoffset`.
    None,
    /// 3.11: `PyDictValues*` at -4 words, `PyObject *dict` at -3 words.
    Split311,
    /// 3.12: a `PyDictOrValues` at -3 words; bit 0 set means values (pointer + 1).
    Tagged312,
    /// 3.13: the dict pointer at -3 words; with `Py_TPFLAGS_INLINE_VALUES` the values follow
    /// the object header, behind a 8-byte `capacity, size, embedded, valid` prefix.
    Inline313,
}

/// Offsets the heap walker reads that differ between versions. Offsets that are the same in
/// every supported version are constants in `heap::layout`, checked by `tests/layouts.rs` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapLayout {
    /// `PyInterpreterState.gc.generations`.
    pub gc_generations: usize,
    /// `PyInterpreterState.gc.permanent_generation`.
    pub gc_permanent: usize,
    /// `PyHeapTypeObject.ht_qualname`.
    pub ht_qualname: usize,
    /// `PyHeapTypeObject.ht_cached_keys` (3.11+).
    pub ht_cached_keys: Option<usize>,
    /// `PyThreadState.thread_id`.
    pub tstate_thread_id: usize,
    /// `PyThreadState.exc_info`.
    pub tstate_exc_info: usize,
    /// `PyThreadState.dict`.
    pub tstate_dict: usize,
    /// `PyThreadState.async_exc`.
    pub tstate_async_exc: usize,
    /// `PyThreadState.context`.
    pub tstate_context: usize,
    /// `PyThreadState.curexc_value` (before 3.12) or `current_exception`.
    pub tstate_current_exception: usize,
    /// `_PyErr_StackItem.exc_value`.
    pub stackitem_exc_value: usize,
    /// `_PyErr_StackItem.previous_item`.
    pub stackitem_previous: usize,
    /// Frame locals.
    pub locals: LocalsModel,
    /// `PyCodeObject.co_consts`.
    pub co_consts: usize,
    /// `PyCodeObject.co_names`.
    pub co_names: usize,
    /// `PyFunctionObject.func_code`.
    pub func_code: usize,
    /// `PyFunctionObject.func_globals`.
    pub func_globals: usize,
    /// `PyFunctionObject.func_closure`.
    pub func_closure: usize,
    /// `PyFunctionObject.func_defaults`.
    pub func_defaults: usize,
    /// `PyFunctionObject.func_dict`.
    pub func_dict: usize,
    /// `PyBaseExceptionObject.traceback`.
    pub exc_traceback: usize,
    /// `PyBaseExceptionObject.context`.
    pub exc_context: usize,
    /// `PyBaseExceptionObject.cause`.
    pub exc_cause: usize,
    /// Offset of `values[]` in `PyDictValues` (3.11+).
    pub dictvalues_values: usize,
    /// Managed dicts and inline values.
    pub managed: ManagedDict,
    /// `int` keeps `lv_tag` (digit count << 3 | sign) instead of `ob_size` (3.12+).
    pub long_tag: bool,
    /// Objects can be immortal (3.12+): a negative 32-bit refcount.
    pub immortal: bool,
}

/// The `PyASCIIObject.state` bits, the same in 3.9-3.13 (checked by tests/layouts.rs).
const UNICODE_LENGTH: usize = 16;
const UNICODE_STATE: usize = 32;
const STATE_KIND_SHIFT: u32 = 2;
const STATE_COMPACT: u32 = 1 << 5;
const STATE_ASCII: u32 = 1 << 6;
// `pool_header` (Objects/obmalloc.c; Include/internal/pycore_obmalloc.h from 3.12) is the same
// in 3.9-3.13: a pointer-sized union holding `ref.count`, three pointers, then four uints.
/// `pool_header.ref.count`: blocks allocated in the pool (a uint).
pub const POOL_COUNT: usize = 0;
/// `pool_header.freeblock`: the pool's free list; each free block's first word links the next.
pub const POOL_FREEBLOCK: usize = 8;
/// `pool_header.prevpool`: the previous pool of the size class's used list (or its header).
pub const POOL_PREVPOOL: usize = 24;
/// `pool_header.szidx`: the block size class (a uint).
pub const POOL_SZIDX: usize = 36;
/// `pool_header.nextoffset`: where the pool's untouched blocks start (a uint).
pub const POOL_NEXTOFFSET: usize = 40;
/// `pool_header.maxnextoffset`: where the pool's last block starts (a uint).
pub const POOL_MAXNEXTOFFSET: usize = 44;

/// A frame walker compiled for one interpreter version: [`Layout::walk`] with that version's
/// offsets folded in as constants, so no per-frame option is checked at run time. Same
/// contract and safety requirements as [`Layout::walk`].
pub type Walker =
    unsafe fn(tstate: *mut c_void, code_type: usize, stop: usize, out: &mut [RawFrame]) -> usize;

/// A chain walker compiled for one interpreter version: [`Layout::walk_chain`] with that
/// version's offsets folded in as constants. Same contract and safety requirements.
pub type ChainWalker = unsafe fn(
    tstate: *mut c_void,
    code_type: usize,
    stop: usize,
    chain: &mut Chain,
    out: &mut [RawFrame],
) -> Option<ChainWalk>;

/// Longest frame chain [`Layout::walk_chain`] follows (shims included); longer ones are walked
/// with [`Layout::walk`].
pub const CHAIN_MAX: usize = 128;

/// One element of a thread's frame chain as read: frame address, code object, raw
/// instruction pointer (3.11+) or `f_lasti`, and owner (3.11+).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ChainElem {
    frame: usize,
    code: usize,
    ip: usize,
    owner: u8,
}

/// A thread's frame chain as last walked, innermost first: the next walk reads each element
/// again but classifies (shim? incomplete? which instruction?) only those that changed.
#[derive(Debug)]
pub struct Chain {
    elems: Box<[ChainElem; CHAIN_MAX]>,
    /// Per element, how many recorded frames it and the elements outward of it hold.
    outward: Box<[u32; CHAIN_MAX + 1]>,
    len: usize,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            elems: Box::new([ChainElem::default(); CHAIN_MAX]),
            outward: Box::new([0; CHAIN_MAX + 1]),
            len: 0,
        }
    }
}

impl Chain {
    /// Forgets the last walk (the next one classifies every element).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// What [`Layout::walk_chain`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainWalk {
    /// Python frames on the stack.
    pub depth: usize,
    /// Outermost frames that are the same as in the last walk (same frame, code and
    /// instruction): the first `depth - same` frames of `out`, innermost first, are the others.
    pub same: usize,
}

/// # Safety
/// As for [`Layout::walk_chain`].
unsafe fn walk_chain_version<V: Version>(
    tstate: *mut c_void,
    code_type: usize,
    stop: usize,
    chain: &mut Chain,
    out: &mut [RawFrame],
) -> Option<ChainWalk> {
    // SAFETY: forwarded from the caller.
    unsafe { V::LAYOUT.walk_chain(tstate, code_type, stop, chain, out) }
}

/// One supported version's layout as a type, so that code generic over it sees constants.
trait Version {
    const LAYOUT: &'static Layout;
}

/// # Safety
/// As for [`Layout::walk`].
unsafe fn walk_version<V: Version>(
    tstate: *mut c_void,
    code_type: usize,
    stop: usize,
    out: &mut [RawFrame],
) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { V::LAYOUT.walk(tstate, code_type, stop, out) }
}

macro_rules! versions {
    ($($ty:ident => $module:ident),* $(,)?) => {
        $(
            struct $ty;
            impl Version for $ty {
                const LAYOUT: &'static Layout = &$module::LAYOUT;
            }
        )*

        impl Layout {
            /// The layout for `major.minor`, if supported.
            pub fn detect(major: u8, minor: u8) -> Option<&'static Layout> {
                [$(&$module::LAYOUT),*]
                    .into_iter()
                    .find(|l| l.version == (major, minor))
            }

            /// The chain walker specialised for this layout's version.
            pub fn chain_walker(&self) -> ChainWalker {
                $(
                    if self.version == $module::LAYOUT.version {
                        return walk_chain_version::<$ty>;
                    }
                )*
                // Layouts only come from `detect`: never reached (it would record empty stacks).
                unreachable_chain_walker
            }

            /// The frame walker specialised for this layout's version.
            pub fn walker(&self) -> Walker {
                $(
                    if self.version == $module::LAYOUT.version {
                        return walk_version::<$ty>;
                    }
                )*
                // Layouts only come from `detect`: never reached (it would record empty stacks).
                unreachable_walker
            }
        }
    };
}

versions!(V3_9 => v3_9, V3_10 => v3_10, V3_11 => v3_11, V3_12 => v3_12, V3_13 => v3_13);

/// Walks nothing: stands in for a layout that is not one of ours.
unsafe fn unreachable_chain_walker(
    _: *mut c_void,
    _: usize,
    _: usize,
    _: &mut Chain,
    _: &mut [RawFrame],
) -> Option<ChainWalk> {
    None
}

/// Walks nothing: stands in for a layout that is not one of ours.
unsafe fn unreachable_walker(_: *mut c_void, _: usize, _: usize, _: &mut [RawFrame]) -> usize {
    0
}

/// One Python frame as found on the stack: its code object and the byte offset of the
/// instruction it is executing (-1 before the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RawFrame {
    /// `PyCodeObject*`.
    pub code: usize,
    /// Byte offset into the bytecode.
    pub lasti: i32,
}

/// Reads `T` at `base + offset`.
///
/// # Safety
/// `base + offset` must be valid for reads of `T` (the object is alive and has that layout).
#[inline(always)]
unsafe fn read<T: Copy>(base: usize, offset: usize) -> T {
    // SAFETY: the caller guarantees the address is readable; unaligned reads are allowed.
    unsafe { std::ptr::read_unaligned((base + offset) as *const T) }
}

impl Layout {
    /// Walks the frame chain of `tstate` (innermost first) into `out`; returns how many frames
    /// were written. Frames beyond `out.len()` (the outermost ones) are dropped. The walk ends
    /// before the frame at address `stop` (0: at the end of the chain), the frame that ran the
    /// profiled program (see [`Layout::innermost_frame`]): it and its callers are memlens's.
    /// When `stop` is the innermost frame it is walked, and the walk ends after it.
    ///
    /// # Safety
    /// `tstate` must be this thread's live `PyThreadState` (or null), and the thread must not
    /// be running Python code concurrently: only the owning thread mutates its frame chain, and
    /// it is inside this call.
    #[inline(always)]
    pub unsafe fn walk(
        &self,
        tstate: *mut c_void,
        code_type: usize,
        stop: usize,
        out: &mut [RawFrame],
    ) -> usize {
        let mut n = 0;
        let end = out.len();
        if end == 0 {
            return 0;
        }
        let out = out.as_mut_ptr();
        // SAFETY: forwarded from the caller; `n < end` before each write, so every write is
        // inside `out`.
        unsafe {
            self.visit_frames(tstate as usize, code_type, |addr, frame| {
                if addr == stop && n > 0 {
                    return false;
                }
                out.add(n).write(frame);
                n += 1;
                n < end && addr != stop
            })
        };
        n
    }

    /// Walks the frame chain of `tstate` like [`Layout::walk`], against the chain of the last
    /// walk (`chain`, updated): elements that are the same frame at the same instruction are
    /// only compared, not classified again. Writes the Python frames that are not the same as
    /// last time into `out` (innermost first). `None` when the chain is longer than
    /// [`CHAIN_MAX`] or its frames do not fit in `out`: walk it with [`Layout::walk`] then.
    /// The chain ends before the frame at `stop`, as in [`Layout::walk`].
    ///
    /// The outer frames that compare equal are the same as in the last walk because the
    /// walk compares every element: a frame's instruction changes only while it runs, and the
    /// chain is compared to its end.
    ///
    /// # Safety
    /// As for [`Layout::walk`].
    #[inline(always)]
    pub unsafe fn walk_chain(
        &self,
        tstate: *mut c_void,
        code_type: usize,
        stop: usize,
        chain: &mut Chain,
        out: &mut [RawFrame],
    ) -> Option<ChainWalk> {
        let previous_len = chain.len;
        chain.len = 0;
        // SAFETY: forwarded from the caller.
        let mut frame = unsafe { self.first_frame(tstate as usize) };
        let mut len = 0;
        // One past the innermost element that differs from the last walk.
        let mut differ = 0;
        // The stop frame itself is kept when it is the innermost (an allocation the runner
        // makes itself is filed under it, not under an empty stack): stop after it then.
        let stop = if frame != 0 && frame == stop {
            // SAFETY: frames in the chain are alive while they are on it.
            unsafe { self.read_elem(frame) }.1
        } else {
            stop
        };
        while frame != 0 && frame != stop {
            if len == CHAIN_MAX {
                return None;
            }
            // SAFETY: frames in the chain are alive while they are on it.
            let (elem, next) = unsafe { self.read_elem(frame) };
            // SAFETY: `len < CHAIN_MAX`.
            let slot = unsafe { chain.elems.get_unchecked_mut(len) };
            if *slot != elem {
                *slot = elem;
                differ = len + 1;
            }
            len += 1;
            frame = next;
        }
        if len != previous_len {
            differ = len;
        }
        // Classify the elements that differ, innermost first; then count, outward, the
        // recorded frames each element and those outward of it hold.
        let mut written = 0;
        for k in 0..differ {
            let elem = chain.elems[k];
            // SAFETY: the element's frame and code are on the live chain.
            let raw = unsafe { self.classify(elem, code_type) };
            chain.outward[k] = u32::from(raw.is_some());
            if let Some(raw) = raw {
                *out.get_mut(written)? = raw;
                written += 1;
            }
        }
        if differ == len {
            chain.outward[len] = 0;
        }
        let same = chain.outward[differ] as usize;
        for k in (0..differ).rev() {
            chain.outward[k] += chain.outward[k + 1];
        }
        let recorded = chain.outward[0] as usize;
        if len == 0 {
            chain.len = 0;
            return Some(ChainWalk { depth: 0, same: 0 });
        }
        debug_assert_eq!(recorded - same, written);
        chain.len = len;
        Some(ChainWalk {
            depth: recorded,
            same,
        })
    }

    /// The address of the frame `tstate` is executing (0 for none): the `PyFrameObject` before
    /// 3.11, the `_PyInterpreterFrame` from 3.11 on (a call into C pushes no frame, so from a
    /// builtin this is its Python caller's frame). The walks can stop there.
    ///
    /// # Safety
    /// `tstate` is a live thread state (or null) whose thread runs no Python code meanwhile.
    pub unsafe fn innermost_frame(&self, tstate: *mut c_void) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { self.first_frame(tstate as usize) }
    }

    /// The innermost element of `tstate`'s frame chain (0 for none).
    ///
    /// # Safety
    /// `tstate` is a live thread state (or 0).
    #[inline(always)]
    unsafe fn first_frame(&self, tstate: usize) -> usize {
        if tstate == 0 {
            return 0;
        }
        // SAFETY: tstate is live; cframe points into the C stack of its thread.
        unsafe {
            match self.frames {
                FrameModel::FrameObject { tstate_frame, .. } => read(tstate, tstate_frame),
                FrameModel::Interpreter {
                    tstate_cframe,
                    current_frame,
                    ..
                } => {
                    let holder = match tstate_cframe {
                        Some(off) => read::<usize>(tstate, off),
                        None => tstate,
                    };
                    if holder == 0 {
                        0
                    } else {
                        read(holder, current_frame)
                    }
                }
            }
        }
    }

    /// The address of the word that holds `tstate`'s innermost frame (`tstate->frame`,
    /// `tstate->cframe->current_frame` or `tstate->current_frame`); null when there is none.
    ///
    /// # Safety
    /// `tstate` is this thread's live thread state (or 0).
    pub unsafe fn frame_slot(&self, tstate: usize) -> *mut usize {
        if tstate == 0 {
            return std::ptr::null_mut();
        }
        let holder = match self.frames {
            FrameModel::FrameObject { tstate_frame, .. } => return (tstate + tstate_frame) as _,
            FrameModel::Interpreter {
                tstate_cframe: Some(off),
                ..
            } => {
                // SAFETY: tstate is live; `cframe` points into its thread's C stack.
                unsafe { read::<usize>(tstate, off) }
            }
            FrameModel::Interpreter { .. } => tstate,
        };
        match self.frames {
            FrameModel::Interpreter { current_frame, .. } if holder != 0 => {
                (holder + current_frame) as _
            }
            _ => std::ptr::null_mut(),
        }
    }

    /// Reads one chain element and the address of the next.
    ///
    /// # Safety
    /// `frame` is a live frame of the chain.
    #[inline(always)]
    unsafe fn read_elem(&self, frame: usize) -> (ChainElem, usize) {
        // SAFETY: frame is live and has this layout.
        unsafe {
            match self.frames {
                FrameModel::FrameObject {
                    f_back,
                    f_code,
                    f_lasti,
                    ..
                } => (
                    ChainElem {
                        frame,
                        code: read(frame, f_code),
                        ip: read::<i32>(frame, f_lasti) as isize as usize,
                        owner: 0,
                    },
                    read(frame, f_back),
                ),
                FrameModel::Interpreter {
                    code,
                    previous,
                    instr,
                    owner,
                    ..
                } => (
                    ChainElem {
                        frame,
                        code: read(frame, code),
                        ip: read(frame, instr),
                        owner: read(frame, owner),
                    },
                    read(frame, previous),
                ),
            }
        }
    }

    /// The Python frame an element stands for, if it is one that is recorded: the same
    /// decisions as [`Layout::visit_frames`] makes.
    ///
    /// # Safety
    /// The element's code object is alive (its frame is on the chain).
    #[inline(always)]
    unsafe fn classify(&self, elem: ChainElem, code_type: usize) -> Option<RawFrame> {
        if elem.code == 0 {
            return None;
        }
        match self.frames {
            FrameModel::FrameObject { lasti_in_units, .. } => {
                let mut lasti = elem.ip as isize as i32;
                if lasti_in_units && lasti > 0 {
                    lasti *= 2;
                }
                Some(RawFrame {
                    code: elem.code,
                    lasti,
                })
            }
            FrameModel::Interpreter {
                shim_owner,
                check_code_type,
                ..
            } => {
                let is_shim = shim_owner.is_some_and(|s| elem.owner >= s);
                // SAFETY: the code object is alive.
                let is_code =
                    !check_code_type || unsafe { read::<usize>(elem.code, 8) } == code_type;
                if is_shim || !is_code {
                    return None;
                }
                let start = elem.code + self.co_code_adaptive.unwrap_or(0);
                // SAFETY: as above.
                let first: i32 = unsafe { read(elem.code, self.co_firsttraceable.unwrap_or(0)) };
                // An incomplete frame (not yet past RESUME) is not really on the stack.
                if elem.owner != 1 && elem.ip < start + 2 * first.max(0) as usize {
                    return None;
                }
                let lasti = elem.ip.wrapping_sub(start) as isize;
                Some(RawFrame {
                    code: elem.code,
                    lasti: lasti.clamp(-1, i32::MAX as isize) as i32,
                })
            }
        }
    }

    /// Calls `f(frame address, frame)` for each Python frame of `tstate`'s chain, innermost
    /// first, until it returns false. The address is the `PyFrameObject` before 3.11 and the
    /// `_PyInterpreterFrame` from 3.11 on; C-stack shims and frames not yet past their first
    /// instruction are skipped.
    ///
    /// # Safety
    /// `tstate` is a live `PyThreadState` (or 0) whose thread runs no Python code meanwhile
    /// (it is the caller, or it waits for the GIL the caller holds).
    #[inline(always)]
    pub unsafe fn visit_frames(
        &self,
        tstate: usize,
        code_type: usize,
        mut f: impl FnMut(usize, RawFrame) -> bool,
    ) {
        if tstate == 0 {
            return;
        }
        match self.frames {
            FrameModel::FrameObject {
                tstate_frame,
                f_back,
                f_code,
                f_lasti,
                lasti_in_units,
            } => {
                // SAFETY: tstate is live; frames in the chain are alive while they are on it.
                let mut frame: usize = unsafe { read(tstate, tstate_frame) };
                let mut guard = 0;
                while frame != 0 && guard < 100_000 {
                    guard += 1;
                    let code: usize = unsafe { read(frame, f_code) };
                    let mut lasti: i32 = unsafe { read(frame, f_lasti) };
                    if lasti_in_units && lasti > 0 {
                        lasti *= 2;
                    }
                    if code != 0 && !f(frame, RawFrame { code, lasti }) {
                        return;
                    }
                    frame = unsafe { read(frame, f_back) };
                }
            }
            FrameModel::Interpreter {
                tstate_cframe,
                current_frame,
                code: code_off,
                previous,
                instr,
                owner,
                shim_owner,
                check_code_type,
            } => {
                let holder = match tstate_cframe {
                    // SAFETY: cframe points into the C stack of the thread, alive during the call.
                    Some(off) => unsafe { read::<usize>(tstate, off) },
                    None => tstate,
                };
                if holder == 0 {
                    return;
                }
                let adaptive = self.co_code_adaptive.unwrap_or(0);
                let first_traceable = self.co_firsttraceable.unwrap_or(0);
                // SAFETY: as above; every frame on the chain is initialised up to `previous`.
                let mut frame: usize = unsafe { read(holder, current_frame) };
                let mut guard = 0;
                while frame != 0 && guard < 100_000 {
                    guard += 1;
                    let own: u8 = unsafe { read(frame, owner) };
                    let code: usize = unsafe { read(frame, code_off) };
                    let next: usize = unsafe { read(frame, previous) };
                    let is_shim = shim_owner.is_some_and(|s| own >= s);
                    let is_code = code != 0
                        && (!check_code_type || unsafe { read::<usize>(code, 8) } == code_type);
                    if !is_shim && is_code {
                        let ip: usize = unsafe { read(frame, instr) };
                        let start = code + adaptive;
                        let first: i32 = unsafe { read(code, first_traceable) };
                        // An incomplete frame (not yet past RESUME) is not really on the stack.
                        let incomplete = own != 1 && ip < start + 2 * first.max(0) as usize;
                        if !incomplete {
                            let lasti = ip.wrapping_sub(start) as isize;
                            let raw = RawFrame {
                                code,
                                lasti: lasti.clamp(-1, i32::MAX as isize) as i32,
                            };
                            if !f(frame, raw) {
                                return;
                            }
                        }
                    }
                    frame = next;
                }
            }
        }
    }

    /// Reads a `str` object's text without calling into Python (no allocation, no GIL needed
    /// for immutable strings kept alive by a live code object). At most `max_chars` characters.
    ///
    /// # Safety
    /// `obj` must be a live `str` object (or null).
    pub unsafe fn read_str(&self, obj: usize, max_chars: usize, out: &mut String) {
        out.clear();
        if obj == 0 {
            return;
        }
        // SAFETY: obj is a live str; compact strings keep their data right after the header.
        let (len, state) = unsafe {
            (
                read::<isize>(obj, UNICODE_LENGTH),
                read::<u32>(obj, UNICODE_STATE),
            )
        };
        let len = (len.max(0) as usize).min(max_chars);
        let kind = (state >> STATE_KIND_SHIFT) & 7;
        let data = if state & STATE_COMPACT == 0 {
            // Legacy string: data pointer sits after the compact header.
            unsafe { read::<usize>(obj, self.compact_size) }
        } else if state & STATE_ASCII != 0 {
            obj + self.ascii_size
        } else {
            obj + self.compact_size
        };
        if data == 0 {
            return;
        }
        for i in 0..len {
            // SAFETY: i < length, and kind gives the width of each code point.
            let cp: u32 = unsafe {
                match kind {
                    1 => u32::from(read::<u8>(data, i)),
                    2 => u32::from(read::<u16>(data, 2 * i)),
                    4 => read::<u32>(data, 4 * i),
                    _ => return,
                }
            };
            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
        }
    }

    /// The names of a code object.
    ///
    /// # Safety
    /// `code` must be a live `PyCodeObject`.
    pub unsafe fn code_names(&self, code: usize) -> CodeNames {
        let mut names = CodeNames::default();
        // SAFETY: code is live, so its name and file strings are too.
        unsafe {
            names.first_line = read::<i32>(code, self.co_firstlineno).max(0) as u32;
            self.read_str(read(code, self.co_name), 512, &mut names.name);
            self.read_str(read(code, self.co_filename), 4096, &mut names.file);
            match self.co_qualname {
                Some(off) => self.read_str(read(code, off), 1024, &mut names.qualname),
                None => names.qualname.clone_from(&names.name),
            }
        }
        names
    }

    /// Identity of a code object that survives address reuse well enough: the address plus its
    /// name and file objects and first line.
    ///
    /// # Safety
    /// `code` must be a live `PyCodeObject`.
    pub unsafe fn code_key(&self, code: usize) -> CodeKey {
        // SAFETY: code is live.
        unsafe {
            CodeKey {
                code,
                name: read(code, self.co_name),
                file: read(code, self.co_filename),
                first_line: read(code, self.co_firstlineno),
            }
        }
    }
}

/// A code object's identity; see [`Layout::code_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeKey {
    /// Address of the code object.
    pub code: usize,
    /// Address of its `co_name`.
    pub name: usize,
    /// Address of its `co_filename`.
    pub file: usize,
    /// Its first line.
    pub first_line: i32,
}

/// What a report shows of a code object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeNames {
    /// `co_name`.
    pub name: String,
    /// `co_qualname` (3.11+) or `co_name`.
    pub qualname: String,
    /// `co_filename`.
    pub file: String,
    /// `co_firstlineno`.
    pub first_line: u32,
}
