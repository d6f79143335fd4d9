//! The capture's interning tables (strings, functions, frames, stack nodes), filled as their
//! definition records go by.

use memlens_format::Record;

use crate::AnalysisError;
use crate::model::Location;

/// How far past the highest id defined so far a definition may reach. The tracker hands out
/// dense ids; a wild one means a corrupt file, and growing a table to it could exhaust memory.
const MAX_ID_JUMP: usize = 1 << 20;

/// Longest stack followed (a guard against parent cycles in a corrupt file).
pub(crate) const MAX_DEPTH: usize = 10_000;

pub(crate) struct Function {
    pub(crate) qualname: u32,
    pub(crate) file: u32,
}

#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) strings: Vec<String>,
    pub(crate) functions: Vec<Option<Function>>,
    pub(crate) frames: Vec<Option<(u32, u32)>>,
    /// `(parent, frame)` per stack id; `None` when undefined.
    pub(crate) stacks: Vec<Option<(u32, u32)>>,
}

/// Stores `value` at `id`, growing `v` as needed; refuses ids far beyond the table.
pub(crate) fn put<T: Default>(
    v: &mut Vec<T>,
    id: u32,
    value: T,
    chunk_offset: u64,
) -> Result<(), AnalysisError> {
    let i = id as usize;
    if i >= v.len() {
        if i - v.len() > MAX_ID_JUMP {
            return Err(AnalysisError::Format(
                memlens_format::FormatError::Corrupt {
                    offset: chunk_offset,
                    what: format!(
                        "definition id {id} far beyond the {} defined so far",
                        v.len()
                    ),
                },
            ));
        }
        v.resize_with(i + 1, T::default);
    }
    v[i] = value;
    Ok(())
}

fn unknown(line: u32) -> Location {
    Location {
        file: "?".into(),
        line,
        function: "?".into(),
    }
}

impl Tables {
    /// Takes a definition record (string, function, frame, stack) into the tables; any other
    /// record comes back for the caller. Every pass over a capture reads definitions alike.
    pub(crate) fn define(
        &mut self,
        record: Record,
        chunk_offset: u64,
    ) -> Result<Option<Record>, AnalysisError> {
        match record {
            Record::String { id, text } => put(&mut self.strings, id, text, chunk_offset)?,
            Record::Function {
                id, qualname, file, ..
            } => put(
                &mut self.functions,
                id,
                Some(Function { qualname, file }),
                chunk_offset,
            )?,
            Record::Frame { id, function, line } => {
                put(&mut self.frames, id, Some((function, line)), chunk_offset)?
            }
            // Stack 0 is the empty stack, never defined.
            Record::Stack { id, parent, frame } => {
                if id != 0 {
                    put(&mut self.stacks, id, Some((parent, frame)), chunk_offset)?
                }
            }
            other => return Ok(Some(other)),
        }
        Ok(None)
    }

    pub(crate) fn string(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("?", String::as_str)
    }

    pub(crate) fn location(&self, frame: u32) -> Location {
        let Some(&(function, line)) = self.frames.get(frame as usize).and_then(Option::as_ref)
        else {
            return unknown(0);
        };
        match self
            .functions
            .get(function as usize)
            .and_then(Option::as_ref)
        {
            Some(f) => Location {
                file: self.string(f.file).to_owned(),
                line,
                function: self.string(f.qualname).to_owned(),
            },
            None => unknown(line),
        }
    }

    /// The `(parent, frame)` of a defined stack node other than the root.
    pub(crate) fn stack(&self, id: u32) -> Option<(u32, u32)> {
        if id == 0 {
            return None;
        }
        self.stacks.get(id as usize).copied().flatten()
    }

    /// Frames of `stack`, innermost first.
    pub(crate) fn frames_of(&self, mut stack: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < MAX_DEPTH {
            let Some((parent, frame)) = self.stack(stack) else {
                break;
            };
            out.push(frame);
            stack = parent;
        }
        out
    }
}
