//! CPython 3.13 (Include/cpython/pystate.h, Include/internal/pycore_frame.h,
//! Include/cpython/code.h at v3.13.0): `tstate->current_frame`, `f_executable` may be a
//! non-code object, `instr_ptr` points at the instruction being executed.
use super::{FrameModel, Layout};

pub(super) const LAYOUT: Layout = Layout {
    version: (3, 13),
    frames: FrameModel::Interpreter {
        tstate_cframe: None,
        current_frame: 72,
        code: 0,
        previous: 8,
        instr: 56,
        owner: 70,
        shim_owner: Some(3),
        check_code_type: true,
    },
    co_filename: 112,
    co_name: 120,
    co_qualname: Some(128),
    co_firstlineno: 68,
    co_firsttraceable: Some(184),
    co_code_adaptive: Some(200),
    ascii_size: 40,
    compact_size: 56,
    pool_size: 16384,
};
