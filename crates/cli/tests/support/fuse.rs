//! A filesystem that can be told to fail `fsync`: FUSE, served by a thread of the
//! test process, passing every operation through to a real directory, except that
//! while [`FaultyMount::fail_syncs`] is on, every `fsync`, `fdatasync` and directory
//! sync answers `EIO` (what a dying disk or a lost network volume gives, and what no
//! real filesystem can be asked for). Writes still reach the real files, as they
//! reach the page cache before a failed `fsync` on a real disk.
//!
//! `fuser` mounts with mount(2) as root (no libfuse, no fusermount). Locks are left
//! to the kernel, which keeps them locally on a FUSE mount that does not claim them.

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nothing is cached in the kernel: every stat and lookup asks the real directory.
const TTL: Duration = Duration::ZERO;

/// Whether syncs fail now, and how many did.
#[derive(Debug, Default)]
struct Faults {
    fail_syncs: AtomicBool,
    failed: AtomicU64,
}

/// A mounted [`Passthrough`] over a temporary directory; unmounted on drop (drop
/// whatever uses it first: a process with files open keeps a lazy unmount pending).
pub struct FaultyMount {
    session: Option<fuser::BackgroundSession>,
    faults: Arc<Faults>,
    mountpoint: tempfile::TempDir,
    _backing: tempfile::TempDir,
}

