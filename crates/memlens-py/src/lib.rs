//! `memlens._native`: the tracker and the command line, exposed to Python.
//!
//! The Python package (`python/memlens`) wraps these functions in its public API; the
//! `memlens` console script calls [`cli_main`], which runs the Rust CLI with a
//! [`ProgramRunner`] that executes the profiled program in this interpreter.
#![allow(unsafe_code)]

use std::path::PathBuf;

use memlens_cli::{ProgramRunner, Ran, RunOptions, RunTarget};
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn tracker_error(e: memlens_tracker::TrackerError) -> PyErr {
    match e {
        memlens_tracker::TrackerError::Create { .. } => PyOSError::new_err(e.to_string()),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// Starts tracking; see `memlens.track` for the arguments.
#[pyfunction]
#[pyo3(signature = (path, exact, sample_rate, native, python, python_version, command, library_prefixes))]
#[allow(clippy::too_many_arguments)]
fn start(
    path: PathBuf,
    exact: bool,
    sample_rate: u64,
    native: bool,
    python: (u8, u8),
    python_version: String,
    command: Vec<String>,
    library_prefixes: Vec<String>,
) -> PyResult<()> {
    memlens_tracker::start(memlens_tracker::Config {
        path,
        exact,
        sample_rate,
        native,
        python,
        python_version,
        command,
        library_prefixes,
    })
    .map_err(tracker_error)
}

fn totals_dict<'py>(py: Python<'py>, t: memlens_tracker::Totals) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("live_bytes", t.live)?;
    d.set_item("peak_bytes", t.peak)?;
    d.set_item("allocated_bytes", t.allocated)?;
    d.set_item("allocations", t.allocations)?;
    Ok(d)
}

/// Stops tracking; returns a summary dict.
#[pyfunction]
fn stop(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let summary = memlens_tracker::stop().map_err(tracker_error)?;
    let d = totals_dict(py, summary.totals)?;
    // A str, not a pathlib.Path: converting to Path imports pathlib (and urllib, re, ...) into
    // the profiled process.
    d.set_item("path", summary.path.into_os_string())?;
    d.set_item("capture_bytes", summary.writer.bytes)?;
    d.set_item("events", summary.writer.events)?;
    d.set_item("write_failed", summary.writer.failed)?;
    d.set_item("write_error", summary.writer.error)?;
    d.set_item("dropped_events", summary.dropped_events)?;
    Ok(d)
}

/// Exact totals now.
#[pyfunction]
fn current(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    totals_dict(py, memlens_tracker::current())
}

/// Which hooks wrap the Python allocator domains: "pools", "plain", "general" or "none".
#[pyfunction]
fn python_hooks() -> &'static str {
    memlens_tracker::python_hooks().name()
}

/// True while tracking.
#[pyfunction]
fn is_active() -> bool {
    memlens_tracker::is_active()
}

/// A garbage collection starts or stops (from memlens's `gc.callbacks` entry).
#[pyfunction]
fn gc_event(start: bool, generation: u8, collected: u64, uncollectable: u64) {
    memlens_tracker::gc_event(start, generation, collected, uncollectable);
}

/// The program called `gc.enable()` (`on`) or `gc.disable()`.
#[pyfunction]
fn gc_enabled(on: bool) {
    memlens_tracker::gc_enabled(on);
}

/// The collector's state as tracking stops.
#[pyfunction]
fn gc_final(garbage: u64, frozen: u64, enabled: bool) {
    memlens_tracker::gc_final(garbage, frozen, enabled);
}

/// Marks a point in the capture.
#[pyfunction]
fn checkpoint(label: &str) {
    memlens_tracker::checkpoint(label);
}

/// Makes the caller's frame the root of recorded stacks (True) or clears it (False).
#[pyfunction]
fn set_stack_root(on: bool) {
    memlens_tracker::set_stack_root(on);
}

/// Evaluates the program's code object in `globals`, as `exec(code, globals)` would, but with
/// this thread's frame chain cut below it: the program's `<module>` frame is the outermost
/// one, as under `python`, so no frame of memlens's runner shows in its tracebacks,
/// `inspect.stack()` or recorded stacks.
#[pyfunction]
fn run_code<'py>(
    py: Python<'py>,
    code: &Bound<'py, PyAny>,
    globals: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let version = py.version_info();
    // SAFETY: `code` is checked to be a code object first; PyEval_EvalCode then pops every
    // frame it pushes before it returns, which is what `with_detached_frames` requires; the
    // GIL is held (`py`), and the borrowed `code` and `globals` outlive the call.
    let result = unsafe {
        if pyo3::ffi::PyObject_TypeCheck(code.as_ptr(), std::ptr::addr_of_mut!(PY_CODE_TYPE)) == 0 {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "run_code needs a code object",
            ));
        }
        memlens_tracker::with_detached_frames((version.major, version.minor), || {
            pyo3::ffi::PyEval_EvalCode(code.as_ptr(), globals.as_ptr(), globals.as_ptr())
        })
    };
    if result.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a non-null result of PyEval_EvalCode is a new reference.
    Ok(unsafe { Bound::from_owned_ptr(py, result) })
}

