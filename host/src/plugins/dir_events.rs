//! What a file event in the plugin directory means for the next sync, so a
//! finished change is read at once instead of after a fixed quiet period.
//!
//! | event (inotify on Linux) | meaning | what the watcher does |
//! |---|---|---|
//! | rename into place (`MOVED_TO`: `mv`, the ConfigMap volume's `..data` swap) | the file is whole | sync now |
//! | close after writing (`CLOSE_WRITE`) | a writer finished | sync now |
//! | removal, rename away | gone | sync now |
//! | write (`MODIFY`), creation of an empty regular file | a writer is at work | mark the path being written |
//! | creation of anything else (a symlink, a FIFO, a hard link to a whole file) | no writer will close it | sync now |
//! | anything else (opens, reads, attributes) | nothing changed | nothing |
//!
//! A sync skips a plugin whose files are being written (neither read nor
//! failed), so a half-written component is never loaded, however long the
//! writer pauses, and a `cp` is read once, at its close. On Linux (inotify
//! reports every close after writing) a path stays marked until its close,
//! or the periodic re-read of the whole directory; on platforms that report
//! no closes, until the directory is quiet for [`QUIET`].

use std::time::Duration;

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind};

/// How long the directory must be quiet before paths still being written
/// are read anyway, where the platform reports no closes.
pub const QUIET: Duration = Duration::from_millis(300);

/// Whether the platform's watcher reports a writer's close (inotify's
/// `CLOSE_WRITE`), so a path being written can wait for it.
pub const REPORTS_CLOSES: bool = cfg!(target_os = "linux");

/// What an event asks of the watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The change is complete: sync now.
    SyncNow,
    /// A writer is at work on the path: wait for its close, or quiet.
    Writing,
    /// Something was created: a writer at work if it is an empty regular
    /// file ([`created`]), else complete.
    Created,
    /// Nothing changed.
    Ignore,
}

pub fn classify(kind: &EventKind) -> Action {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Action::SyncNow,
        EventKind::Access(_) => Action::Ignore,
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => Action::SyncNow,
        EventKind::Modify(ModifyKind::Metadata(_)) => Action::Ignore,
        EventKind::Create(_) => Action::Created,
        EventKind::Modify(_) => Action::Writing,
        // Platforms that report less precisely: treat as a write, read
        // once quiet.
        EventKind::Any | EventKind::Other => Action::Writing,
    }
}

/// What the creation of `path` means: an empty regular file is a writer
/// starting (its close follows); anything else (a symlink, a FIFO, a
/// directory, a hard link to a whole file, a file gone already) gets no
/// close, so it is read now.
pub fn created(path: &std::path::Path) -> Action {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => Action::Writing,
        _ => Action::SyncNow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};

    #[test]
    fn finished_changes_sync_now_and_writes_wait() {
        let now = [
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Remove(RemoveKind::File),
        ];
        for kind in now {
            assert_eq!(classify(&kind), Action::SyncNow, "{kind:?}");
        }
        assert_eq!(
            classify(&EventKind::Create(CreateKind::File)),
            Action::Created
        );
        let writing = [
            EventKind::Modify(ModifyKind::Data(DataChange::Content)),
            EventKind::Any,
        ];
        for kind in writing {
            assert_eq!(classify(&kind), Action::Writing, "{kind:?}");
        }
        let nothing = [
            EventKind::Access(AccessKind::Open(AccessMode::Read)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
        ];
        for kind in nothing {
            assert_eq!(classify(&kind), Action::Ignore, "{kind:?}");
        }
    }

    #[test]
    fn only_an_empty_new_file_waits_for_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.wasm");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(created(&empty), Action::Writing);
        let whole = dir.path().join("whole.wasm");
        std::fs::write(&whole, b"\0asm").unwrap();
        assert_eq!(created(&whole), Action::SyncNow);
        let link = dir.path().join("link.wasm");
        std::os::unix::fs::symlink(&empty, &link).unwrap();
        assert_eq!(
            created(&link),
            Action::SyncNow,
            "a symlink is never written"
        );
        assert_eq!(created(&dir.path().join("gone.wasm")), Action::SyncNow);
    }
}
