/// Which allocator served a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// CPython's object allocator (pymalloc small blocks, `PyObject_Malloc`/`PyMem_Malloc`).
    Python,
    /// The C heap: malloc and friends, called from anywhere (large Python objects, extensions).
    Native,
    /// Anonymous memory mapped with `mmap` directly.
    Mmap,
}

impl Domain {
    pub(crate) fn code(self) -> u8 {
        match self {
            Domain::Python => 0,
            Domain::Native => 1,
            Domain::Mmap => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Domain::Python,
            1 => Domain::Native,
            2 => Domain::Mmap,
            _ => return None,
        })
    }

    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Python => "python",
            Domain::Native => "native",
            Domain::Mmap => "mmap",
        }
    }
}

/// One record of an `Events` chunk. Definition records (strings, functions, frames, stacks,
/// threads) carry their id, so every chunk decodes on its own; stack id 0 is the empty stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Defines a string.
    String {
        /// String id.
        id: u32,
        /// The text (lossily converted to UTF-8 by the tracker).
        text: String,
    },
    /// Defines a function: a code object's names and file.
    Function {
        /// Function id.
        id: u32,
        /// Function name (`co_name`).
        name: u32,
        /// Qualified name (`co_qualname` on 3.11+, else the name).
        qualname: u32,
        /// File name string id.
        file: u32,
        /// First line of the code object.
        first_line: u32,
    },
    /// Defines a frame: a line within a function.
    Frame {
        /// Frame id.
        id: u32,
        /// Function id.
        function: u32,
        /// Line number (0 when unknown).
        line: u32,
    },
    /// Defines a stack as `parent` with `frame` called from it (innermost last).
    Stack {
        /// Stack id (never 0).
        id: u32,
        /// Parent stack id (0 = no caller).
        parent: u32,
        /// Frame id of the innermost frame.
        frame: u32,
    },
    /// Defines (or renames) a thread.
    Thread {
        /// Thread id, as used by `SwitchThread`.
        id: u32,
        /// OS thread id (the kernel's tid).
        native_id: u64,
        /// Thread name string id.
        name: u32,
    },
    /// Later events happened on this thread id.
    SwitchThread(u32),
    /// A block was allocated (and, in sampling mode, sampled).
    Alloc {
        /// Block address.
        addr: u64,
        /// Size in bytes.
        size: u64,
        /// Stack id that allocated it.
        stack: u32,
        /// Allocator.
        domain: Domain,
    },
    /// A previously recorded block was freed.
    Free {
        /// Block address.
        addr: u64,
    },
    /// The exact running totals reached a new high-water mark here: the live set at this point
    /// is the peak set.
    Peak,
    /// Exact running totals, written periodically and at the end.
    Counters {
        /// Nanoseconds since the capture started.
        time_ns: u64,
        /// Bytes live now (all allocations, sampled or not).
        live: u64,
        /// Highest `live` so far.
        peak: u64,
        /// Bytes allocated so far.
        allocated: u64,
        /// Allocations so far.
        allocations: u64,
        /// Resident set size of the process, bytes.
        rss: u64,
    },
    /// A user checkpoint (`memlens.checkpoint(label)`), label string id.
    Checkpoint(u32),
    /// The cyclic garbage collector started a collection (`gc.callbacks`, phase "start").
    GcStart {
        /// Oldest generation collected (0-2).
        generation: u8,
        /// Nanoseconds since the capture started.
        time_ns: u64,
        /// Bytes freed so far in the session (exact, every allocation counted): the
        /// difference to the matching `GcStop` is what the collection freed.
        freed: u64,
    },
    /// The collection that the last `GcStart` of this thread began has ended.
    GcStop {
        /// Oldest generation collected.
        generation: u8,
        /// Nanoseconds since the capture started.
        time_ns: u64,
        /// Bytes freed so far in the session (see `GcStart`).
        freed: u64,
        /// Objects the collection found unreachable and freed (`info["collected"]`).
        collected: u64,
    },
    /// Unreachable objects the collection that just stopped could not free
    /// (`info["uncollectable"]`, written only when not zero).
    GcUncollectable(u64),
    /// The program turned automatic collection off (`gc.disable()`) or on (`gc.enable()`).
    GcEnabled {
        /// True for `gc.enable()`.
        on: bool,
        /// Nanoseconds since the capture started.
        time_ns: u64,
    },
    /// The collector's state when tracking stopped.
    GcFinal {
        /// Objects in `gc.garbage`.
        garbage: u64,
        /// Objects moved to the permanent generation by `gc.freeze()`.
        frozen: u64,
        /// True when automatic collection was on.
        enabled: bool,
    },
    /// The program ended normally; nothing follows.
    End,
}
