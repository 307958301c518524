//! Go build info (`.go.buildinfo`, Go >= 1.13 layout): both the pointer form (Go < 1.18) and
//! the inline form (Go >= 1.18).
//!
//! The blob starts with the 14-byte magic `"\xff Go buildinf:"`, 16-byte aligned, then the
//! pointer size (byte 14) and flags (byte 15: bit 0 big-endian, bit 1 inline strings). Inline:
//! after the 32-byte header, two uvarint-length-prefixed strings (version, modinfo). Pointer
//! form: at offset 16 two pointers to Go string headers (data pointer, length), which are
//! mapped to file offsets through the PT_LOAD segments.
//!
//! Bounded: the blob is found in the `.go.buildinfo` section or, when section headers are
//! stripped, by a 16-byte-stride scan of the writable PT_LOAD segments (linear in the input).
//! Only the header and the two strings it names are read, each length checked against the
//! input before any allocation.

use std::collections::BTreeMap;

use goblin::elf::program_header::{PF_W, PT_LOAD};

use super::reader::{read_u32, read_u64, ElfFile};
use super::{GoBuildInfo, GoModule};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
/// Build info strings longer than this are refused (real ones are a few KiB).
const MAX_STRING: u64 = 16 << 20;

/// Finds and decodes the Go build info in an ELF image, if any.
pub(crate) fn parse(elf: &ElfFile<'_>) -> Option<GoBuildInfo> {
    let blob = find(elf)?;
    let (version, modinfo) = strings(elf, blob)?;
    Some(decode(&version, &modinfo))
}

/// The blob: from the magic to the end of its section or segment.
fn find<'a>(elf: &ElfFile<'a>) -> Option<&'a [u8]> {
    if let Some(sec) = elf.section(".go.buildinfo") {
        if sec.starts_with(MAGIC) && sec.len() >= HEADER_LEN {
            return Some(sec);
        }
    }
    elf.phdrs
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD && ph.p_flags & PF_W != 0)
        .find_map(|ph| {
            let seg = elf.segment(ph)?;
            // The blob is 16-byte aligned in memory; find the first aligned offset.
            let first = (16 - (ph.p_vaddr % 16) as usize) % 16;
            (first..seg.len().saturating_sub(HEADER_LEN - 1))
                .step_by(16)
                .find(|&i| seg[i..].starts_with(MAGIC))
                .map(|i| &seg[i..])
        })
}

/// The version and modinfo strings named by the blob.
fn strings(elf: &ElfFile<'_>, blob: &[u8]) -> Option<(String, Vec<u8>)> {
    let ptr_size = *blob.get(14)?;
    let flags = *blob.get(15)?;
    if flags & 2 != 0 {
        let rest = blob.get(HEADER_LEN..)?;
        let (version, rest) = varstring(rest)?;
        let (modinfo, _) = varstring(rest)?;
        return Some((
            String::from_utf8_lossy(version).into_owned(),
            modinfo.to_vec(),
        ));
    }
    let le = flags & 1 == 0;
    let word = |b: &[u8], off: usize| -> Option<u64> {
        match ptr_size {
            4 => read_u32(b, off, le).map(u64::from),
            8 => read_u64(b, off, le),
            _ => None,
        }
    };
    let ps = usize::from(ptr_size);
    let gostring = |addr: u64| -> Option<&[u8]> {
        let hdr = elf.at_vaddr(addr, 2 * u64::from(ptr_size))?;
        let (data, len) = (word(hdr, 0)?, word(hdr, ps)?);
        if len > MAX_STRING {
            return None;
        }
        elf.at_vaddr(data, len)
    };
    let version = gostring(word(blob, 16)?)?;
    let modinfo = gostring(word(blob, 16 + ps)?).unwrap_or_default();
    Some((
        String::from_utf8_lossy(version).into_owned(),
        modinfo.to_vec(),
    ))
}

/// A uvarint-length-prefixed string at the start of `b`, and the rest.
fn varstring(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if len > MAX_STRING {
                return None;
            }
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            return Some((b.get(start..end)?, &b[end..]));
        }
    }
    None
}

/// Decodes the modinfo text (`path`, `mod`, `dep`, `=>`, `build` lines).
pub(crate) fn decode(version: &str, modinfo: &[u8]) -> GoBuildInfo {
    let mut info = GoBuildInfo {
        version: version.to_string(),
        path: None,
        main: None,
        deps: Vec::new(),
        settings: BTreeMap::new(),
    };
    // Go wraps modinfo in two 16-byte sentinels; the text ends with a newline before the second.
    let text = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    };
    let text = String::from_utf8_lossy(text);
    // Which module an `=>` line replaces: None, the main module, or the last dep.
    let mut last_is_main = None;
    for line in text.lines() {
        let Some((tag, rest)) = line.split_once('\t') else {
            continue;
        };
        match tag {
            "path" => info.path = Some(rest.to_string()),
            "mod" => {
                info.main = Some(module(rest));
                last_is_main = Some(true);
            }
            "dep" => {
                info.deps.push(module(rest));
                last_is_main = Some(false);
            }
            "=>" => {
                let target = match last_is_main {
                    Some(true) => info.main.as_mut(),
                    Some(false) => info.deps.last_mut(),
                    None => None,
                };
                if let Some(m) = target {
                    m.replace = Some(Box::new(module(rest)));
                }
            }
            "build" => {
                if let Some((k, v)) = setting(rest) {
                    info.settings.insert(k, v);
                }
            }
            _ => {}
        }
    }
    info
}