unsafe extern "C" {
    /// `PyCode_Type`: outside the stable ABI's declarations but exported by every version.
    #[link_name = "PyCode_Type"]
    static mut PY_CODE_TYPE: pyo3::ffi::PyTypeObject;
}

/// Names the calling thread in the capture.
#[pyfunction]
fn set_thread_name(name: &str) {
    memlens_tracker::set_thread_name(name);
}

/// Writes what was recorded so far.
#[pyfunction]
fn flush(py: Python<'_>) {
    py.detach(memlens_tracker::flush);
}

/// Abandons the parent's session in a forked child.
#[pyfunction]
fn after_fork_in_child() {
    memlens_tracker::after_fork_in_child();
}

/// Takes a heap snapshot: into the file at `path`, or (`path=None`) as a chunk of the current
/// capture. The roots are `sys.modules`, `sys.__dict__` and `builtins.__dict__`; `threads`
/// names threads by ident; `plain_class` is a class defined in Python with no base but
/// `object` (it lets the walker read such instances without calling traverse); `values` stores
/// the first 64 characters of every `str` and `bytes` (off: only a keyed hash of each value, for
/// duplicate detection; the program's values may be secrets). Returns counts
/// (`objects`, `edges`, `roots`, `bytes`, `file_bytes`). The walk allocates no Python object.
/// Refused while the garbage collector runs (from `__del__` or a gc callback).
#[pyfunction]
#[pyo3(signature = (path, python, modules, sys_dict, builtins, threads, meta, plain_class=None, values=false))]
#[allow(clippy::too_many_arguments)]
fn heap_snapshot<'py>(
    py: Python<'py>,
    path: Option<PathBuf>,
    python: (u8, u8),
    modules: &Bound<'py, PyDict>,
    sys_dict: &Bound<'py, PyDict>,
    builtins: &Bound<'py, PyDict>,
    threads: Vec<(u64, String)>,
    meta: Vec<(String, String)>,
    plain_class: Option<&Bound<'py, pyo3::types::PyType>>,
    values: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let roots = memlens_tracker::heap::Roots {
        modules: modules.as_ptr() as usize,
        sys_dict: sys_dict.as_ptr() as usize,
        builtins: builtins.as_ptr() as usize,
        thread_names: threads,
        plain_class: plain_class.map_or(0, |c| c.as_ptr() as usize),
        values,
    };
    if path.is_none() && !memlens_tracker::is_active() {
        return Err(PyRuntimeError::new_err(
            "no capture to add the heap snapshot to: give a path or start tracking",
        ));
    }
    // SAFETY: we hold the GIL (`py`). Checked before the output file is created.
    unsafe { memlens_tracker::check_heap_snapshot(python) }.map_err(tracker_error)?;
    let walked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        || -> PyResult<(memlens_tracker::heap::HeapStats, u64, Option<Vec<u8>>)> {
            // SAFETY (both calls): we hold the GIL (`py`) and run no Python code until the walk
            // returns; the three dicts are kept alive by the borrowed `Bound`s.
            match &path {
                Some(p) => {
                    let cannot = |e: std::io::Error| {
                        PyOSError::new_err(format!("cannot write {}: {e}", p.display()))
                    };
                    let file = std::fs::File::create(p).map_err(cannot)?;
                    let out = std::io::BufWriter::with_capacity(1 << 20, file);
                    let (w, stats) =
                        unsafe { memlens_tracker::heap_snapshot(python, &roots, &meta, out) }
                            .map_err(tracker_error)?;
                    let file = w.into_inner().map_err(|e| cannot(e.into_error()))?;
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    Ok((stats, len, None))
                }
                None => {
                    let (bytes, stats) = unsafe {
                        memlens_tracker::heap_snapshot(python, &roots, &meta, Vec::new())
                    }
                    .map_err(tracker_error)?;
                    Ok((stats, bytes.len() as u64, Some(bytes)))
                }
            }
        },
    ));
    let (stats, file_bytes, chunk) = match walked {
        Ok(r) => r?,
        Err(_) => {
            return Err(PyRuntimeError::new_err(
                "the heap walk failed (internal error in memlens); the program is unaffected",
            ));
        }
    };
    if let Some(bytes) = chunk {
        // Writing a large chunk takes a moment: let other threads run meanwhile.
        py.detach(|| memlens_tracker::add_heap_snapshot(bytes))
            .map_err(tracker_error)?;
    }
    let d = PyDict::new(py);
    d.set_item("objects", stats.objects)?;
    d.set_item("edges", stats.edges)?;
    d.set_item("roots", stats.roots)?;
    d.set_item("bytes", stats.bytes)?;
    d.set_item("file_bytes", file_bytes)?;
    Ok(d)
}

