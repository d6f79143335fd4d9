//! The few system calls std does not offer: stop signals, `wait4` with its rusage, `kill` and the
//! page size. Every `unsafe` block of the crate is here, each with its `SAFETY` note.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

/// The page size in bytes (for `statm`).
pub(crate) fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        #[allow(unsafe_code)]
        // SAFETY: sysconf reads a constant of the running system and touches no memory of ours.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 { size as u64 } else { 4096 }
    })
}

// State written by the signal handler: only atomics, which are async-signal-safe.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static STOP_COUNT: AtomicU32 = AtomicU32::new(0);
static STOP_FROM_TERMINAL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _: *mut libc::c_void,
) {
    // SI_KERNEL marks a signal raised by the kernel itself, which is how the terminal driver
    // delivers Ctrl-C (to the whole foreground process group, so the command has it too).
    let from_kernel = if info.is_null() {
        false
    } else {
        #[allow(unsafe_code)]
        // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t for the handler's duration.
        let code = unsafe { (*info).si_code };
        code == libc::SI_KERNEL
    };
    STOP_FROM_TERMINAL.store(from_kernel, Ordering::SeqCst);
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
    STOP_COUNT.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_child_signal(_: libc::c_int) {
    // Nothing to do: arriving is enough to cut `sleep_interruptible` short.
}

/// A stop signal (SIGINT, SIGTERM or SIGHUP) that reached the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StopSignal {
    /// The signal number.
    pub(crate) signal: i32,
    /// How many stop signals have arrived so far.
    pub(crate) count: u32,
    /// True when the terminal sent it, so the monitored command received it as well.
    pub(crate) from_terminal: bool,
}

/// Catches SIGINT, SIGTERM and SIGHUP (counted) and SIGCHLD (which only wakes the monitor) while
/// alive, and restores the previous handlers on drop (the CLI may run inside a Python interpreter
/// that has its own SIGINT handler).
pub(crate) struct StopSignals {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
const CAUGHT_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD];

impl std::fmt::Debug for StopSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopSignals").finish_non_exhaustive()
    }
}

impl StopSignals {
    pub(crate) fn install() -> io::Result<Self> {
        STOP_SIGNAL.store(0, Ordering::SeqCst);
        STOP_COUNT.store(0, Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in CAUGHT_SIGNALS {
            let (handler, flags) = if STOP_SIGNALS.contains(&signal) {
                (
                    on_stop_signal as *const () as usize,
                    libc::SA_SIGINFO | libc::SA_RESTART,
                )
            } else {
                (
                    on_child_signal as *const () as usize,
                    libc::SA_RESTART | libc::SA_NOCLDSTOP,
                )
            };
            #[allow(unsafe_code)]
            // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handlers only
            // store to atomics, which is async-signal-safe; `old` is a valid out-pointer.
            let result = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler;
                action.sa_flags = flags;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    Ok(old)
                } else {
                    Err(io::Error::last_os_error())
                }
            };
            previous.push((signal, result?));
        }
        Ok(StopSignals { previous })
    }

    /// The last stop signal received, if any.
    pub(crate) fn received(&self) -> Option<StopSignal> {
        let count = STOP_COUNT.load(Ordering::SeqCst);
        (count > 0).then(|| StopSignal {
            signal: STOP_SIGNAL.load(Ordering::SeqCst),
            count,
            from_terminal: STOP_FROM_TERMINAL.load(Ordering::SeqCst),
        })
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            #[allow(unsafe_code)]
            // SAFETY: `old` is the action the kernel returned for this signal at install time.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
    }
}

/// Sleeps for `duration` or until a caught signal arrives (a stop signal, or SIGCHLD when a child
/// of ours ends), whichever is first: one wake-up per sample instead of polling.
pub(crate) fn sleep_interruptible(duration: std::time::Duration) {
    let request = libc::timespec {
        tv_sec: duration.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(duration.subsec_nanos() as i32),
    };
    #[allow(unsafe_code)]
    // SAFETY: `request` is a valid timespec; a null remainder pointer is allowed. EINTR (a signal
    // arrived) is the early return we want, so the result is not checked.
    unsafe {
        libc::nanosleep(&request, std::ptr::null_mut());
    }
}

/// How a reaped child ended, with the kernel's peak RSS for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reaped {
    /// The raw wait status.
    pub(crate) status: i32,
    /// `ru_maxrss` in bytes: the largest RSS of the child or of any descendant it waited for.
    pub(crate) max_rss: u64,
}

/// Reaps child `pid` if it has ended (`block` waits for it).
pub(crate) fn wait_child(pid: u32, block: bool) -> io::Result<Option<Reaped>> {
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        let mut status: libc::c_int = 0;
        #[allow(unsafe_code)]
        // SAFETY: status and rusage are valid out-pointers for the call; a zeroed rusage is valid.
        let (result, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let result = libc::wait4(pid as libc::pid_t, &mut status, flags, &mut usage);
            (result, usage)
        };
        if result == 0 {
            return Ok(None);
        }
        if result < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                if block {
                    return Ok(None); // let the caller look at the signal that interrupted us
                }
                continue;
            }
            return Err(err);
        }
        return Ok(Some(Reaped {
            status,
            // Linux reports ru_maxrss in KiB.
            max_rss: (usage.ru_maxrss.max(0) as u64) * 1024,
        }));
    }
}

/// Makes this process the "child subreaper" of its descendants (`on`), or stops being one: orphans
/// are then re-parented to us rather than to init, so a descendant whose parent exits before the
/// monitor sees it still shows up as ours, and we must reap it ([`reap_any`]).
pub(crate) fn set_child_subreaper(on: bool) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let result = unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            libc::c_ulong::from(on),
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reaps one ended child of ours, any of them, without blocking.
pub(crate) fn reap_any() -> io::Result<Option<(u32, Reaped)>> {
    loop {
        let mut status: libc::c_int = 0;
        #[allow(unsafe_code)]
        // SAFETY: status and rusage are valid out-pointers for the call; a zeroed rusage is valid.
        let (result, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let result = libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage);
            (result, usage)
        };
        if result > 0 {
            let reaped = Reaped {
                status,
                max_rss: (usage.ru_maxrss.max(0) as u64) * 1024,
            };
            return Ok(Some((result as u32, reaped)));
        }
        if result == 0 {
            return Ok(None);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// Sends `signal` to process `pid`; a process that is already gone is not an error.
pub(crate) fn send_signal(pid: u32, signal: i32) {
    #[allow(unsafe_code)]
    // SAFETY: kill takes plain integers; the pid is our own child, not yet reaped, so it cannot
    // have been reused by another process.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// SIGKILL, for the second interrupt while waiting for the command.
pub(crate) const SIGKILL: i32 = libc::SIGKILL;
