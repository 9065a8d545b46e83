//! How gpu-net reads and writes the files a user names. Inputs must be
//! regular files ([`check_regular`]): a FIFO would block forever, a device
//! never ends. Checkpoints are written whole or not at all ([`write`]): the
//! bytes go to a temporary file beside the target, are synced, and are
//! renamed over it, so the target is always the old file or the new one.
//! A symbolic link is written through: the file it points to is replaced,
//! the link stays a link.
//! The temporary files being written are registered, so a signal handler
//! can remove them ([`remove_partial_writes`]) before the process exits, and
//! a save removes those that killed processes left behind.
//!
//! May import: std only (and thiserror).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An I/O error and the file it happened to.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |error| FileError {
        path: path.to_path_buf(),
        error,
    }
}

/// The temporary files this process is writing now.
static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Longest file name most file systems take (ext4, APFS, NTFS: 255 bytes).
const MAX_NAME: usize = 255;

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let target = through_links(path);
    let path = target.as_path();
    // A rename would replace a FIFO, a device or a folder with a file.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        let why = format!("is {}, not a regular file", kind_of(&meta));
        return Err(FileError {
            path: path.to_path_buf(),
            error: std::io::Error::other(why),
        });
    }
    remove_stale(path);
    let tmp = temporary_path(path, std::process::id());
    let result = (|| {
        let mut f = create_registered(&tmp).map_err(at(&tmp))?;
        f.write_all(bytes).map_err(at(&tmp))?;
        f.sync_all().map_err(at(&tmp))?;
        std::fs::rename(&tmp, path).map_err(at(path))?;
        // The rename itself is durable once the folder is synced.
        if let Ok(dir) = std::fs::File::open(folder(path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    unregister(&tmp);
    result
}

/// Where `path` leads through symbolic links (relative ones from the folder
/// of the link), up to 40 of them as the kernel allows; `path` itself when
/// it is no link.
pub fn through_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(to) if to.is_absolute() => p = to,
            Ok(to) => p = folder(&p).join(to),
            Err(_) => break,
        }
    }
    p
}

/// Removes every temporary file this process is writing, and keeps any
/// other thread from starting one: for a signal handler about to exit. The
/// targets keep their previous contents.
pub fn remove_partial_writes() {
    let files = IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    for f in files.iter() {
        let _ = std::fs::remove_file(f);
    }
    // Held until the process exits: a write that has not yet registered
    // its file waits here instead of creating it.
    std::mem::forget(files);
}

/// Creates `tmp` and registers it under one lock, so a signal handler's
/// [`remove_partial_writes`] runs wholly before (and the file is never
/// created) or after (and removes it).
fn create_registered(tmp: &Path) -> std::io::Result<std::fs::File> {
    let mut files = IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    let f = std::fs::File::create(tmp)?;
    files.push(tmp.to_path_buf());
    Ok(f)
}

fn unregister(tmp: &Path) {
    let mut files = IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    files.retain(|f| f != tmp);
}

/// Whether `path` can be written as [`write`] will write it, checked before
/// the work that produces it: an existing `path` must be a regular file
/// (never a folder, FIFO or device, which a rename would replace), a
/// temporary file can be created in its folder, and the rename over an
/// existing file is allowed.
pub fn check_writable(path: &Path) -> Result<(), String> {
    let target = through_links(path);
    let path = target.as_path();
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(format!("is {}, not a regular file", kind_of(&meta)));
    }
    let tmp = temporary_path(path, std::process::id());
    let created = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    let ours = created.metadata().map_err(|e| e.to_string());
    drop(created);
    let _ = std::fs::remove_file(&tmp);
    may_replace(path, &ours?)
}

/// Whether `path` holds something other than a table whose first line is
/// `header`: a file with something in it that does not start with that
/// line (a checkpoint, a picture, another table). A table an output may
/// replace or extend; anything else is the user's, and is not written over.
pub fn holds_other_than(path: &Path, header: &str) -> bool {
    head(path, 4096).is_some_and(|bytes| {
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        // Not text, or another first line.
        std::str::from_utf8(first).map_or(true, |line| line.trim_end() != header)
    })
}

/// The first `n` bytes of the regular file at `path`; none for a file that
/// is empty, missing or unreadable, or is not a regular file (only a
/// regular file is opened: a FIFO would block).
pub fn head(path: &Path, n: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(n)
        .read_to_end(&mut bytes)
        .ok()?;
    (!bytes.is_empty()).then_some(bytes)
}

/// `path` exists and is a regular file (after symbolic links), so reading
/// it ends: a FIFO, a device or a folder is refused, named.
pub fn check_regular(path: &Path) -> Result<(), FileError> {
    let meta = std::fs::metadata(path).map_err(at(path))?;
    if meta.is_file() {
        return Ok(());
    }
    Err(FileError {
        path: path.to_path_buf(),
        error: std::io::Error::other(format!("is {}, not a regular file", kind_of(&meta))),
    })
}

