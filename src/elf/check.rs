//! Whether an analysed executable can start in a root filesystem, and if not, why and how to
//! fix it.
//!
//! The checks mirror what the kernel and the dynamic loader do at `execve`: the platform must
//! match (else "exec format error"), a `#!` interpreter or ELF program interpreter must exist
//! (else the misleading "no such file or directory" for a file that is there), and the loader
//! must find every needed library.

use super::ldso::{self, RootFs};
use super::{
    analyze, analyze_library, Analysis, Format, ImageRoot, Libc, Linkage, Platform, Problem,
};

/// How deep `#!` interpreters are followed (the kernel allows a few levels).
const MAX_SCRIPT_DEPTH: usize = 4;

/// The `PATH` a fresh container has, for `#!/usr/bin/env NAME`.
const DEFAULT_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Decides whether `analysis` can start as the entrypoint inside `root`, on `platform` when
/// given. Returns every problem found; an empty list means it can start.
///
/// `name` is how the binary is called in messages (e.g. `server`). When it is an absolute path
/// it is also taken as the binary's location inside `root`, which resolves `$ORIGIN` in its
/// RPATH/RUNPATH.
pub fn check(
    name: &str,
    analysis: &Analysis,
    root: &dyn RootFs,
    platform: Option<&Platform>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_into(name, analysis, root, platform, 0, &mut problems);
    problems
}

/// Whether `analysis` can start in an empty (`scratch`) image on its own platform.
pub fn runs_in_empty_image(analysis: &Analysis) -> bool {
    check("binary", analysis, &ImageRoot::default(), None).is_empty()
}

fn check_into(
    name: &str,
    a: &Analysis,
    root: &dyn RootFs,
    platform: Option<&Platform>,
    depth: usize,
    problems: &mut Vec<Problem>,
) {
    match a.format {
        Format::Elf => check_elf(name, a, root, platform, problems),
        Format::Script => check_script(name, a, root, platform, depth, problems),
    }
}

fn check_elf(
    name: &str,
    a: &Analysis,
    root: &dyn RootFs,
    platform: Option<&Platform>,
    problems: &mut Vec<Problem>,
) {
    match (&a.platform, platform) {
        (None, _) => problems.push(Problem {
            kind: "unknown-machine",
            message: format!(
                "`{name}` is an ELF {}-bit {}-endian file for a machine imgbuild does not know, \
                 so it cannot tell whether it starts on the image's platform: build it for a \
                 supported one (linux/amd64, linux/arm64, linux/arm/v7, linux/386, \
                 linux/ppc64le, linux/s390x, linux/riscv64)",
                a.bits.unwrap_or(0),
                a.endian.unwrap_or("?")
            ),
        }),
        (Some(have), Some(want)) if !platform_matches(have, want) => problems.push(Problem {
            kind: "wrong-platform",
            message: format!(
                "`{name}` is built for {have} but the image is for {want}: it would fail with \
                 \"exec format error\"; {}",
                rebuild_for(a, want)
            ),
        }),
        _ => {}
    }
    if a.linkage != Some(Linkage::Dynamic) {
        return;
    }
    let interp = a.interpreter.as_deref().unwrap_or_default();
    let loader = root.read(interp);
    if loader.is_none() {
        let needs = if a.needed.is_empty() {
            String::new()
        } else {
            format!(", needs {}", a.needed.join(", "))
        };
        problems.push(Problem {
            kind: "missing-interpreter",
            message: format!(
                "`{name}` is dynamically linked (interpreter {interp}{needs}), which this image \
                 does not contain, so it would fail with \"no such file or directory\": {}",
                static_fix(a)
            ),
        });
        return;
    }
    let loader = loader.and_then(|d| analyze_library(&d).ok());
    let arch = |p: &Option<Platform>| p.as_ref().map(|p| p.architecture.clone());
    if loader
        .as_ref()
        .is_none_or(|l| arch(&l.platform) != arch(&a.platform) || l.bits != a.bits)
    {
        problems.push(Problem {
            kind: "missing-interpreter",
            message: format!(
                "`{name}` needs the program interpreter {interp}, but the file at that path in \
                 this image is not a dynamic loader for {}: replace it with the loader of the C \
                 library `{name}` was built against, or {}",
                a.platform
                    .as_ref()
                    .map_or_else(|| "this machine".into(), Platform::to_string),
                static_fix(a)
            ),
        });
        return;
    }
    // `$ORIGIN` is the directory of the executable's real path (symlinks resolved).
    let exe_path = name
        .starts_with('/')
        .then(|| root.real_path(name))
        .flatten();
    let closure = ldso::closure(root, a, exe_path.as_deref());
    for m in &closure.missing {
        let by = m
            .needed_by
            .as_deref()
            .map(|p| format!(" (needed by {p})"))
            .unwrap_or_default();
        let searched = if closure.searched.is_empty() {
            String::new()
        } else {
            format!("; searched {}", closure.searched.join(", "))
        };
        problems.push(Problem {
            kind: "missing-library",
            message: format!(
                "`{name}` needs {}{by}, which this image does not contain{searched}: add it to \
                 the image, or {}",
                m.name,
                static_fix(a)
            ),
        });
    }
}

/// Whether a binary for `have` runs on `want` (variant compared only when both name one).
fn platform_matches(have: &Platform, want: &Platform) -> bool {
    have.os == want.os
        && have.architecture == want.architecture
        && match (&have.variant, &want.variant) {
            (Some(h), Some(w)) => h == w,
            _ => true,
        }
}

