//! Encoding and compressing blocks on a second thread while the walker goes on.
//!
//! The builder hands over node and edge records as fixed-width structs and the other kinds as
//! ready bytes; one worker thread varint-codes the records (keeping the delta state of each
//! kind, so blocks stay in order) and zstd-compresses every block, and the builder writes the
//! compressed blocks it gets back, in order, to its sink (which therefore never crosses
//! threads). The walker inside a profiled process then spends its time walking: encoding and
//! compression were about 40% of its instructions. When no thread can be started, the same
//! work runs inline.

use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError};

use crate::error::{HeapError, Result};
use crate::file::{Kind, put_varint};
use crate::model::{NodeFlags, Tag, zig};

/// A node record before encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeRec {
    pub(crate) addr: u64,
    pub(crate) size: u64,
    pub(crate) ty: u32,
    /// Site id + 1 (0: none).
    pub(crate) site: u32,
    /// Preview string id + 1 (0: none).
    pub(crate) preview: u32,
    pub(crate) flags: u8,
    /// Written (8 bytes LE) when `flags` has `VALUE_HASH`.
    pub(crate) value_hash: u64,
}

/// An edge record before encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EdgeRec {
    pub(crate) from: u32,
    pub(crate) to: u32,
    /// The label tag with the weak bit (0x80).
    pub(crate) tag: u8,
    /// Whether `payload` is written.
    pub(crate) has_payload: bool,
    pub(crate) payload: u64,
}

/// Work for the encoder.
pub(crate) enum Job {
    /// Bytes already encoded (strings, types, sites, roots, meta, end).
    Raw(Kind, Vec<u8>),
    Nodes(Vec<NodeRec>),
    Edges(Vec<EdgeRec>),
}

/// A compressed block, and the buffer of its job for reuse.
pub(crate) struct Done {
    pub(crate) kind: Kind,
    pub(crate) raw_len: u32,
    pub(crate) stored: Vec<u8>,
    pub(crate) recycled: Job,
}

/// Varint coding (with the delta state of nodes and edges) and compression.
pub(crate) struct Encoder {
    compressor: zstd::bulk::Compressor<'static>,
    raw: Vec<u8>,
    last_addr: u64,
    last_from: i64,
    last_to: i64,
    last_index: i64,
}

impl Encoder {
    pub(crate) fn new(level: i32) -> Result<Encoder> {
        Ok(Encoder {
            compressor: zstd::bulk::Compressor::new(level)
                .map_err(HeapError::io("starting the zstd compressor"))?,
            raw: Vec::new(),
            last_addr: 0,
            last_from: 0,
            last_to: 0,
            last_index: 0,
        })
    }

    pub(crate) fn run(&mut self, mut job: Job) -> Result<Done> {
        let kind;
        self.raw.clear();
        let raw: &[u8] = match &mut job {
            Job::Raw(k, bytes) => {
                kind = *k;
                bytes
            }
            Job::Nodes(nodes) => {
                kind = Kind::Nodes;
                self.raw.reserve(nodes.len() * 12);
                for n in nodes.iter() {
                    let delta = n.addr.wrapping_sub(self.last_addr) as i64;
                    self.last_addr = n.addr;
                    put_varint(&mut self.raw, zig(delta));
                    put_varint(&mut self.raw, u64::from(n.ty));
                    put_varint(&mut self.raw, n.size);
                    put_varint(&mut self.raw, u64::from(n.site));
                    self.raw.push(n.flags);
                    put_varint(&mut self.raw, u64::from(n.preview));
                    if n.flags & NodeFlags::VALUE_HASH.0 != 0 {
                        self.raw.extend_from_slice(&n.value_hash.to_le_bytes());
                    }
                }
                &self.raw
            }
            Job::Edges(edges) => {
                kind = Kind::Edges;
                self.raw.reserve(edges.len() * 6);
                // Version 2: targets and indices are coded against the previous ones, plus
                // one: a walker numbers new objects in order, so a list's elements cost a
                // zero byte each (and compress to almost nothing).
                for e in edges.iter() {
                    let from = i64::from(e.from);
                    let to = i64::from(e.to);
                    put_varint(&mut self.raw, zig(from - self.last_from));
                    put_varint(&mut self.raw, zig(to - self.last_to - 1));
                    self.last_from = from;
                    self.last_to = to;
                    self.raw.push(e.tag);
                    if e.has_payload {
                        if e.tag & 0x7F == Tag::Index as u8 {
                            let i = e.payload as i64;
                            put_varint(
                                &mut self.raw,
                                zig(i.wrapping_sub(self.last_index).wrapping_sub(1)),
                            );
                            self.last_index = i;
                        } else {
                            put_varint(&mut self.raw, e.payload);
                        }
                    }
                }
                &self.raw
            }
        };
        let stored = self
            .compressor
            .compress(raw)
            .map_err(HeapError::io("compressing a heap block"))?;
        let raw_len = raw.len() as u32;
        match &mut job {
            Job::Raw(_, b) => b.clear(),
            Job::Nodes(n) => n.clear(),
            Job::Edges(e) => e.clear(),
        }
        Ok(Done {
            kind,
            raw_len,
            stored,
            recycled: job,
        })
    }
}

