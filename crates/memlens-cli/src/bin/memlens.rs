//! Development entry point: every command except `run`, which needs the Python package.
fn main() -> std::process::ExitCode {
    memlens_cli::main(std::env::args_os(), None)
}
