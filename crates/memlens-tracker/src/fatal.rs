//! The capture is finished, not lost, when the process dies of a signal or ends with `_exit`.
//!
//! For each signal whose default action ends the process (but SIGUSR2, memlens's heap-snapshot
//! signal, and SIGINT, which Python handles), a handler is installed while tracking, if the
//! signal's action is the default one: it asks the writer for everything and the end marker
//! (waiting a bounded time, see [`writer::finish_from_signal`]), puts the default action back
//! and re-raises the signal, so the process dies as it would have. The crash signals (SIGSEGV,
//! SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS) are also handled where the program
//! installed a handler of its own before tracking started (faulthandler, say): there the
//! capture is only flushed (the program's handler may recover), then that handler runs.
//! Everything here is async-signal-safe: atomics, `futex`, `nanosleep`, `sigaction`, `raise`.

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::time::Duration;

use crate::writer;

/// Signals whose default action ends the process and that arrive from outside (`kill`,
/// `alarm`, a closed terminal). The writer thread blocks them, so they reach a thread of the
/// program, whose handler can wait for the writer.
pub(crate) const ASYNC_SIGNALS: [c_int; 9] = [
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGPIPE,
];

/// Signals a fault raises in the faulting thread (or `abort`): never blocked, and chained to
/// a handler the program installed before tracking.
const CRASH_SIGNALS: [c_int; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// How long a handler waits for the writer's last chunk: long enough for a large backlog,
/// short enough that a stuck writer delays the death only a little.
const SIGNAL_WAIT: Duration = Duration::from_secs(2);
/// How long `_exit` waits (a normal end of the process, whose data matters most).
const EXIT_WAIT: Duration = Duration::from_secs(5);

const SLOTS: usize = ASYNC_SIGNALS.len() + CRASH_SIGNALS.len();

/// The action each signal had before ours, for chaining and for putting back.
struct Saved(UnsafeCell<[Option<libc::sigaction>; SLOTS]>);

// SAFETY: written only by `install`/`uninstall` (GIL held, before our handler is installed or
// after it is removed for that slot), read by the handler of that slot.
unsafe impl Sync for Saved {}

static SAVED: Saved = Saved(UnsafeCell::new([None; SLOTS]));

fn slot_of(sig: c_int) -> Option<usize> {
    ASYNC_SIGNALS
        .iter()
        .chain(CRASH_SIGNALS.iter())
        .position(|&s| s == sig)
}

fn is_crash(sig: c_int) -> bool {
    CRASH_SIGNALS.contains(&sig)
}

fn handler_address() -> usize {
    on_signal as *const () as usize
}

extern "C" fn on_signal(sig: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: reading errno through libc's thread-local accessor is async-signal-safe.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the slot was written before this handler was installed (see `Saved`).
    let saved = slot_of(sig).and_then(|i| unsafe { (*SAVED.0.get())[i] });
    let theirs =
        saved.filter(|a| a.sa_sigaction != libc::SIG_DFL && a.sa_sigaction != libc::SIG_IGN);
    match theirs {
        None => {
            writer::finish_from_signal(SIGNAL_WAIT);
            // SAFETY: restoring the default action and re-raising is the documented way to die
            // of the signal after handling it; both calls are async-signal-safe. The signal is
            // blocked while this handler runs, so it is delivered (and kills) when it returns;
            // a fault raised by an instruction faults again under the default action.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
        }
        Some(action) => {
            writer::flush_from_signal(SIGNAL_WAIT);
            // SAFETY: the program's own handler, called as the kernel would have called it
            // (with the siginfo and context when it asked for them).
            unsafe {
                if action.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                        std::mem::transmute(action.sa_sigaction);
                    f(sig, info, context);
                } else {
                    let f: extern "C" fn(c_int) = std::mem::transmute(action.sa_sigaction);
                    f(sig);
                }
            }
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs [`on_signal`] for each signal at its default action, and for each crash signal
/// with a handler of the program's (a signal the program ignores is left alone). Caller holds
/// the GIL.
pub(crate) fn install() {
    for sig in ASYNC_SIGNALS.into_iter().chain(CRASH_SIGNALS) {
        let Some(slot) = slot_of(sig) else { continue };
        // SAFETY: querying and setting a signal action with zero-initialised, valid structs;
        // the slot is written before our handler can run for this signal.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == handler_address()
                || old.sa_sigaction == libc::SIG_IGN
                || (old.sa_sigaction != libc::SIG_DFL && !is_crash(sig))
            {
                continue;
            }
            (*SAVED.0.get())[slot] = Some(old);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler_address();
            action.sa_flags =
                libc::SA_RESTART | libc::SA_SIGINFO | (old.sa_flags & libc::SA_ONSTACK);
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// Puts back the action each signal had where [`on_signal`] is still installed (a handler the
/// program installed since is left alone). Caller holds the GIL.
pub(crate) fn uninstall() {
    for sig in ASYNC_SIGNALS.into_iter().chain(CRASH_SIGNALS) {
        let Some(slot) = slot_of(sig) else { continue };
        // SAFETY: as above.
        unsafe {
            let mut now: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut now) == 0
                && now.sa_sigaction == handler_address()
            {
                let old = (*SAVED.0.get())[slot].unwrap_or_else(|| {
                    let mut dfl: libc::sigaction = std::mem::zeroed();
                    dfl.sa_sigaction = libc::SIG_DFL;
                    dfl
                });
                libc::sigaction(sig, &old, std::ptr::null_mut());
            }
        }
    }
}

/// `_exit` or `_Exit` was called while tracking (see `hooks::exit`): the capture gets every
/// event and its end marker first. Does nothing in a process without a writer (a forked
/// child not followed, a `vfork` child of `subprocess`).
pub(crate) fn before_exit() {
    writer::finish_from_signal(EXIT_WAIT);
}
