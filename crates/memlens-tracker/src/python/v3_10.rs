//! CPython 3.10 (Include/cpython/pystate.h, Include/cpython/frameobject.h,
//! Include/cpython/code.h at v3.10.13). `f_lasti` counts 2-byte code units from 3.10 on.
use super::{FrameModel, Layout};

pub(super) const LAYOUT: Layout = Layout {
    version: (3, 10),
    frames: FrameModel::FrameObject {
        tstate_frame: 24,
        f_back: 24,
        f_code: 32,
        f_lasti: 96,
        lasti_in_units: true,
    },
    co_filename: 104,
    co_name: 112,
    co_qualname: None,
    co_firstlineno: 40,
    co_firsttraceable: None,
    co_code_adaptive: None,
    ascii_size: 48,
    compact_size: 72,
    // Objects/obmalloc.c: WITH_PYMALLOC_RADIX_TREE on 64-bit enables USE_LARGE_POOLS (16 KiB).
    pool_size: 16384,
};
