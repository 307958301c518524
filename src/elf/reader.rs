//! A bounded view of an ELF file: header, program headers and section headers parsed by
//! goblin's low-level parsers, plus the few lookups the analysis needs (segments, sections,
//! the dynamic table, notes, strings).
//!
//! Invariants: every offset and size read from the file is checked against the input before
//! use; every list built from the file is capped (by the input's length through goblin's own
//! checks, or by the explicit limits below); no lookup is worse than linear in the input.
//! goblin's higher-level `Elf::parse` and `Dynamic::parse` are deliberately not used: they parse
//! far more than needed (symbols, relocations) and the latter maps every dynamic entry over
//! every program header, which hostile input can make quadratic.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};
use goblin::elf::section_header::SectionHeader;

/// At most this many entries of one kind (DT_NEEDED, RPATH parts, ...) are kept.
pub(crate) const MAX_ENTRIES: usize = 1024;
/// Strings (names, paths) longer than this are cut: the kernel's PATH_MAX.
pub(crate) const MAX_STRING: usize = 4096;

/// A parsed ELF file over its bytes.
pub(crate) struct ElfFile<'a> {
    /// The whole file.
    pub data: &'a [u8],
    /// ELFCLASS64.
    pub is64: bool,
    /// Little-endian.
    pub le: bool,
    /// The header.
    pub header: Header,
    /// Program headers (required: a file without valid ones cannot be executed).
    pub phdrs: Vec<ProgramHeader>,
    /// Section headers; empty when absent or invalid (the kernel ignores them).
    pub shdrs: Vec<SectionHeader>,
}

/// The dynamic-table facts the analysis uses.
#[derive(Debug, Default)]
pub(crate) struct DynamicInfo {
    /// Whether the file has a PT_DYNAMIC segment at all.
    pub present: bool,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    pub soname: Option<String>,
    pub flags_1: u64,
}

/// `DF_1_PIE` in `DT_FLAGS_1`.
pub(crate) const DF_1_PIE: u64 = 0x0800_0000;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const DT_FLAGS_1: u64 = 0x6fff_fffb;