/// How to rebuild for `want`.
fn rebuild_for(a: &Analysis, want: &Platform) -> String {
    if a.go.is_some() {
        let goarm = match want.variant.as_deref() {
            Some(v) if want.architecture == "arm" => {
                format!(" GOARM={}", v.trim_start_matches('v'))
            }
            _ => String::new(),
        };
        format!(
            "rebuild with GOOS={} GOARCH={}{goarm}, or build the image for {}",
            want.os,
            want.architecture,
            a.platform
                .as_ref()
                .map_or_else(String::new, Platform::to_string)
        )
    } else {
        format!(
            "cross-compile it for {want}, or build the image for {}",
            a.platform
                .as_ref()
                .map_or_else(String::new, Platform::to_string)
        )
    }
}

/// The fix for a dynamically linked binary: static rebuild or bundled libraries.
fn static_fix(a: &Analysis) -> String {
    if let Some(go) = &a.go {
        let cgo = go.settings.get("CGO_ENABLED").map(String::as_str);
        let external = go
            .settings
            .get("-ldflags")
            .is_some_and(|f| f.contains("-linkmode=external") || f.contains("-linkmode external"));
        return match (cgo, external) {
            (_, true) => "rebuild without -linkmode=external (and with CGO_ENABLED=0), or pass \
                          --bundle-libs"
                .into(),
            (Some("0"), _) => "rebuild with CGO_ENABLED=0 and without -buildmode=pie or \
                               -linkshared, or pass --bundle-libs"
                .into(),
            _ => {
                "rebuild with CGO_ENABLED=0 (or -tags netgo,osusergo), or pass --bundle-libs".into()
            }
        };
    }
    match a.libc {
        Some(Libc::Musl) => "link it statically (musl-gcc -static), or pass --bundle-libs".into(),
        _ => "link it statically (-static or -static-pie), or pass --bundle-libs".into(),
    }
}

fn check_script(
    name: &str,
    a: &Analysis,
    root: &dyn RootFs,
    platform: Option<&Platform>,
    depth: usize,
    problems: &mut Vec<Problem>,
) {
    let interp = a.interpreter.as_deref().unwrap_or_default();
    let arg = a.interpreter_arg.as_deref();
    if interp.ends_with('\r') || arg.is_some_and(|x| x.ends_with('\r')) {
        problems.push(Problem {
            kind: "missing-script-interpreter",
            message: format!(
                "`{name}` has Windows line endings: its #! line names `{}` with a trailing \
                 carriage return, so it would fail with \"no such file or directory\": convert \
                 it to Unix line endings (e.g. dos2unix)",
                interp.trim_end_matches('\r')
            ),
        });
        return;
    }
    if !interp.starts_with('/') {
        problems.push(Problem {
            kind: "missing-script-interpreter",
            message: format!(
                "`{name}` is a script whose #! interpreter `{interp}` is a relative path, \
                 resolved against the working directory at run time: use an absolute path such \
                 as /bin/sh"
            ),
        });
        return;
    }
    let data = root.read(interp);
    let Some(data) = data else {
        let what = if root.exists(interp) {
            "which is not a readable file in this image"
        } else {
            "which this image does not contain"
        };
        problems.push(Problem {
            kind: "missing-script-interpreter",
            message: format!(
                "`{name}` is a script for {interp}, {what}, so it would fail with \"no such \
                 file or directory\": add {interp} to the image (e.g. a static busybox), or ship \
                 a compiled binary instead"
            ),
        });
        return;
    };
    if depth >= MAX_SCRIPT_DEPTH {
        return;
    }
    match analyze(&data) {
        Ok(inner) => {
            check_into(interp, &inner, root, platform, depth + 1, problems);
            if is_env(interp) {
                check_env_command(name, arg, root, problems);
            }
        }
        Err(e) => problems.push(Problem {
            kind: "missing-script-interpreter",
            message: format!(
                "`{name}` is a script for {interp}, which in this image is not an executable \
                 ({e}): replace it with a working interpreter"
            ),
        }),
    }
}

fn is_env(interp: &str) -> bool {
    interp.rsplit('/').next() == Some("env")
}

/// `#!/usr/bin/env NAME`: NAME must be in the default PATH.
fn check_env_command(
    name: &str,
    arg: Option<&str>,
    root: &dyn RootFs,
    problems: &mut Vec<Problem>,
) {
    let Some(arg) = arg else {
        return;
    };
    let mut words = arg.split_whitespace();
    let mut cmd = words.next();
    if cmd == Some("-S") || cmd.is_some_and(|c| c.starts_with("-S")) {
        cmd = match cmd {
            Some("-S") => words.next(),
            Some(c) => Some(&c[2..]),
            None => None,
        };
    }
    let Some(cmd) = cmd.filter(|c| !c.starts_with('-') && !c.contains('=')) else {
        return;
    };
    if cmd.contains('/') {
        return;
    }
    if DEFAULT_PATH
        .iter()
        .any(|d| root.exists(&format!("{d}/{cmd}")))
    {
        return;
    }
    problems.push(Problem {
        kind: "missing-script-interpreter",
        message: format!(
            "`{name}` runs `env {cmd}`, but `{cmd}` is in none of the image's PATH \
             directories ({}): add it to the image, or name an absolute interpreter in the #! \
             line",
            DEFAULT_PATH.join(":")
        ),
    });
}
