//! The content-addressed blob store: `<root>/blobs/sha256/<hex>`, with
//! `<root>/tmp/` for writes in flight (same file system, so a rename
//! publishes a blob atomically).
//!
//! A blob is hashed before it is written and again whenever it is read: a
//! file that does not match its name (disk corruption, or someone with write
//! access to the cache) is deleted and reported as a miss, so what the host
//! compiles is always what the registry's digest names.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lowercase hex>` digest, the only algorithm accepted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<hex>`; anything else is refused with the reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(hex) = text.strip_prefix("sha256:") else {
            return Err(format!(
                "{text:?} is not a sha256 digest (sha256:<64 hex digits>)"
            ));
        };
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "{text:?}: a sha256 digest has 64 lowercase hex digits"
            ));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to create the OCI blob cache {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read cached blob {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write cached blob {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `put` was handed bytes that are not what the digest names.
    #[error("refusing to cache {expected}: the content hashes to {actual}")]
    Mismatch { expected: Digest, actual: Digest },
}

/// Blobs by digest under one directory.
#[derive(Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    rejected: AtomicUsize,
}

impl BlobStore {
    /// Opens (creating) the store rooted at `root` (`<cache>/oci`).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        for dir in [&blobs, &tmp] {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(BlobStore {
            blobs,
            tmp,
            rejected: AtomicUsize::new(0),
        })
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// The blob's bytes if it is cached and still hashes to its digest. A
    /// blob that does not is deleted, counted ([`Self::rejected`]) and
    /// reported as a miss.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        if Digest::of(&bytes) != *digest {
            tracing::warn!(path = %path.display(), %digest, "cached blob does not match its digest; deleting it");
            self.rejected.fetch_add(1, Ordering::Relaxed);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Write { path, source }),
            }
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Stores `bytes` as `digest` after checking they hash to it: written to
    /// `tmp/`, synced, then renamed into place.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(StoreError::Mismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let path = self.path(digest);
        let write_err = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.tmp).map_err(write_err)?;
        tmp.write_all(bytes).map_err(write_err)?;
        tmp.as_file().sync_all().map_err(write_err)?;
        tmp.persist(&path).map_err(|e| write_err(e.error))?;
        Ok(path)
    }

    /// Cached blobs deleted because they no longer matched their digest.
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parse_refuses_other_shapes() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(Digest::parse(&good).unwrap().to_string(), good);
        for bad in [
            "sha512:00",
            "sha256:abc",
            &format!("sha256:{}", "AB".repeat(32)),
            &format!("sha256:{}", "zz".repeat(32)),
            "ab",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn round_trip_and_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&dir.path().join("oci")).unwrap();
        let digest = Digest::of(b"component");
        assert_eq!(store.get(&digest).unwrap(), None);
        let path = store.put(&digest, b"component").unwrap();
        assert_eq!(path, dir.path().join("oci/blobs/sha256").join(digest.hex()));
        assert_eq!(
            store.get(&digest).unwrap().as_deref(),
            Some(&b"component"[..])
        );
        // Nothing left behind in tmp/.
        assert_eq!(
            std::fs::read_dir(dir.path().join("oci/tmp"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn put_refuses_bytes_that_do_not_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"component");
        let err = store.put(&digest, b"something else").unwrap_err();
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        assert!(!store.path(&digest).exists());
    }

    #[test]
    fn tampered_blob_is_deleted_and_missed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"component");
        let path = store.put(&digest, b"component").unwrap();
        std::fs::write(&path, b"evil component").unwrap();
        assert_eq!(store.get(&digest).unwrap(), None);
        assert!(!path.exists(), "the tampered file is deleted");
        assert_eq!(store.rejected(), 1);
        // A fresh put after the rejection serves again.
        store.put(&digest, b"component").unwrap();
        assert_eq!(
            store.get(&digest).unwrap().as_deref(),
            Some(&b"component"[..])
        );
    }
}