impl<'a> ElfFile<'a> {
    /// Parses the headers. Errors are one-line reasons for [`super::Error::Malformed`].
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        if data.len() < header::SIZEOF_IDENT {
            return Err(format!(
                "truncated: {} bytes, shorter than the ELF identification",
                data.len()
            ));
        }
        let is64 = match data[header::EI_CLASS] {
            header::ELFCLASS32 => false,
            header::ELFCLASS64 => true,
            c => return Err(format!("invalid ELF class {c}")),
        };
        let le = match data[header::EI_DATA] {
            header::ELFDATA2LSB => true,
            header::ELFDATA2MSB => false,
            d => return Err(format!("invalid ELF data encoding {d}")),
        };
        let ehsize = if is64 {
            header::header64::SIZEOF_EHDR
        } else {
            header::header32::SIZEOF_EHDR
        };
        if data.len() < ehsize {
            return Err(format!(
                "truncated: {} bytes, shorter than the {ehsize}-byte ELF header",
                data.len()
            ));
        }
        let header = goblin::elf::Elf::parse_header(data).map_err(|e| one_line(&e))?;
        let ctx = Ctx::new(
            if is64 {
                Container::Big
            } else {
                Container::Little
            },
            if le { Endian::Little } else { Endian::Big },
        );
        let phentsize = if is64 {
            program_header::program_header64::SIZEOF_PHDR
        } else {
            program_header::program_header32::SIZEOF_PHDR
        };
        if header.e_phnum > 0 && usize::from(header.e_phentsize) != phentsize {
            return Err(format!(
                "program header entry size {} (expected {phentsize})",
                header.e_phentsize
            ));
        }
        let phoff = usize::try_from(header.e_phoff)
            .map_err(|_| format!("program header offset {:#x} too large", header.e_phoff))?;
        let phnum = usize::from(header.e_phnum);
        let fits = phnum
            .checked_mul(phentsize)
            .and_then(|n| n.checked_add(phoff))
            .is_some_and(|end| end <= data.len());
        if !fits {
            return Err(format!(
                "truncated: {phnum} program headers at offset {phoff:#x} extend past the end of \
                 the {}-byte file",
                data.len()
            ));
        }
        let phdrs = if phnum == 0 {
            Vec::new()
        } else {
            ProgramHeader::parse(data, phoff, phnum, ctx).map_err(|e| one_line(&e))?
        };
        let shdrs = Self::section_headers(data, &header, ctx, is64).unwrap_or_default();
        Ok(ElfFile {
            data,
            is64,
            le,
            header,
            phdrs,
            shdrs,
        })
    }

    fn section_headers(
        data: &[u8],
        header: &Header,
        ctx: Ctx,
        is64: bool,
    ) -> Option<Vec<SectionHeader>> {
        let shentsize = if is64 { 64 } else { 40 };
        if header.e_shoff == 0 || usize::from(header.e_shentsize) != shentsize {
            return None;
        }
        let shoff = usize::try_from(header.e_shoff).ok()?;
        if shoff >= data.len() {
            return None;
        }
        SectionHeader::parse(data, shoff, usize::from(header.e_shnum), ctx).ok()
    }

    /// The bytes of `len` at `offset`, when inside the file.
    pub fn bytes(&self, offset: u64, len: u64) -> Option<&'a [u8]> {
        let start = usize::try_from(offset).ok()?;
        let len = usize::try_from(len).ok()?;
        let end = start.checked_add(len)?;
        self.data.get(start..end)
    }

    /// The file bytes of a segment (`p_filesz` at `p_offset`).
    pub fn segment(&self, ph: &ProgramHeader) -> Option<&'a [u8]> {
        self.bytes(ph.p_offset, ph.p_filesz)
    }

    /// Maps `len` bytes at virtual address `vaddr` to their file bytes through the PT_LOAD
    /// segments.
    pub fn at_vaddr(&self, vaddr: u64, len: u64) -> Option<&'a [u8]> {
        self.phdrs
            .iter()
            .filter(|ph| ph.p_type == program_header::PT_LOAD)
            .find_map(|ph| {
                let rel = vaddr.checked_sub(ph.p_vaddr)?;
                if rel.checked_add(len)? > ph.p_filesz {
                    return None;
                }
                self.bytes(ph.p_offset.checked_add(rel)?, len)
            })
    }

    /// Like [`Self::at_vaddr`] but returns everything from `vaddr` to the end of its segment's
    /// file bytes, capped at `max`.
    pub fn rest_at_vaddr(&self, vaddr: u64, max: u64) -> Option<&'a [u8]> {
        self.phdrs
            .iter()
            .filter(|ph| ph.p_type == program_header::PT_LOAD)
            .find_map(|ph| {
                let rel = vaddr.checked_sub(ph.p_vaddr)?;
                let avail = ph.p_filesz.checked_sub(rel)?;
                self.bytes(ph.p_offset.checked_add(rel)?, avail.min(max))
            })
    }

    /// The contents of the section called `name`, when present and inside the file.
    pub fn section(&self, name: &str) -> Option<&'a [u8]> {
        // SHN_XINDEX: the real index is in the first section header's sh_link.
        let index = match self.header.e_shstrndx {
            0xffff => self.shdrs.first()?.sh_link as usize,
            i => usize::from(i),
        };
        let names = self.shdrs.get(index)?;
        let names = self.bytes(names.sh_offset, names.sh_size)?;
        self.shdrs.iter().find_map(|sh| {
            let n = cstr(names, sh.sh_name)?;
            if n != name.as_bytes() || sh.sh_type == goblin::elf::section_header::SHT_NOBITS {
                return None;
            }
            self.bytes(sh.sh_offset, sh.sh_size)
        })
    }

    /// PT_INTERP's string, when there is one.
    pub fn interpreter(&self) -> Option<Option<String>> {
        let ph = self
            .phdrs
            .iter()
            .find(|ph| ph.p_type == program_header::PT_INTERP)?;
        Some(self.segment(ph).and_then(|b| cstr(b, 0)).map(lossy))
    }

    /// Reads a word of the file's class and byte order at `off` in `b`.
    pub fn word(&self, b: &[u8], off: usize) -> Option<u64> {
        if self.is64 {
            read_u64(b, off, self.le)
        } else {
            read_u32(b, off, self.le).map(u64::from)
        }
    }

    /// The dynamic table's needed libraries, search paths, soname and flags.
    pub fn dynamic(&self) -> DynamicInfo {
        let mut info = DynamicInfo::default();
        let Some(ph) = self
            .phdrs
            .iter()
            .find(|ph| ph.p_type == program_header::PT_DYNAMIC)
        else {
            return info;
        };
        info.present = true;
        let Some(table) = self.segment(ph) else {
            return info;
        };
        let step = if self.is64 { 16 } else { 8 };
        let mut entries = Vec::new();
        let (mut strtab, mut strsz) = (None, None);
        for chunk in table.chunks_exact(step) {
            let (Some(tag), Some(val)) = (self.word(chunk, 0), self.word(chunk, step / 2)) else {
                break;
            };
            match tag {
                DT_NULL => break,
                DT_STRTAB => strtab = Some(val),
                DT_STRSZ => strsz = Some(val),
                DT_FLAGS_1 => info.flags_1 = val,
                DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH
                    if entries.len() < 4 * MAX_ENTRIES =>
                {
                    entries.push((tag, val))
                }
                _ => {}
            }
        }
        let strings = strtab
            .and_then(|addr| match strsz {
                Some(sz) => self.at_vaddr(addr, sz),
                None => self.rest_at_vaddr(addr, u64::MAX),
            })
            .or_else(|| self.section(".dynstr"))
            .unwrap_or_default();
        for (tag, val) in entries {
            let Some(s) = usize::try_from(val).ok().and_then(|o| cstr(strings, o)) else {
                continue;
            };
            let s = lossy(s);
            match tag {
                DT_NEEDED if info.needed.len() < MAX_ENTRIES => info.needed.push(s),
                DT_SONAME => info.soname = Some(s),
                DT_RPATH => push_paths(&mut info.rpath, &s),
                DT_RUNPATH => push_paths(&mut info.runpath, &s),
                _ => {}
            }
        }
        info
    }

    /// Calls `f(name, type, desc)` for every note in PT_NOTE segments, stopping when it
    /// returns true. Returns whether it did.
    pub fn any_note(&self, mut f: impl FnMut(&[u8], u32, &[u8]) -> bool) -> bool {
        for ph in &self.phdrs {
            if ph.p_type != program_header::PT_NOTE {
                continue;
            }
            let Some(seg) = self.segment(ph) else {
                continue;
            };
            let align = if ph.p_align == 8 { 8 } else { 4 };
            let mut off = 0usize;
            while off + 12 <= seg.len() {
                let (Some(namesz), Some(descsz), Some(ty)) = (
                    read_u32(seg, off, self.le),
                    read_u32(seg, off + 4, self.le),
                    read_u32(seg, off + 8, self.le),
                ) else {
                    break;
                };
                let name_start = off + 12;
                let Some(desc_start) = usize::try_from(namesz)
                    .ok()
                    .and_then(|n| align_up(name_start.checked_add(n)?, align))
                else {
                    break;
                };
                let Some(next) = usize::try_from(descsz)
                    .ok()
                    .and_then(|n| align_up(desc_start.checked_add(n)?, align))
                else {
                    break;
                };
                let (Some(name), Some(desc)) = (
                    seg.get(name_start..name_start + namesz as usize),
                    seg.get(desc_start..desc_start + descsz as usize),
                ) else {
                    break;
                };
                let name = name.strip_suffix(b"\0").unwrap_or(name);
                if f(name, ty, desc) {
                    return true;
                }
                off = next;
            }
        }
        false
    }
}

fn align_up(n: usize, align: usize) -> Option<usize> {
    Some(n.checked_add(align - 1)? & !(align - 1))
}

fn push_paths(out: &mut Vec<String>, list: &str) {
    for p in list.split(':').filter(|p| !p.is_empty()) {
        if out.len() < MAX_ENTRIES {
            out.push(p.to_string());
        }
    }
}

/// The NUL-terminated string at `off` in `b` (at most [`MAX_STRING`] bytes, without the NUL).
pub(crate) fn cstr(b: &[u8], off: usize) -> Option<&[u8]> {
    let rest = b.get(off..)?;
    let rest = &rest[..rest.len().min(MAX_STRING + 1)];
    let end = rest.iter().position(|&c| c == 0)?;
    Some(&rest[..end])
}

/// Bytes as a string, invalid UTF-8 replaced.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A u32 at `off` in `b`.
pub(crate) fn read_u32(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

/// A u64 at `off` in `b`.
pub(crate) fn read_u64(b: &[u8], off: usize, le: bool) -> Option<u64> {
    let a: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(if le {
        u64::from_le_bytes(a)
    } else {
        u64::from_be_bytes(a)
    })
}

/// A goblin error as one line.
fn one_line(e: &goblin::error::Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").to_string()
}
