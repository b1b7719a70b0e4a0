//! The data directory's server lock: `ods run` holds an exclusive lock on `<data dir>/ods.lock`
//! (with its process id written in it) for as long as it runs, so a second `ods run` and a full
//! `ods replay` (which empties the store) on the same directory are refused with the pid of the
//! running server. The operating system releases the lock when the process ends in any way,
//! SIGKILL included, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "ods.lock";

/// An acquired lock, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Who holds the lock, when it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The lock file.
    pub path: PathBuf,
    /// The process id written by the holder (absent if it could not be read).
    pub pid: Option<u32>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "process {pid} (lock {})", self.path.display()),
            None => write!(f, "another process (lock {})", self.path.display()),
        }
    }
}

impl DataDirLock {
    /// Takes the lock of `dir` (which must exist), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<std::result::Result<DataDirLock, Holder>> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .and_then(|()| file.seek(SeekFrom::Start(0)))
                    .and_then(|_| writeln!(file, "{}", std::process::id()))
                    .and_then(|()| file.flush())
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(Ok(DataDirLock { _file: file }))
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                Ok(Err(Holder { path, pid }))
            }
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DataDirLock::acquire(dir.path()).unwrap().unwrap();
        let holder = DataDirLock::acquire(dir.path()).unwrap().unwrap_err();
        assert_eq!(holder.pid, Some(std::process::id()));
        assert!(holder.to_string().contains(&std::process::id().to_string()));
        drop(lock);
        let again = DataDirLock::acquire(dir.path()).unwrap();
        assert!(again.is_ok(), "the lock is free once dropped");
    }
}
