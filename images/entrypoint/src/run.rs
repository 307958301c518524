//! Holding and starting the program: a sealed memfd (or a file), `execveat`, and supervision
//! as PID 1 in the manner of tini (signals forwarded, zombies reaped, the child's status as
//! ours, 128+N when it died of signal N).
//!
//! Invariants: the bytes executed are the bytes verified (the memfd is sealed against any
//! write before it is analysed; a file is exec'd through the descriptor that was hashed); all
//! allocation happens before `fork`, so the child only makes async-signal-safe calls.

use std::ffi::{CStr, CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;

/// Signals forwarded to the child when supervising.
const FORWARDED: [libc::c_int; 8] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

/// Creates an anonymous in-memory file (`memfd_create`, close-on-exec, sealable).
pub fn memfd(name: &str) -> io::Result<File> {
    let name = CString::new(name.replace('\0', "")).unwrap_or_default();
    // SAFETY: `name` is a valid C string; the returned descriptor is owned by the File.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Seals a memfd against every further change of content or size.
pub fn seal(file: &File) -> io::Result<()> {
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A read-only mapping of a file's first `len` bytes.
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    /// Maps `len` bytes of `file` read-only.
    pub fn new(file: &File, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Ok(Self {
                ptr: std::ptr::null_mut(),
                len,
            });
        }
        // SAFETY: a fresh private read-only mapping; the memfd is sealed (or the file is ours
        // in a fresh temp name), so its content does not change while mapped.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for the lifetime of self.
        unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly what `new` mapped.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// What to start and how to call it.
pub struct Program {
    /// The verified file (memfd or the renamed download, opened read-only).
    pub file: File,
    /// For a `#!` script kept in a file: exec by this path (the kernel needs a path to hand
    /// the interpreter).
    pub script_path: Option<CString>,
    /// For a `#!` script in a memfd: the descriptor must survive exec for the interpreter.
    pub keep_fd: bool,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstring(bytes: &[u8]) -> CString {
    CString::new(
        bytes
            .iter()
            .copied()
            .filter(|&b| b != 0)
            .collect::<Vec<u8>>(),
    )
    .unwrap_or_default()
}

impl Program {
    /// A program with argv[0] `arg0`, the given arguments and environment.
    pub fn new(
        file: File,
        arg0: &[u8],
        args: impl Iterator<Item = OsString>,
        env: Vec<(OsString, OsString)>,
    ) -> Self {
        let mut argv = vec![cstring(arg0)];
        argv.extend(args.map(|a| cstring(a.as_bytes())));
        let envp = env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                cstring(&kv)
            })
            .collect();
        Self {
            file,
            script_path: None,
            keep_fd: false,
            argv,
            envp,
        }
    }

    /// Replaces this process with the program. Returns only on failure.
    pub fn exec(&self) -> io::Error {
        let argv = ptrs(&self.argv);
        let envp = ptrs(&self.envp);
        // SAFETY: argv/envp are NULL-terminated arrays of valid C strings that outlive the call.
        unsafe { self.exec_raw(argv.as_ptr(), envp.as_ptr()) };
        io::Error::last_os_error()
    }

    /// The exec itself, async-signal-safe (no allocation).
    ///
    /// # Safety
    /// `argv` and `envp` must be NULL-terminated arrays of valid C strings.
    unsafe fn exec_raw(&self, argv: *const *const libc::c_char, envp: *const *const libc::c_char) {
        let fd = self.file.as_raw_fd();
        if self.keep_fd {
            libc::fcntl(fd, libc::F_SETFD, 0);
        }
        match &self.script_path {
            Some(p) => {
                libc::execve(p.as_ptr(), argv, envp);
            }
            None => {
                let empty: &CStr = c"";
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    empty.as_ptr(),
                    argv,
                    envp,
                    libc::AT_EMPTY_PATH,
                );
            }
        }
    }

    /// Starts the program as a child and supervises it until it exits; returns the exit
    /// status to end with. Errors only when the child cannot be created.
    pub fn supervise(&self) -> io::Result<u8> {
        let argv = ptrs(&self.argv);
        let envp = ptrs(&self.envp);
        let failed = b"imgbuild-entrypoint: cannot start the program (execveat failed)\n";
        // SAFETY: plain libc calls on local, initialised signal sets; after fork the child
        // only calls async-signal-safe functions (sigprocmask, fcntl, execve(at), write, _exit).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
                libc::sigaddset(&mut set, *s);
            }
            // Inherited SIG_IGN for SIGCHLD would make the kernel reap for us and hide the
            // child's status.
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
            libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
            if libc::getpid() != 1 {
                // Orphaned grandchildren come to us, as they would to PID 1.
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            }
            let child = libc::fork();
            if child < 0 {
                let e = io::Error::last_os_error();
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return Err(e);
            }
            if child == 0 {
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                self.exec_raw(argv.as_ptr(), envp.as_ptr());
                libc::write(2, failed.as_ptr().cast(), failed.len());
                libc::_exit(crate::Exit::CannotStart as i32);
            }
            loop {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let sig = libc::sigwaitinfo(&set, &mut info);
                if sig < 0 {
                    continue;
                }
                if sig != libc::SIGCHLD {
                    libc::kill(child, sig);
                    continue;
                }
                let mut status = None;
                loop {
                    let mut st = 0;
                    let pid = libc::waitpid(-1, &mut st, libc::WNOHANG);
                    if pid <= 0 {
                        break;
                    }
                    if pid == child {
                        status = Some(st);
                    }
                }
                if let Some(st) = status {
                    return Ok(exit_status(st));
                }
            }
        }
    }
}

/// The status to exit with for a `waitpid` status: the exit code, or 128+N for signal N.
fn exit_status(st: libc::c_int) -> u8 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st) as u8
    } else if libc::WIFSIGNALED(st) {
        (128 + libc::WTERMSIG(st)) as u8
    } else {
        1
    }
}

fn ptrs(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sealed_memfd_refuses_writes() {
        let mut f = memfd("t").unwrap();
        f.write_all(b"hello").unwrap();
        seal(&f).unwrap();
        assert!(f.write_all(b"x").is_err());
        assert!(f.set_len(1).is_err());
        let m = Mapped::new(&f, 5).unwrap();
        assert_eq!(m.bytes(), b"hello");
    }

    #[test]
    fn exit_status_maps_signals() {
        assert_eq!(exit_status(3 << 8), 3);
        assert_eq!(exit_status(libc::SIGTERM), 143);
        assert_eq!(exit_status(libc::SIGKILL), 137);
    }
}
