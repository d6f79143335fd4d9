//! The few CPython C-API functions the tracker calls, declared here because the extension is
//! built for the stable ABI and these are outside it (they exist in every supported version).
#![allow(non_snake_case, non_camel_case_types, missing_docs)]

use std::ffi::{c_int, c_void};

pub type MallocFn = unsafe extern "C" fn(ctx: *mut c_void, size: usize) -> *mut c_void;
pub type CallocFn =
    unsafe extern "C" fn(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void;
pub type ReallocFn =
    unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void;
pub type FreeFn = unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void);

/// `PyMemAllocatorEx` (Include/cpython/pymem.h), unchanged since 3.5.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PyMemAllocatorEx {
    pub ctx: *mut c_void,
    pub malloc: Option<MallocFn>,
    pub calloc: Option<CallocFn>,
    pub realloc: Option<ReallocFn>,
    pub free: Option<FreeFn>,
}

/// `PyObjectArenaAllocator` (Include/cpython/objimpl.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PyObjectArenaAllocator {
    pub ctx: *mut c_void,
    pub alloc: Option<unsafe extern "C" fn(ctx: *mut c_void, size: usize) -> *mut c_void>,
    pub free: Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *mut c_void, size: usize)>,
}

pub const PYMEM_DOMAIN_RAW: c_int = 0;
pub const PYMEM_DOMAIN_MEM: c_int = 1;
pub const PYMEM_DOMAIN_OBJ: c_int = 2;

unsafe extern "C" {
    pub fn PyMem_GetAllocator(domain: c_int, allocator: *mut PyMemAllocatorEx);
    pub fn PyMem_SetAllocator(domain: c_int, allocator: *mut PyMemAllocatorEx);
    pub fn PyObject_GetArenaAllocator(allocator: *mut PyObjectArenaAllocator);
    pub fn PyObject_SetArenaAllocator(allocator: *mut PyObjectArenaAllocator);
    pub fn PyMem_RawMalloc(size: usize) -> *mut c_void;
    pub fn PyGILState_GetThisThreadState() -> *mut c_void;
    pub fn PyThreadState_Get() -> *mut c_void;
    pub fn PyCode_Addr2Line(code: *mut c_void, addr: c_int) -> c_int;
    pub static mut PyCode_Type: u8;
    pub fn PyInterpreterState_Head() -> *mut c_void;
    pub fn PyInterpreterState_Main() -> *mut c_void;
}
