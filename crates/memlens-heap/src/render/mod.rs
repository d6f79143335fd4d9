//! Renderers: each formats the report model (or, for `.heapsnapshot`, the graph) and nothing else.

pub(crate) mod heapsnapshot;
pub(crate) mod json;
pub(crate) mod text;
