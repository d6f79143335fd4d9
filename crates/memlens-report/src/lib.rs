//! memlens-report (work in progress).
