//! Native allocations: the malloc family and anonymous `mmap`, seen by rewriting the GOT slots
//! through which every loaded object (but memlens itself, the dynamic loader, libc and the vDSO)
//! calls them, and again for libraries loaded later through `dlopen`.
//!
//! Sizes come from `malloc_usable_size` on both allocation and free so that the live total
//! stays balanced without a table of every block. Anonymous maps are kept in a small table
//! (a map is a system call anyway) so partial `munmap`s subtract what they remove.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

use memlens_format::Domain;

use super::native_marks;
use crate::counters::{GIL, SHARED};
use crate::{recorder, sampler};

unsafe extern "C" {
    fn malloc_usable_size(ptr: *mut c_void) -> usize;
}

/// Counts (and maybe records) a native block or map of `size` bytes at `p` (not null). The
/// caller has seen that the hooks count.
#[inline(always)]
fn on_alloc(p: *mut c_void, domain: Domain, size: usize) {
    let size = size as i64;
    let live = SHARED.native_live.fetch_add(size, Relaxed) + size;
    SHARED.native_allocated.fetch_add(size as u64, Relaxed);
    SHARED.native_allocations.fetch_add(1, Relaxed);
    let total = live + crate::counters::python_live();
    if let Some(rec) = recorder::current()
        && (rec.exact || sampler::native_should_sample(size as u64, rec.sample_rate))
    {
        super::record_alloc(rec, p as usize, size as u64, domain);
    } // After the allocation is recorded, so the peak set includes it.
    if total > SHARED.peak.load(Relaxed) {
        super::new_peak(total);
    }
    super::lower_python_room(live);
}

/// Subtracts (and maybe records the free of) `size` counted bytes at `p`. The caller has seen
/// that the hooks count.
#[inline(always)]
fn on_free(p: *mut c_void, size: usize) {
    SHARED.native_live.fetch_sub(size as i64, Relaxed);
    if super::sampled::maybe(p as usize) {
        super::record_free(p as usize);
    }
}

/// A block of the malloc family was allocated: counted (and marked) unless it cannot be
/// marked, so that its free is subtracted exactly once (see [`native_marks`]).
#[inline(always)]
fn on_malloc(p: *mut c_void) {
    if p.is_null() || !GIL.active.load(Relaxed) || !native_marks::mark(p as usize) {
        return;
    }
    on_alloc(p, Domain::Native, usable(p));
}

/// A block of the malloc family is about to be freed: subtracted (and its free recorded) only
/// if it was counted. Blocks allocated before tracking started were never marked.
#[inline(always)]
fn on_malloc_free(p: *mut c_void) {
    if !GIL.active.load(Relaxed) || !native_marks::unmark(p as usize) {
        return;
    }
    on_free(p, usable(p));
}

fn usable(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else {
        // SAFETY: p is a live block from the C allocator.
        unsafe { malloc_usable_size(p) }
    }
}

unsafe extern "C" fn hk_malloc(size: usize) -> *mut c_void {
    // SAFETY: the real malloc, reached through memlens's own (unpatched) GOT.
    let p = unsafe { libc::malloc(size) };
    on_malloc(p);
    p
}

unsafe extern "C" fn hk_calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: the real calloc.
    let p = unsafe { libc::calloc(n, size) };
    on_malloc(p);
    p
}

unsafe extern "C" fn hk_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // The old block is unmarked, subtracted and its free recorded before the call: once
    // realloc returns, its address may already be another thread's new block, whose record
    // must come after this free's.
    let counted = !ptr.is_null() && GIL.active.load(Relaxed) && native_marks::unmark(ptr as usize);
    let old = if counted { usable(ptr) } else { 0 };
    if counted {
        on_free(ptr, old);
    }
    // SAFETY: the real realloc with the caller's arguments.
    let p = unsafe { libc::realloc(ptr, size) };
    if p.is_null() && size != 0 {
        // Failed (out of memory): the old block stays; count and record it again.
        if counted && native_marks::mark(ptr as usize) {
            on_alloc(ptr, Domain::Native, old);
        }
        return p;
    }
    on_malloc(p);
    p
}

unsafe extern "C" fn hk_free(ptr: *mut c_void) {
    if !ptr.is_null() {
        on_malloc_free(ptr);
    }
    // SAFETY: the real free with the caller's pointer.
    unsafe { libc::free(ptr) }
}