/// Whether `a` and `b` name one file, whether or not it exists yet (two
/// names of one folder, symbolic and hard links, `./`).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        use std::os::unix::fs::MetadataExt;
        return (x.dev(), x.ino()) == (y.dev(), y.ino());
    }
    fn identity(p: &Path) -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        Some(folder(p).canonicalize().ok()?.join(p.file_name()?))
    }
    match (identity(a), identity(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// A file, a folder, a FIFO, ... in words, for messages.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "a file";
    }
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// In a sticky folder (as /tmp) only the owner of a file, of the folder, or
/// root may rename over it: a file of another user there would be refused
/// only after the whole run. `ours` is a file this process created.
#[cfg(unix)]
fn may_replace(path: &Path, ours: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(target), Ok(dir)) = (std::fs::metadata(path), std::fs::metadata(folder(path))) else {
        return Ok(());
    };
    if sticky_refuses(ours.uid(), target.uid(), dir.uid(), dir.mode()) {
        return Err(format!(
            "belongs to another user (uid {}) in a sticky folder: it cannot be replaced",
            target.uid()
        ));
    }
    Ok(())
}

/// Whether a rename by user `me` over a file of `owner` in a folder of
/// `dir_owner` with `dir_mode` is refused: in a sticky folder only the
/// file's owner, the folder's, or root may.
#[cfg_attr(not(unix), allow(dead_code))]
fn sticky_refuses(me: u32, owner: u32, dir_owner: u32, dir_mode: u32) -> bool {
    let sticky = dir_mode & 0o1000 != 0;
    sticky && me != 0 && owner != me && dir_owner != me
}

#[cfg(not(unix))]
fn may_replace(_: &Path, _: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.tmp-PID` beside `path`, with NAME cut (at a character) so the
/// whole name stays within [`MAX_NAME`] bytes.
pub fn temporary_path(path: &Path, pid: u32) -> PathBuf {
    folder(path).join(format!("{}{pid}", temporary_prefix(path)))
}

fn temporary_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let room = MAX_NAME - ".".len() - ".tmp-".len() - u32::MAX.to_string().len();
    let mut end = name.len().min(room);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(".{}.tmp-", &name[..end])
}

/// Removes the temporary files of `path` that processes no longer running
/// left (killed during a save). Linux only, where /proc says which run.
fn remove_stale(path: &Path) {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = temporary_prefix(path);
    let Ok(entries) = std::fs::read_dir(folder(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_name_fits_the_file_system() {
        let long = "a".repeat(252);
        let tmp = temporary_path(Path::new(&long), u32::MAX);
        let name = tmp.file_name().unwrap().len();
        assert!(name <= MAX_NAME, "{name}");
        // Multi-byte names are cut at a character.
        let wide = "é".repeat(126);
        let tmp = temporary_path(Path::new(&wide), 7);
        assert!(tmp.file_name().unwrap().len() <= MAX_NAME);
        // Short names are whole.
        assert_eq!(
            temporary_path(Path::new("d/m.st"), 42),
            Path::new("d/.m.st.tmp-42")
        );
    }

    #[test]
    fn a_save_removes_what_dead_processes_left_and_nothing_else() {
        let d = std::env::temp_dir().join(format!("gpu-net-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("m.st");
        // No process has a number past Linux's largest (2^22).
        let dead = temporary_path(&path, 999_999_999);
        // PID 1 runs as long as the system does.
        let live = temporary_path(&path, 1);
        let other = temporary_path(&d.join("n.st"), 999_999_999);
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"partial").unwrap();
        }
        write(&path, b"whole").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        if cfg!(target_os = "linux") {
            assert!(!dead.exists(), "a dead process's file stays");
        }
        assert!(live.exists(), "a running process's file was removed");
        assert!(other.exists(), "another target's file was removed");
        assert!(!temporary_path(&path, std::process::id()).exists());
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_sticky_folder_refuses_replacing_another_users_file() {
        // /tmp's mode, owned by root; the file of user 1001, renamed by 1000.
        let tmp = 0o41777;
        assert!(sticky_refuses(1000, 1001, 0, tmp));
        assert!(!sticky_refuses(1000, 1000, 0, tmp), "its owner may");
        assert!(
            !sticky_refuses(1000, 1001, 1000, tmp),
            "the folder's owner may"
        );
        assert!(!sticky_refuses(0, 1001, 0, tmp), "root may");
        assert!(
            !sticky_refuses(1000, 1001, 0, 0o40777),
            "not sticky: anyone with write"
        );
    }

    #[cfg(unix)]
    #[test]
    fn targets_that_are_not_regular_files_are_refused() {
        for (path, kind) in [("/dev/null", "a device"), ("/tmp", "a folder")] {
            let err = check_writable(Path::new(path)).unwrap_err();
            assert_eq!(err, format!("is {kind}, not a regular file"));
        }
    }
}
