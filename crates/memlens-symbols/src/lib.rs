//! Native frames resolved offline: a module (the shared object or executable a return address
//! fell in, with its load bias and build id, as a capture records them) and an address become
//! function names (demangled C++ and Rust), files and lines, inline frames included.
//!
//! The profiled process pays nothing for this: the tracker records raw addresses and module
//! maps, and `memlens report` resolves them. A module whose file is gone, unreadable, or
//! replaced since the capture (another build id) gives its path and offset instead, so a capture
//! stays readable on another machine:
//!
//! ```no_run
//! let mut symbols = memlens_symbols::Symbolizer::default();
//! let module = memlens_symbols::Module {
//!     path: "/usr/lib/libfoo.so".into(),
//!     bias: 0x7f00_0000_0000,
//!     build_id: None,
//! };
//! for frame in symbols.resolve(&module, 0x7f00_0000_1234) {
//!     println!("{}", frame.display_name());
//! }
//! ```
#![deny(missing_docs)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A loaded object as the capture saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Module {
    /// Its file.
    pub path: PathBuf,
    /// Load bias: the address minus the object's own (stated) virtual address, `dlpi_addr`.
    pub bias: u64,
    /// The GNU build id of the loaded image, when it had one.
    pub build_id: Option<Vec<u8>>,
}

/// One native frame: a function, or an inlined call within one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFrame {
    /// The module's file.
    pub module: PathBuf,
    /// The address's offset in the module (address minus bias): stable across runs.
    pub offset: u64,
    /// Function name, demangled; `None` when neither debug information nor a symbol names it.
    pub function: Option<String>,
    /// Source file, from debug information.
    pub file: Option<String>,
    /// Source line, from debug information.
    pub line: Option<u32>,
    /// True for a frame inlined into the next one.
    pub inlined: bool,
}

impl NativeFrame {
    /// The function's name, or `module+0xoffset` when it has none.
    pub fn display_name(&self) -> String {
        match &self.function {
            Some(f) => f.clone(),
            None => format!("{}+{:#x}", module_name(&self.module), self.offset),
        }
    }
}

fn module_name(path: &Path) -> Cow<'_, str> {
    path.file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
}

/// Why a module gives no symbols (kept so that a report can say it once per module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The file cannot be opened or parsed.
    Unreadable(String),
    /// The file's build id is not the one the capture recorded: it was rebuilt or replaced.
    OtherBuild,
}

enum Loaded {
    Ready(Box<addr2line::Loader>),
    Unavailable(Unavailable),
}

/// Resolves addresses, keeping each module's parsed debug information for later lookups.
#[derive(Default)]
pub struct Symbolizer {
    modules: HashMap<PathBuf, Loaded>,
}

impl Symbolizer {
    /// The frames at `address` in `module`, innermost (inlined) first; always at least one.
    pub fn resolve(&mut self, module: &Module, address: u64) -> Vec<NativeFrame> {
        let offset = address.wrapping_sub(module.bias);
        let bare = || NativeFrame {
            module: module.path.clone(),
            offset,
            function: None,
            file: None,
            line: None,
            inlined: false,
        };
        let Loaded::Ready(loader) = self.load(module) else {
            return vec![bare()];
        };
        let mut frames = Vec::new();
        if let Ok(mut iter) = loader.find_frames(offset) {
            while let Ok(Some(frame)) = iter.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.demangle().ok())
                    .map(Cow::into_owned);
                let (file, line) = frame
                    .location
                    .map_or((None, None), |l| (l.file.map(str::to_owned), l.line));
                frames.push(NativeFrame {
                    function,
                    file,
                    line,
                    ..bare()
                });
            }
        }
        // Every frame but the outermost is inlined into the one after it.
        let n = frames.len();
        for frame in frames.iter_mut().take(n.saturating_sub(1)) {
            frame.inlined = true;
        }
        // No debug information for this address: the symbol table may still name it.
        if frames.iter().all(|f| f.function.is_none()) {
            let symbol = loader
                .find_symbol(offset)
                .map(|name| addr2line::demangle_auto(Cow::Borrowed(name), None).into_owned());
            match frames.last_mut() {
                Some(last) => last.function = symbol,
                None => frames.push(NativeFrame {
                    function: symbol,
                    ..bare()
                }),
            }
        }
        frames
    }

    /// Why `module` gives no symbols, or `None` when it does.
    pub fn unavailable(&mut self, module: &Module) -> Option<Unavailable> {
        match self.load(module) {
            Loaded::Ready(_) => None,
            Loaded::Unavailable(why) => Some(why.clone()),
        }
    }

    fn load(&mut self, module: &Module) -> &Loaded {
        self.modules
            .entry(module.path.clone())
            .or_insert_with(|| open(module))
    }
}

fn open(module: &Module) -> Loaded {
    if let Some(expected) = &module.build_id {
        match build_id(&module.path) {
            Ok(Some(found)) if &found == expected => {}
            Ok(_) => return Loaded::Unavailable(Unavailable::OtherBuild),
            Err(e) => return Loaded::Unavailable(Unavailable::Unreadable(e)),
        }
    }
    match addr2line::Loader::new(&module.path) {
        Ok(loader) => Loaded::Ready(Box::new(loader)),
        Err(e) => Loaded::Unavailable(Unavailable::Unreadable(e.to_string())),
    }
}

/// The GNU build id of the file at `path` (`None` when it has none).
pub fn build_id(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use object::Object;
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
    file.build_id()
        .map(|id| id.map(<[u8]>::to_vec))
        .map_err(|e| format!("{}: {e}", path.display()))
}
