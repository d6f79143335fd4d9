//! CPython 3.12 (Include/cpython/pystate.h, Include/internal/pycore_frame.h,
//! Include/cpython/code.h at v3.12.1): code and `previous` first; C-entry shim frames have
//! `owner == FRAME_OWNED_BY_CSTACK (3)`.
use super::{FrameModel, Layout};

pub(super) const LAYOUT: Layout = Layout {
    version: (3, 12),
    frames: FrameModel::Interpreter {
        tstate_cframe: Some(56),
        current_frame: 0,
        code: 0,
        previous: 8,
        instr: 56,
        owner: 70,
        shim_owner: Some(3),
        check_code_type: false,
    },
    co_filename: 112,
    co_name: 120,
    co_qualname: Some(128),
    co_firstlineno: 68,
    co_firsttraceable: Some(176),
    co_code_adaptive: Some(192),
    ascii_size: 40,
    compact_size: 56,
    pool_size: 16384,
};