/// Runs profiled programs through `memlens._runner.run`.
struct PyRunner;

impl ProgramRunner for PyRunner {
    fn run(&self, options: &RunOptions) -> anyhow::Result<Ran> {
        Python::attach(|py| -> PyResult<Ran> {
            let runner = py.import("memlens._runner")?;
            let kwargs = PyDict::new(py);
            // Paths go as str (OsStr keeps undecodable bytes as surrogates), never as
            // pathlib.Path, whose import would run before the program starts.
            match &options.target {
                RunTarget::Script(p) => kwargs.set_item("target", p.as_os_str())?,
                RunTarget::Module(m) => kwargs.set_item("target", m)?,
                RunTarget::Code(c) => kwargs.set_item("target", c)?,
            }
            let kind = match &options.target {
                RunTarget::Script(_) => "script",
                RunTarget::Module(_) => "module",
                RunTarget::Code(_) => "code",
            };
            kwargs.set_item("kind", kind)?;
            let args: Vec<String> = options
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            kwargs.set_item("args", args)?;
            kwargs.set_item("output", options.output.as_os_str())?;
            kwargs.set_item("exact", options.exact)?;
            kwargs.set_item("sample_rate", options.sample_rate)?;
            kwargs.set_item("native", true)?;
            kwargs.set_item("follow_fork", options.follow_fork)?;
            kwargs.set_item("heap_snapshot", options.heap_snapshot_at_exit)?;
            kwargs.set_item("heap_values", options.heap_values)?;
            let (status, tracked, write_error): (i64, bool, Option<String>) =
                runner.call_method("run", (), Some(&kwargs))?.extract()?;
            Ok(Ran {
                // What the process would exit with: the low byte, as for `exit(status)`.
                status: (status & 0xff) as u8,
                tracked,
                write_error,
            })
        })
        .map_err(|e| anyhow::anyhow!("{}", Python::attach(|py| e.value(py).to_string())))
    }

    fn interpreter(&self) -> anyhow::Result<std::path::PathBuf> {
        Python::attach(|py| -> PyResult<std::path::PathBuf> {
            py.import("sys")?.getattr("executable")?.extract()
        })
        .map_err(|e| anyhow::anyhow!("cannot find the Python interpreter to run: {e}"))
    }

    fn without_interrupts(
        &self,
        wait: &mut dyn FnMut() -> anyhow::Result<u8>,
    ) -> anyhow::Result<u8> {
        // A Python-level no-op handler (not SIG_IGN, which a child would inherit across exec):
        // Ctrl-C still reaches the child, and the interrupt pending here runs the no-op.
        let previous = Python::attach(|py| -> PyResult<_> {
            let signal = py.import("signal")?;
            let noop = py.eval(c"lambda signum, frame: None", None, None)?;
            let sigint = signal.getattr("SIGINT")?;
            let previous = signal.call_method1("signal", (&sigint, noop))?;
            Ok(previous.unbind())
        })
        .ok();
        let result = wait();
        if let Some(previous) = previous {
            Python::attach(|py| {
                let _ = py.check_signals();
                if let Ok(signal) = py.import("signal")
                    && let Ok(sigint) = signal.getattr("SIGINT")
                {
                    let _ = signal.call_method1("signal", (sigint, previous));
                }
            });
        }
        result
    }
}

/// Runs the `memlens` command line with `argv`; returns the exit status.
#[pyfunction]
fn cli_main(argv: Vec<String>) -> u8 {
    memlens_cli::main_status(argv, Some(&PyRunner))
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(start, m)?)?;
    m.add_function(wrap_pyfunction!(stop, m)?)?;
    m.add_function(wrap_pyfunction!(current, m)?)?;
    m.add_function(wrap_pyfunction!(is_active, m)?)?;
    m.add_function(wrap_pyfunction!(python_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(gc_event, m)?)?;
    m.add_function(wrap_pyfunction!(gc_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(gc_final, m)?)?;
    m.add_function(wrap_pyfunction!(set_thread_name, m)?)?;
    m.add_function(wrap_pyfunction!(set_stack_root, m)?)?;
    m.add_function(wrap_pyfunction!(run_code, m)?)?;
    m.add_function(wrap_pyfunction!(flush, m)?)?;
    m.add_function(wrap_pyfunction!(after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(heap_snapshot, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
