//! `_exit` and `_Exit`, interposed through the GOT like the malloc family (see [`super::native`]):
//! `os._exit` (how multiprocessing's fork workers end) skips `atexit` and so `stop`, and the
//! capture would end at the writer's last periodic chunk. The hook finishes the capture, then
//! ends the process with the caller's status.

use std::ffi::c_int;

pub(crate) unsafe extern "C" fn hk_exit(status: c_int) -> ! {
    crate::fatal::before_exit();
    // SAFETY: the real `_exit` with the caller's status.
    unsafe { libc::_exit(status) }
}