/// Blocks in flight at most (each about 1 MiB raw): bounds the memory when the encoder lags.
const IN_FLIGHT: usize = 8;

/// The encoder, on its own thread when one could be started.
pub(crate) enum Pipeline {
    Threaded {
        jobs: Option<SyncSender<Job>>,
        done: Receiver<Result<Done>>,
        pending: usize,
    },
    Inline(Box<Encoder>),
}

impl Pipeline {
    pub(crate) fn new(level: i32) -> Result<Pipeline> {
        let mut encoder = Encoder::new(level)?;
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job>(IN_FLIGHT);
        let (done_tx, done) = std::sync::mpsc::channel::<Result<Done>>();
        let spawned = std::thread::Builder::new()
            .name("memlens-heap-encoder".into())
            .spawn(move || worker(&mut encoder, job_rx, done_tx));
        Ok(match spawned {
            Ok(_) => Pipeline::Threaded {
                jobs: Some(jobs),
                done,
                pending: 0,
            },
            Err(_) => Pipeline::Inline(Box::new(Encoder::new(level)?)),
        })
    }

    /// Submits a job; returns the blocks finished so far (in order) through `sink`.
    pub(crate) fn submit(
        &mut self,
        job: Job,
        sink: &mut dyn FnMut(Done) -> Result<()>,
    ) -> Result<()> {
        match self {
            Pipeline::Inline(enc) => sink(enc.run(job)?),
            Pipeline::Threaded {
                jobs,
                done,
                pending,
            } => {
                let sender = jobs.as_ref().ok_or_else(stopped)?;
                sender.send(job).map_err(|_| stopped())?;
                *pending += 1;
                loop {
                    match done.try_recv() {
                        Ok(d) => {
                            *pending -= 1;
                            sink(d?)?;
                        }
                        Err(TryRecvError::Empty) => return Ok(()),
                        Err(TryRecvError::Disconnected) => return Err(stopped()),
                    }
                }
            }
        }
    }

    /// Waits for every submitted block.
    pub(crate) fn drain(&mut self, sink: &mut dyn FnMut(Done) -> Result<()>) -> Result<()> {
        if let Pipeline::Threaded { done, pending, .. } = self {
            while *pending > 0 {
                let d = done.recv().map_err(|_| stopped())?;
                *pending -= 1;
                sink(d?)?;
            }
        }
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Closing the job channel ends the worker; results still queued are dropped with it.
        if let Pipeline::Threaded { jobs, .. } = self {
            jobs.take();
        }
    }
}

fn stopped() -> HeapError {
    HeapError::Build("the heap snapshot encoder stopped".into())
}

fn worker(encoder: &mut Encoder, jobs: Receiver<Job>, done: Sender<Result<Done>>) {
    for job in jobs {
        let r = encoder.run(job);
        let failed = r.is_err();
        if done.send(r).is_err() || failed {
            return;
        }
    }
}
