//! The `memlens` command line.
//!
//! [`main`] parses arguments with clap and dispatches to one module per subcommand under `cmd/`.
//! Every error becomes one line on stderr and exit status 2; a closed stdout exits quietly.
//! `memlens run` needs a Python interpreter, so the caller passes a [`ProgramRunner`]: the Python
//! extension supplies one, the development binary does not.
//!
//! ```no_run
//! let status = memlens_cli::main(["memlens", "lint", "src/"], None);
//! ```

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod progress;
mod reference;

pub use cmd::run::{ProgramRunner, Ran, RunOptions, RunTarget};
pub use reference::cli_reference;

/// memlens: find where a Python program's memory goes, who keeps it alive, and how to fix it.
#[derive(Debug, Parser)]
// `about` spelled out: clap's default is the crate's description, written for Rust readers.
#[command(
    name = "memlens",
    version,
    about = "memlens: where a Python program's memory goes, who keeps it alive, and how to fix it",
    long_about = None,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Python program under the memory tracker and report on it.
    #[command(long_about = cmd::run::LONG_ABOUT, after_long_help = cmd::run::EXAMPLES)]
    Run(cmd::run::Args),
    /// Render a report from a capture file.
    Report(cmd::report::Args),
    /// Analyse a heap snapshot: dominators, retainer paths, growth.
    Heap(cmd::heap::Args),
    /// What the garbage collector did: pauses, collections, the lines that made cycles.
    Gc(cmd::gc::Args),
    /// Sample the memory of a process tree over time.
    Monitor(cmd::monitor::Args),
    /// Check Python source for memory anti-patterns.
    Lint(cmd::lint::Args),
    /// Explain a rule: what it finds, why it matters, and how to fix it.
    Explain(cmd::explain::Args),
}

/// Runs the command line with `args` (program name first) and returns the process exit status.
///
/// `runner` executes profiled programs for `memlens run`; without one, `run` fails with a message.
pub fn main<I, T>(args: I, runner: Option<&dyn ProgramRunner>) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    ExitCode::from(main_status(args, runner))
}

/// Like [`main`], but returns the status as a number (for the Python entry point).
pub fn main_status<I, T>(args: I, runner: Option<&dyn ProgramRunner>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // `memlens run ... TARGET ARGS...`: the program's arguments are set aside before clap sees
    // them (they are the program's, whatever they look like).
    let program_args = if args.get(1).is_some_and(|a| a == "run") {
        let mut run_args = args.split_off(2);
        let program = cmd::run::split_program_args(&mut run_args);
        args.extend(run_args);
        Some(program)
    } else {
        None
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(mut cli) => {
            if let (Command::Run(run), Some(program)) = (&mut cli.command, program_args) {
                run.set_program_args(program);
            }
            cli
        }
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Run(args) => cmd::run::exec(args, runner),
        Command::Report(args) => cmd::report::exec(args),
        Command::Heap(args) => cmd::heap::exec(args),
        Command::Gc(args) => cmd::gc::exec(args),
        Command::Monitor(args) => cmd::monitor::exec(args),
        Command::Lint(args) => cmd::lint::exec(args),
        Command::Explain(args) => cmd::explain::exec(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => 0,
        Err(err) => {
            eprintln!("memlens: error: {}", one_line(&err));
            2
        }
    }
}

/// Joins an error and its causes into one line, as the CLI contract asks.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