unsafe extern "C" fn hk_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: the real posix_memalign with the caller's arguments.
    let rc = unsafe { libc::posix_memalign(out, align, size) };
    if rc == 0 {
        // SAFETY: on success *out holds the new block.
        let p = unsafe { *out };
        on_malloc(p);
    }
    rc
}

unsafe extern "C" fn hk_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // SAFETY: the real aligned_alloc.
    let p = unsafe { libc::aligned_alloc(align, size) };
    on_malloc(p);
    p
}

unsafe extern "C" fn hk_memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: the real memalign.
    let p = unsafe { libc::memalign(align, size) };
    on_malloc(p);
    p
}

unsafe extern "C" {
    fn valloc(size: usize) -> *mut c_void;
    fn pvalloc(size: usize) -> *mut c_void;
}

unsafe extern "C" fn hk_valloc(size: usize) -> *mut c_void {
    // SAFETY: the real valloc.
    let p = unsafe { valloc(size) };
    on_malloc(p);
    p
}

unsafe extern "C" fn hk_pvalloc(size: usize) -> *mut c_void {
    // SAFETY: the real pvalloc.
    let p = unsafe { pvalloc(size) };
    on_malloc(p);
    p
}

/// Anonymous maps made while tracking: start -> length.
static MAPS: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

unsafe extern "C" fn hk_mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: libc::off_t,
) -> *mut c_void {
    // SAFETY: the real mmap with the caller's arguments.
    let p = unsafe { libc::mmap(addr, len, prot, flags, fd, off) };
    if p != libc::MAP_FAILED && flags & libc::MAP_ANONYMOUS != 0 && GIL.active.load(Relaxed) {
        let len = (len + 4095) & !4095;
        let mut maps = recorder::lock(&MAPS);
        let removed = remove_range(&mut maps, p as usize, len);
        maps.insert(p as usize, len);
        drop(maps);
        if removed > 0 {
            on_free(p, removed);
        }
        on_alloc(p, Domain::Mmap, len);
    }
    p
}

unsafe extern "C" fn hk_munmap(addr: *mut c_void, len: usize) -> c_int {
    if GIL.active.load(Relaxed) {
        let mut maps = recorder::lock(&MAPS);
        let removed = remove_range(&mut maps, addr as usize, (len + 4095) & !4095);
        drop(maps);
        if removed > 0 {
            on_free(addr, removed);
        }
    }
    // SAFETY: the real munmap with the caller's arguments.
    unsafe { libc::munmap(addr, len) }
}

/// Removes `[start, start+len)` from the tracked maps, splitting partial overlaps; returns the
/// number of tracked bytes removed.
fn remove_range(maps: &mut BTreeMap<usize, usize>, start: usize, len: usize) -> usize {
    let end = start.saturating_add(len);
    let overlapping: Vec<(usize, usize)> = maps
        .range(..end)
        .rev()
        .take_while(|(s, l)| *s + *l > start)
        .map(|(s, l)| (*s, *l))
        .collect();
    let mut removed = 0;
    for (s, l) in overlapping {
        let e = s + l;
        maps.remove(&s);
        if s < start {
            maps.insert(s, start - s);
        }
        if e > end {
            maps.insert(end, e - end);
        }
        removed += e.min(end) - s.max(start);
    }
    removed
}

unsafe extern "C" fn hk_dlopen(file: *const c_char, flags: c_int) -> *mut c_void {
    // SAFETY: the real dlopen with the caller's arguments.
    let handle = unsafe { libc::dlopen(file, flags) };
    if !handle.is_null() && GIL.active.load(Relaxed) {
        super::guarded(patch_all);
    }
    handle
}

/// The functions we interpose, by symbol name.
fn hook_for(name: &[u8]) -> Option<usize> {
    Some(match name {
        b"malloc" => hk_malloc as *const () as usize,
        b"calloc" => hk_calloc as *const () as usize,
        b"realloc" => hk_realloc as *const () as usize,
        b"free" => hk_free as *const () as usize,
        b"posix_memalign" => hk_posix_memalign as *const () as usize,
        b"aligned_alloc" => hk_aligned_alloc as *const () as usize,
        b"memalign" => hk_memalign as *const () as usize,
        b"valloc" => hk_valloc as *const () as usize,
        b"pvalloc" => hk_pvalloc as *const () as usize,
        b"mmap" | b"mmap64" => hk_mmap as *const () as usize,
        b"munmap" => hk_munmap as *const () as usize,
        b"dlopen" => hk_dlopen as *const () as usize,
        b"_exit" | b"_Exit" => super::exit::hk_exit as *const () as usize,
        _ => return None,
    })
}