fn module(fields: &str) -> GoModule {
    let mut f = fields.split('\t');
    let path = f.next().unwrap_or_default().to_string();
    let version = f.next().unwrap_or_default().to_string();
    let sum = f.next().filter(|s| !s.is_empty()).map(str::to_string);
    GoModule {
        path,
        version,
        sum,
        replace: None,
    }
}

/// `KEY=VALUE` where either side may be a Go-quoted string.
fn setting(s: &str) -> Option<(String, String)> {
    let (key, rest) = if s.starts_with('"') {
        let (k, used) = unquote_prefix(s)?;
        (k, s[used..].strip_prefix('=')?)
    } else {
        let (k, v) = s.split_once('=')?;
        (k.to_string(), v)
    };
    let value = if rest.starts_with('"') {
        match unquote_prefix(rest) {
            Some((v, used)) if used == rest.len() => v,
            _ => rest.to_string(),
        }
    } else {
        rest.to_string()
    };
    Some((key, value))
}

/// Decodes the Go double-quoted string literal at the start of `s`; returns it and the number
/// of bytes consumed (quotes included).
pub(crate) fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix('"')?;
    let mut out = Vec::new();
    let mut it = body.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((String::from_utf8_lossy(&out).into_owned(), i + 2)),
            '\\' => {
                let (_, e) = it.next()?;
                let simple = match e {
                    'a' => Some(7u8),
                    'b' => Some(8),
                    'f' => Some(12),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(11),
                    '\\' => Some(b'\\'),
                    '\'' => Some(b'\''),
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(b) = simple {
                    out.push(b);
                    continue;
                }
                let (digits, radix) = match e {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    '0'..='7' => (2, 8),
                    _ => return None,
                };
                let mut v: u32 = if radix == 8 { e.to_digit(8)? } else { 0 };
                for _ in 0..digits {
                    let (_, d) = it.next()?;
                    v = v.checked_mul(radix)?.checked_add(d.to_digit(radix)?)?;
                }
                match e {
                    'x' | '0'..='7' => out.push(u8::try_from(v).ok()?),
                    _ => {
                        let ch = char::from_u32(v)?;
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                }
            }
            '\n' => return None,
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &[u8; 16] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8; 16] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

    fn wrapped(text: &str) -> Vec<u8> {
        [START.as_slice(), text.as_bytes(), END.as_slice()].concat()
    }

    const MODINFO: &str = "path\texample.com/server\n\
        mod\texample.com/server\t(devel)\t\n\
        dep\tgolang.org/x/net\tv0.1.0\th1:abc=\n\
        =>\t../net\t\t\n\
        build\t-compiler=gc\n\
        build\t-ldflags=\"-s -w -X \\\"main.v=1\\\"\"\n\
        build\t-tags=netgo,osusergo\n\
        build\tCGO_ENABLED=1\n\
        build\t\"weird key\"=\"tab\\there\"\n\
        build\tvcs.revision=0123abc\n";

    #[test]
    fn decodes_modinfo_with_sentinels_and_quoting() {
        let info = decode("go1.19.8", &wrapped(MODINFO));
        assert_eq!(info.version, "go1.19.8");
        assert_eq!(info.path.as_deref(), Some("example.com/server"));
        let main = info.main.expect("main module");
        assert_eq!(
            (main.path.as_str(), main.version.as_str()),
            ("example.com/server", "(devel)")
        );
        assert_eq!(main.sum, None);
        assert_eq!(info.deps.len(), 1);
        assert_eq!(info.deps[0].sum.as_deref(), Some("h1:abc="));
        assert_eq!(
            info.deps[0].replace.as_ref().map(|r| r.path.as_str()),
            Some("../net")
        );
        let s = &info.settings;
        assert_eq!(s["-ldflags"], "-s -w -X \"main.v=1\"");
        assert_eq!(s["-tags"], "netgo,osusergo");
        assert_eq!(s["CGO_ENABLED"], "1");
        assert_eq!(s["weird key"], "tab\there");
        assert_eq!(s["vcs.revision"], "0123abc");
        assert_eq!(s["-compiler"], "gc");
    }

    #[test]
    fn unquotes_go_escapes() {
        let (s, used) = unquote_prefix(r#""a\x41\101\u00e9\U0001F600\\\"z"rest"#).unwrap();
        assert_eq!(s, "aAAé😀\\\"z");
        assert_eq!(&r#""a\x41\101\u00e9\U0001F600\\\"z"rest"#[used..], "rest");
        assert_eq!(unquote_prefix(r#""unterminated"#), None);
        assert_eq!(unquote_prefix(r#""bad \q""#), None);
        assert_eq!(unquote_prefix(r#""\xZZ""#), None);
    }

    #[test]
    fn modinfo_without_sentinels_and_garbage_lines() {
        let info = decode(
            "go1.20",
            b"path\tx\nnot a line\nbuild\tnoequals\n=>\torphan\n\xff\xfe",
        );
        assert_eq!(info.path.as_deref(), Some("x"));
        assert!(info.settings.is_empty());
        assert!(info.main.is_none());
    }

    #[test]
    fn varstring_bounds() {
        assert_eq!(
            varstring(&[3, b'a', b'b', b'c', 9]),
            Some((&b"abc"[..], &[9u8][..]))
        );
        assert_eq!(varstring(&[4, b'a']), None);
        assert_eq!(varstring(&[0xff; 12]), None);
        assert_eq!(varstring(&[]), None);
    }
}
