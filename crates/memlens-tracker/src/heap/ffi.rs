//! The C-API functions and type objects the heap walker uses. All are exported by every
//! supported CPython; none allocates a Python object.
#![allow(non_snake_case, non_upper_case_globals, missing_docs)]

use std::ffi::{c_int, c_void};

/// `visitproc` (Include/object.h).
pub type VisitProc = unsafe extern "C" fn(obj: *mut c_void, arg: *mut c_void) -> c_int;
/// `traverseproc`.
pub type TraverseProc =
    unsafe extern "C" fn(obj: *mut c_void, visit: VisitProc, arg: *mut c_void) -> c_int;
/// `inquiry` (`tp_is_gc`).
pub type Inquiry = unsafe extern "C" fn(obj: *mut c_void) -> c_int;

unsafe extern "C" {
    pub fn PyInterpreterState_Get() -> *mut c_void;
    pub fn PyInterpreterState_ThreadHead(interp: *mut c_void) -> *mut c_void;
    pub fn PyThreadState_Next(tstate: *mut c_void) -> *mut c_void;
    pub fn PyDict_Next(
        dict: *mut c_void,
        pos: *mut isize,
        key: *mut *mut c_void,
        value: *mut *mut c_void,
    ) -> c_int;
    pub fn PyModule_GetDict(module: *mut c_void) -> *mut c_void;
    pub fn PyFrame_GetLineNumber(frame: *mut c_void) -> c_int;
    pub fn PyCode_Addr2Line(code: *mut c_void, addr: c_int) -> c_int;
    pub static mut PyDict_Type: u8;
    pub static mut PyList_Type: u8;
    pub static mut PyTuple_Type: u8;
    pub static mut PyUnicode_Type: u8;
    pub static mut PyBytes_Type: u8;
    pub static mut PyByteArray_Type: u8;
    pub static mut PyLong_Type: u8;
    pub static mut PySet_Type: u8;
    pub static mut PyFrozenSet_Type: u8;
    pub static mut PyModule_Type: u8;
    pub static mut PyFunction_Type: u8;
    pub static mut PyMethod_Type: u8;
    pub static mut PyCell_Type: u8;
    pub static mut PyFrame_Type: u8;
    pub static mut PyTraceBack_Type: u8;
    pub static mut PyType_Type: u8;
    pub static mut PyCode_Type: u8;
    pub static mut _PyWeakref_RefType: u8;
    pub static mut _PyWeakref_ProxyType: u8;
    pub static mut _PyWeakref_CallableProxyType: u8;
    pub static mut _Py_NoneStruct: u8;
    pub static mut PyBaseObject_Type: u8;
    pub static mut PyGen_Type: u8;
    pub static mut PyCoro_Type: u8;
    pub static mut PyAsyncGen_Type: u8;
}

/// `_PyDict_SizeOf`, when this interpreter exports it (every CPython 3.9-3.13 does; it is
/// looked up at run time so that a build without it still imports memlens).
pub fn dict_sizeof() -> Option<unsafe extern "C" fn(*mut c_void) -> isize> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name; the symbol, when present, has
    // this signature (Include/cpython/dictobject.h: `Py_ssize_t _PyDict_SizeOf(PyDictObject *)`).
    unsafe {
        let p = libc::dlsym(libc::RTLD_DEFAULT, c"_PyDict_SizeOf".as_ptr());
        if p.is_null() {
            None
        } else {
            Some(std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void) -> isize,
            >(p))
        }
    }
}