/// A GOT slot we rewrote and the value it held.
struct Patch {
    slot: usize,
    original: usize,
}

/// What the hooks rewrote, and which objects they have seen.
struct Patched {
    patches: Vec<Patch>,
    /// Objects already patched, as (load base, program headers): a `dlopen` patches only the
    /// objects it brought in (numpy's import loads dozens, and visiting every object again
    /// each time cost ~20M instructions).
    seen: Vec<(usize, usize)>,
    /// The loader's count of unloaded objects when `seen` was filled: when it moves, an
    /// address may now hold another object, so every object is visited again.
    subs: u64,
}

static PATCHED: Mutex<Patched> = Mutex::new(Patched {
    patches: Vec::new(),
    seen: Vec::new(),
    subs: 0,
});

/// [`PATCHED`] and [`MAPS`] held across a `fork` (see `crate::fork`), taken in that order
/// (the order `hk_dlopen` may nest them in: patching under `PATCHED` never maps through the
/// hooks, but keep the outer one first).
pub(crate) struct ForkHold(
    #[allow(dead_code)] std::sync::MutexGuard<'static, Patched>,
    #[allow(dead_code)] std::sync::MutexGuard<'static, BTreeMap<usize, usize>>,
);

/// Takes this module's locks for a `fork`; dropping the hold releases them.
pub(crate) fn hold_for_fork() -> ForkHold {
    ForkHold(recorder::lock(&PATCHED), recorder::lock(&MAPS))
}

const R_X86_64_GLOB_DAT: u32 = 6;
const R_X86_64_JUMP_SLOT: u32 = 7;

#[repr(C)]
struct Elf64Rela {
    offset: u64,
    info: u64,
    addend: i64,
}

#[repr(C)]
struct Elf64Dyn {
    tag: i64,
    val: u64,
}

#[repr(C)]
struct Elf64Sym {
    name: u32,
    info: u8,
    other: u8,
    shndx: u16,
    value: u64,
    size: u64,
}

/// Rewrites every matching GOT slot of every loaded object not patched yet (except the
/// excluded ones).
pub(crate) fn patch_all() {
    let mut patched = recorder::lock(&PATCHED);
    // SAFETY: dl_iterate_phdr calls `visit` for each loaded object while holding the loader's
    // lock, so objects cannot be unloaded under us; `data` is our state, used only inside.
    unsafe {
        libc::dl_iterate_phdr(Some(visit), &mut *patched as *mut Patched as *mut c_void);
    }
}

/// Puts every rewritten slot back.
pub(crate) fn unpatch_all() {
    let mut patched = recorder::lock(&PATCHED);
    patched.seen.clear();
    for p in patched.patches.drain(..).rev() {
        // SAFETY: slot is a GOT entry we wrote before; its object is still loaded (CPython never
        // unloads extension modules, and we re-patch after every dlopen).
        unsafe { write_slot(p.slot, p.original) };
    }
}

/// # Safety
/// `slot` must be a GOT entry of a loaded object.
unsafe fn write_slot(slot: usize, value: usize) -> bool {
    let page = slot & !4095;
    // SAFETY: the page holds a GOT (maybe RELRO, read-only): make it writable for one store.
    // It stays writable: GOTs without RELRO are writable anyway, and losing RELRO's hardening
    // on a patched object is the price of interposing without LD_PRELOAD. An aligned 8-byte
    // slot never straddles pages.
    unsafe {
        if libc::mprotect(
            page as *mut c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
        ) != 0
        {
            return false;
        }
        std::ptr::write_volatile(slot as *mut usize, value);
    }
    true
}

fn is_ours(info: &libc::dl_phdr_info) -> bool {
    let probe = patch_all as *const () as usize;
    let base = info.dlpi_addr as usize;
    // SAFETY: dlpi_phdr points at dlpi_phnum program headers of a loaded object.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    phdrs.iter().any(|ph| {
        ph.p_type == libc::PT_LOAD
            && (base + ph.p_vaddr as usize..base + (ph.p_vaddr + ph.p_memsz) as usize)
                .contains(&probe)
    })
}

unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: the loader passes a valid info and our state as data.
    let (info, patched) = unsafe { (&*info, &mut *(data as *mut Patched)) };
    if info.dlpi_subs != patched.subs {
        patched.subs = info.dlpi_subs;
        patched.seen.clear();
    }
    let key = (info.dlpi_addr as usize, info.dlpi_phdr as usize);
    if patched.seen.contains(&key) {
        return 0;
    }
    patched.seen.push(key);
    let name = if info.dlpi_name.is_null() {
        &b""[..]
    } else {
        // SAFETY: a NUL-terminated path owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
    };
    let file = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    if file.starts_with(b"ld-linux")
        || file.starts_with(b"linux-vdso")
        || file.starts_with(b"libc.so")
        || file.starts_with(b"libc-")
        || is_ours(info)
    {
        return 0;
    }
    // SAFETY: the object is loaded and its dynamic section is mapped.
    unsafe { patch_object(info, &mut patched.patches) };
    0
}

/// # Safety
/// `info` must describe a loaded object.
unsafe fn patch_object(info: &libc::dl_phdr_info, patches: &mut Vec<Patch>) {
    let base = info.dlpi_addr as usize;
    // SAFETY: as in is_ours.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let Some(dynamic) = phdrs.iter().find(|ph| ph.p_type == libc::PT_DYNAMIC) else {
        return;
    };
    let mut dyn_ptr = (base + dynamic.p_vaddr as usize) as *const Elf64Dyn;
    let (mut symtab, mut strtab, mut jmprel, mut pltrelsz, mut rela, mut relasz) =
        (0, 0, 0, 0, 0, 0);
    // glibc relocates the pointers of the in-memory dynamic section on x86-64; an unrelocated
    // one (below the load base) gets the base added.
    let fix = |p: u64| -> usize {
        if (p as usize) < base {
            base + p as usize
        } else {
            p as usize
        }
    };
    loop {
        // SAFETY: the dynamic array is terminated by DT_NULL.
        let d = unsafe { &*dyn_ptr };
        match d.tag as u64 {
            0 => break,
            5 => strtab = fix(d.val),       // DT_STRTAB
            6 => symtab = fix(d.val),       // DT_SYMTAB
            7 => rela = fix(d.val),         // DT_RELA
            8 => relasz = d.val as usize,   // DT_RELASZ
            2 => pltrelsz = d.val as usize, // DT_PLTRELSZ
            23 => jmprel = fix(d.val),      // DT_JMPREL
            _ => {}
        }
        // SAFETY: still inside the array.
        dyn_ptr = unsafe { dyn_ptr.add(1) };
    }
    if symtab == 0 || strtab == 0 {
        return;
    }
    for (table, size) in [(jmprel, pltrelsz), (rela, relasz)] {
        if table == 0 {
            continue;
        }
        let count = size / std::mem::size_of::<Elf64Rela>();
        // SAFETY: the relocation table of a loaded object, `count` entries long.
        let relas = unsafe { std::slice::from_raw_parts(table as *const Elf64Rela, count) };
        for r in relas {
            let kind = (r.info & 0xffff_ffff) as u32;
            if kind != R_X86_64_JUMP_SLOT && kind != R_X86_64_GLOB_DAT {
                continue;
            }
            let sym_index = (r.info >> 32) as usize;
            // SAFETY: the symbol index comes from the object's own relocation.
            let sym = unsafe { &*(symtab as *const Elf64Sym).add(sym_index) };
            // SAFETY: st_name indexes the object's string table.
            let name = unsafe { CStr::from_ptr((strtab + sym.name as usize) as *const c_char) };
            let Some(hook) = hook_for(name.to_bytes()) else {
                continue;
            };
            let slot = base + r.offset as usize;
            // SAFETY: slot is this object's GOT entry for the symbol.
            let current = unsafe { std::ptr::read_volatile(slot as *const usize) };
            if current == hook {
                continue;
            }
            // SAFETY: as above.
            if unsafe { write_slot(slot, hook) } {
                patches.push(Patch {
                    slot,
                    original: current,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_unmaps_split_regions() {
        let mut maps = BTreeMap::new();
        maps.insert(0x10000, 0x4000);
        assert_eq!(remove_range(&mut maps, 0x11000, 0x1000), 0x1000);
        assert_eq!(
            maps.into_iter().collect::<Vec<_>>(),
            vec![(0x10000, 0x1000), (0x12000, 0x2000)]
        );
    }

    #[test]
    fn unknown_ranges_remove_nothing() {
        let mut maps = BTreeMap::new();
        maps.insert(0x10000, 0x1000);
        assert_eq!(remove_range(&mut maps, 0x20000, 0x1000), 0);
        assert_eq!(maps.len(), 1);
    }
}