impl FaultyMount {
    /// `None` (with the reason printed) where FUSE cannot be mounted here.
    pub fn mount() -> Option<FaultyMount> {
        let backing = tempfile::tempdir().expect("backing directory");
        let mountpoint = tempfile::tempdir().expect("mount point");
        let faults = Arc::new(Faults::default());
        let filesystem = Passthrough::new(backing.path(), Arc::clone(&faults));
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("logbook-faults".into())];
        match fuser::spawn_mount(filesystem, mountpoint.path(), &config) {
            Ok(session) => Some(FaultyMount {
                session: Some(session),
                faults,
                mountpoint,
                _backing: backing,
            }),
            Err(e) => {
                eprintln!(
                    "SKIPPED: cannot mount a FUSE filesystem (needs /dev/fuse and root): {e}"
                );
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// From now on every sync fails with `EIO` (`true`) or passes through (`false`).
    pub fn fail_syncs(&self, fail: bool) {
        self.faults.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Syncs answered with `EIO` so far.
    pub fn failed_syncs(&self) -> u64 {
        self.faults.failed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyMount {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            if session.umount_and_join().is_err() {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(self.mountpoint.path())
                    .status();
            }
        }
    }
}

/// Inode numbers handed to the kernel, and the real paths behind them.
#[derive(Debug, Default)]
struct Inodes {
    paths: HashMap<u64, PathBuf>,
    numbers: HashMap<PathBuf, u64>,
    next: u64,
}

impl Inodes {
    fn number(&mut self, path: &Path) -> INodeNo {
        if let Some(&n) = self.numbers.get(path) {
            return INodeNo(n);
        }
        self.next += 1;
        let n = self.next;
        self.numbers.insert(path.to_path_buf(), n);
        self.paths.insert(n, path.to_path_buf());
        INodeNo(n)
    }

    fn forget_path(&mut self, path: &Path) {
        if let Some(n) = self.numbers.remove(path) {
            self.paths.remove(&n);
        }
    }

    /// After a rename: `from` and everything under it now live under `to`.
    fn moved(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        let moved: Vec<(PathBuf, u64)> = self
            .numbers
            .iter()
            .filter(|(path, _)| path.starts_with(from))
            .map(|(path, &n)| (path.clone(), n))
            .collect();
        for (old, n) in moved {
            let new = match old.strip_prefix(from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.to_path_buf(),
                Ok(rest) => to.join(rest),
                Err(_) => continue,
            };
            self.numbers.remove(&old);
            self.numbers.insert(new.clone(), n);
            self.paths.insert(n, new);
        }
    }
}

struct Passthrough {
    faults: Arc<Faults>,
    inodes: Mutex<Inodes>,
    files: Mutex<HashMap<u64, File>>,
    next_handle: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn reply_removed(removed: Result<(), Errno>, reply: ReplyEmpty) {
    match removed {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn attributes(ino: INodeNo, meta: &Metadata) -> FileAttr {
    let at = |secs: i64, nanos: i64| {
        UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
    };
    let kind = if meta.is_dir() {
        FileType::Directory
    } else if meta.file_type().is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    };
    FileAttr {
        ino,
        size: meta.size(),
        blocks: meta.blocks(),
        atime: at(meta.atime(), meta.atime_nsec()),
        mtime: at(meta.mtime(), meta.mtime_nsec()),
        ctime: at(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

impl Passthrough {
    fn new(root: &Path, faults: Arc<Faults>) -> Passthrough {
        let mut inodes = Inodes {
            next: INodeNo::ROOT.0,
            ..Inodes::default()
        };
        inodes.paths.insert(INodeNo::ROOT.0, root.to_path_buf());
        inodes.numbers.insert(root.to_path_buf(), INodeNo::ROOT.0);
        Passthrough {
            faults,
            inodes: Mutex::new(inodes),
            files: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        lock(&self.inodes)
            .paths
            .get(&ino.0)
            .cloned()
            .ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    /// Removes `name` in `parent` with `remove` (a file or a directory) and forgets
    /// its number.
    fn remove_child(
        &self,
        parent: INodeNo,
        name: &OsStr,
        remove: fn(&Path) -> std::io::Result<()>,
    ) -> Result<(), Errno> {
        let path = self.child(parent, name)?;
        remove(&path)?;
        lock(&self.inodes).forget_path(&path);
        Ok(())
    }

    /// The entry at `path`, numbered.
    fn entry(&self, path: &Path) -> Result<FileAttr, Errno> {
        let meta = std::fs::symlink_metadata(path)?;
        let ino = lock(&self.inodes).number(path);
        Ok(attributes(ino, &meta))
    }

    fn keep_open(&self, file: File) -> FileHandle {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(handle, file);
        FileHandle(handle)
    }

    /// `EIO` while syncs are to fail; else runs the real sync.
    fn sync(&self, real: impl FnOnce() -> std::io::Result<()>) -> Result<(), Errno> {
        if self.faults.fail_syncs.load(Ordering::SeqCst) {
            self.faults.failed.fetch_add(1, Ordering::SeqCst);
            return Err(Errno::EIO);
        }
        Ok(real()?)
    }

    fn set_attributes(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
        fh: Option<FileHandle>,
    ) -> Result<FileAttr, Errno> {
        let path = self.path(ino)?;
        if let Some(size) = size {
            let files = lock(&self.files);
            match fh.and_then(|fh| files.get(&fh.0)) {
                Some(file) => file.set_len(size)?,
                None => OpenOptions::new().write(true).open(&path)?.set_len(size)?,
            }
        }
        if let Some(mode) = mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            std::os::unix::fs::chown(&path, owner.0, owner.1)?;
        }
        if times.0.is_some() || times.1.is_some() {
            let when = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut set = std::fs::FileTimes::new();
            if let Some(t) = times.0 {
                set = set.set_accessed(when(t));
            }
            if let Some(t) = times.1 {
                set = set.set_modified(when(t));
            }
            File::open(&path)?.set_times(set)?;
        }
        Ok(attributes(ino, &std::fs::symlink_metadata(&path)?))
    }
}

impl Filesystem for Passthrough {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.child(parent, name).and_then(|path| self.entry(&path)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let open = fh.and_then(|fh| lock(&self.files).get(&fh.0).map(File::metadata));
        let meta = match open {
            Some(meta) => meta.map_err(Errno::from),
            None => self
                .path(ino)
                .and_then(|path| Ok(std::fs::symlink_metadata(path)?)),
        };
        match meta {
            Ok(meta) => reply.attr(&TTL, &attributes(ino, &meta)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.set_attributes(ino, mode, (uid, gid), size, (atime, mtime), fh) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let made = self.child(parent, name).and_then(|path| {
            std::fs::DirBuilder::new()
                .mode(mode & !umask)
                .create(&path)?;
            self.entry(&path)
        });
        match made {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_removed(
            self.remove_child(parent, name, |path| std::fs::remove_file(path)),
            reply,
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_removed(
            self.remove_child(parent, name, |path| std::fs::remove_dir(path)),
            reply,
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            // RENAME_NOREPLACE and RENAME_EXCHANGE are not passed through.
            return reply.error(Errno::EINVAL);
        }
        let renamed = self.child(parent, name).and_then(|from| {
            let to = self.child(newparent, newname)?;
            std::fs::rename(&from, &to)?;
            lock(&self.inodes).moved(&from, &to);
            Ok(())
        });
        match renamed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let opened = self.path(ino).and_then(|path| {
            let mut options = OpenOptions::new();
            match flags.acc_mode() {
                OpenAccMode::O_RDONLY => options.read(true),
                OpenAccMode::O_WRONLY => options.write(true),
                OpenAccMode::O_RDWR => options.read(true).write(true),
            };
            Ok(self.keep_open(options.open(path)?))
        });
        match opened {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let files = lock(&self.files);
        let Some(file) = files.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        let mut buffer = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buffer.len() {
            match file.read_at(&mut buffer[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(e.into()),
            }
        }
        reply.data(&buffer[..filled]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let files = lock(&self.files);
        let Some(file) = files.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        match file.write_all_at(data, offset) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e.into()),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.files).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let files = lock(&self.files);
        let Some(file) = files.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        let synced = self.sync(|| {
            if datasync {
                file.sync_data()
            } else {
                file.sync_all()
            }
        });
        match synced {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listed = self.path(ino).and_then(|path| {
            let mut entries = vec![
                (ino, FileType::Directory, OsStr::new(".").to_os_string()),
                (ino, FileType::Directory, OsStr::new("..").to_os_string()),
            ];
            for entry in std::fs::read_dir(&path)? {
                let entry = entry?;
                let kind = if entry.file_type()?.is_dir() {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                };
                let number = lock(&self.inodes).number(&entry.path());
                entries.push((number, kind, entry.file_name()));
            }
            Ok(entries)
        });
        match listed {
            Ok(entries) => {
                for (i, (number, kind, name)) in
                    entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(number, i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let synced = self
            .path(ino)
            .and_then(|path| self.sync(|| File::open(path)?.sync_all()));
        match synced {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let measured = self.path(INodeNo::ROOT).and_then(|root| {
            rustix::fs::statvfs(root).map_err(|e| Errno::from_i32(e.raw_os_error()))
        });
        match measured {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let exclusive = flags & rustix::fs::OFlags::EXCL.bits() as i32 != 0;
        let created = self.child(parent, name).and_then(|path| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(!exclusive)
                .create_new(exclusive)
                .truncate(false)
                .mode(mode & !umask)
                .open(&path)?;
            let attr = self.entry(&path)?;
            Ok((attr, self.keep_open(file)))
        });
        match created {
            Ok((attr, fh)) => reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }
}
