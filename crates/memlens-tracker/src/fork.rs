//! `fork` while other threads use memlens: every lock of memlens is taken before the fork and
//! released after it, in the parent and in the child, as glibc does for malloc. A lock that
//! another thread held at the moment of the fork would otherwise stay held for ever in the
//! child, where that thread does not exist, and the child's first start (`--follow-fork`), or
//! a hook, would wait on it for ever.
//!
//! The prepare handler takes the locks in one fixed order, outermost first: the session
//! (`start` holds it while it takes the others), the native hooks' patch list and map table,
//! the recorder's interner, thread list and thread names, the sampled set, the native marks'
//! chunk list and the arena slots. No memlens code holds one of the later locks while it takes
//! an earlier one, and none is held while waiting for the GIL (which the forking thread may
//! hold), so taking them all waits only for critical sections that finish. The writer's
//! control lock is not taken: the child never uses the parent's writer (its session is
//! abandoned, see [`crate::after_fork_in_child`]).

use std::cell::UnsafeCell;
use std::sync::MutexGuard;

use crate::{Session, hooks, recorder};

/// What the prepare handler holds until the parent or child handler runs.
struct Held {
    _session: MutexGuard<'static, Option<Session>>,
    _native: hooks::native::ForkHold,
    _recorder: Option<RecorderHold>,
    _sampled: hooks::sampled::ForkHold,
    _marks: hooks::native_marks::ForkHold,
    _arena: hooks::arena::ForkHold,
}

struct RecorderHold {
    _interner: MutexGuard<'static, recorder::Interner>,
    _threads: MutexGuard<'static, Vec<std::sync::Arc<recorder::ThreadBuffer>>>,
    _names: MutexGuard<'static, Vec<(u32, u64, String)>>,
}

struct Slot(UnsafeCell<Option<Held>>);

// SAFETY: the slot is written by the prepare handler once it holds every lock (so a second
// thread forking at the same time waits in its own prepare until this fork's locks are
// released) and emptied by the parent or child handler of the same fork, on the same thread.
unsafe impl Sync for Slot {}

static HELD: Slot = Slot(UnsafeCell::new(None));

extern "C" fn prepare() {
    let session = recorder::lock(&crate::SESSION);
    let native = hooks::native::hold_for_fork();
    let recorder = recorder::current().map(|rec| RecorderHold {
        _interner: recorder::lock(&rec.interner),
        _threads: recorder::lock(&rec.threads),
        _names: recorder::lock(&rec.thread_names),
    });
    let held = Held {
        _session: session,
        _native: native,
        _recorder: recorder,
        _sampled: hooks::sampled::hold_for_fork(),
        _marks: hooks::native_marks::hold_for_fork(),
        _arena: hooks::arena::hold_for_fork(),
    };
    // SAFETY: see `Slot`: this thread holds every lock, so no other handler touches the slot.
    unsafe { *HELD.0.get() = Some(held) };
}

/// Releases what [`prepare`] took (dropping the guards unlocks the mutexes).
fn release() {
    // SAFETY: see `Slot`: the handler of the fork whose prepare filled it.
    drop(unsafe { (*HELD.0.get()).take() });
}

extern "C" fn parent() {
    release();
}

extern "C" fn child() {
    // The child has no writer: nothing it allocates is counted (until a new `start`).
    hooks::set_counting(false);
    release();
}

/// Registers the handlers (once per process).
pub(crate) fn install_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handlers take and release memlens's own locks and store to atomics;
        // they allocate nothing and call no Python code.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Forks while another thread holds the lock that `take` takes; the child takes it too.
    /// Without the handlers the child waits for ever (the holder does not exist there): the
    /// parent gives it 5 s.
    fn fork_while_held(take: fn() -> Box<dyn std::any::Any>) {
        install_handlers();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let guard = take();
            held_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(guard);
        });
        held_rx.recv().unwrap();
        // SAFETY: the child only takes a lock and calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            drop(take());
            // SAFETY: ends the child at once, without running the test harness's exit code.
            unsafe { libc::_exit(0) };
        }
        holder.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if done == pid {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("the child deadlocked on a lock held at the fork");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
    }

    #[test]
    fn fork_with_the_session_held() {
        fork_while_held(|| Box::new(recorder::lock(&crate::SESSION)));
    }

    #[test]
    fn fork_with_the_native_tables_held() {
        fork_while_held(|| Box::new(hooks::native::hold_for_fork()));
    }

    #[test]
    fn fork_with_the_sampled_set_held() {
        fork_while_held(|| Box::new(hooks::sampled::hold_for_fork()));
    }

    #[test]
    fn fork_with_the_native_marks_held() {
        fork_while_held(|| Box::new(hooks::native_marks::hold_for_fork()));
    }

    #[test]
    fn fork_with_the_arena_slots_held() {
        fork_while_held(|| Box::new(hooks::arena::hold_for_fork()));
    }

    #[test]
    fn fork_with_the_recorder_held() {
        if recorder::current().is_none() {
            let layout = crate::python::Layout::detect(3, 11).unwrap();
            recorder::install(true, 1, layout, 0);
        }
        fork_while_held(|| {
            let rec = recorder::current().unwrap();
            Box::new((
                recorder::lock(&rec.interner),
                recorder::lock(&rec.threads),
                recorder::lock(&rec.thread_names),
            ))
        });
    }
}
