//! CPython 3.11 (Include/cpython/pystate.h `_PyCFrame`, Include/internal/pycore_frame.h,
//! Include/cpython/code.h at v3.11.7): `tstate->cframe->current_frame`, `prev_instr` is the
//! last executed instruction, `is_entry` frames are still Python frames.
use super::{FrameModel, Layout};

pub(super) const LAYOUT: Layout = Layout {
    version: (3, 11),
    frames: FrameModel::Interpreter {
        tstate_cframe: Some(56),
        current_frame: 8,
        code: 32,
        previous: 48,
        instr: 56,
        owner: 69,
        shim_owner: None,
        check_code_type: false,
    },
    co_filename: 112,
    co_name: 120,
    co_qualname: Some(128),
    co_firstlineno: 72,
    co_firsttraceable: Some(168),
    co_code_adaptive: Some(184),
    ascii_size: 48,
    compact_size: 72,
    pool_size: 16384,
};
