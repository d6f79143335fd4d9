//! CPython 3.9 (Include/cpython/pystate.h, Include/cpython/frameobject.h,
//! Include/cpython/code.h, Include/cpython/unicodeobject.h at v3.9.18).
use super::{FrameModel, Layout};

pub(super) const LAYOUT: Layout = Layout {
    version: (3, 9),
    frames: FrameModel::FrameObject {
        tstate_frame: 24,
        f_back: 24,
        f_code: 32,
        f_lasti: 104,
        lasti_in_units: false,
    },
    co_filename: 104,
    co_name: 112,
    co_qualname: None,
    co_firstlineno: 40,
    co_firsttraceable: None,
    co_code_adaptive: None,
    ascii_size: 48,
    compact_size: 72,
    // Objects/obmalloc.c: no radix tree before 3.10, so POOL_SIZE == SYSTEM_PAGE_SIZE.
    pool_size: 4096,
};
