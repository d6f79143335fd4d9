//! End-to-end tests of the `memlens` binary: one module per command, each test in a fresh
//! temporary directory.
mod heap;
mod lint;
mod monitor;
mod reference;
mod report;
