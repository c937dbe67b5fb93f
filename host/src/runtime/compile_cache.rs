//! The compiled-artefact cache, made tamper-evident.
//!
//! Loading a precompiled artefact is as trusting as running native code:
//! wasmtime maps it executable without re-checking it. So the host keeps its
//! own cache instead of wasmtime's (which is keyed by content hash only):
//!
//! - an entry is `<sha256(engine fingerprint, component bytes)>.cwasm` in the
//!   cache directory; it holds a magic header, an HMAC-SHA256 tag and the
//!   artefact from `Component::serialize`. The engine fingerprint is
//!   wasmtime's compatibility hash (target, compiler flags, `Tunables`,
//!   features, version), so Cranelift and Winch artefacts of one component
//!   get different names: `Tunables::winch_callable` differs between them;
//! - the tag covers the entry's name and the artefact, keyed by a secret of
//!   32 random bytes in a key file kept *outside* the cache directory
//!   (`DIR.key` beside `DIR`), created `0600` and refused when another user
//!   owns it or others may read or write it;
//! - an entry is deserialized only when its tag verifies. Anything else (an
//!   artefact copied over another plugin's entry, a truncated file, one
//!   written with another key) is logged, counted in
//!   `kubewasm_compile_cache_rejected_total`, recompiled and overwritten.
//!
//! Someone who can write the cache directory but not read the key file can
//! therefore not make the host run code of their choosing. Someone who can
//! read the key file runs as the host's user already.

use std::collections::VecDeque;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;
use crate::ops::metrics::Metrics;

type HmacSha256 = Hmac<Sha256>;

/// First bytes of every entry: names the format, so a future layout is not
/// mistaken for this one.
const MAGIC: &[u8; 8] = b"KWCWASM1";
const TAG_LEN: usize = 32;
const KEY_LEN: usize = 32;

/// How loads used the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads served from the cache.
    pub hits: usize,
    /// Loads that compiled (nothing cached, or an entry that did not verify).
    pub misses: usize,
}

/// The host's compile cache: see the module docs.
pub struct CompileCache {
    dir: PathBuf,
    /// HMAC-SHA256 keyed with the secret, cloned for each tag.
    mac: HmacSha256,
    /// Hex SHA-256 of the engine's compatibility hash: artefacts of another
    /// wasmtime version or configuration get other names.
    engine_fingerprint: [u8; 32],
    hits: AtomicUsize,
    misses: AtomicUsize,
    rejected: AtomicUsize,
    /// Where rejected entries are counted for the operator.
    metrics: Arc<Metrics>,
    /// The components loaded last, by entry name: a load of one of them
    /// again (its settings changed, a swap back) reads, verifies and
    /// deserializes nothing. A `Component` shares its code, so an entry
    /// still serving costs nothing extra.
    recent: Mutex<VecDeque<(String, Component)>>,
}

/// Components kept in [`CompileCache::recent`].
const RECENT: usize = 4;

/// Feeds `std::hash::Hash` output into SHA-256, so the engine fingerprint is
/// stable across processes (unlike `DefaultHasher`'s seeded output).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The key file of a cache directory: `DIR.key` beside `DIR`.
fn key_path(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?;
    let mut key = name.to_os_string();
    key.push(".key");
    Some(dir.with_file_name(key))
}

impl CompileCache {
    /// Opens (creating if needed) the cache directory and its key file.
    pub fn open(dir: &Path, engine: &Engine, metrics: Arc<Metrics>) -> Result<Self, RuntimeError> {
        let cache_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RuntimeError::Cache { path, source }
        };
        std::fs::create_dir_all(dir)
            .map_err(CacheError::Io)
            .map_err(cache_err(dir))?;
        let key_file = key_path(dir).ok_or_else(|| cache_err(dir)(CacheError::Unnamed))?;
        let key = load_or_create_key(&key_file).map_err(cache_err(&key_file))?;
        let mac = HmacSha256::new_from_slice(&key)
            .map_err(CacheError::Mac)
            .map_err(cache_err(&key_file))?;
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            mac,
            engine_fingerprint: hasher.0.finalize().into(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            metrics,
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
        })
    }

    /// Hits and misses since the cache was opened; a rejected entry is a miss.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Entries refused because their tag did not verify.
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The entry of the component whose SHA-256 is `digest`.
    fn entry_name(&self, digest: &[u8; 32]) -> String {
        let mut hash = Sha256::new();
        hash.update(self.engine_fingerprint);
        hash.update(digest);
        format!("{}.cwasm", hex::encode(hash.finalize()))
    }

    /// Whether the component whose SHA-256 is `digest` is among the last
    /// loaded or has an entry (not yet verified: a refused entry is
    /// recompiled when it is read).
    pub fn holds(&self, digest: &[u8; 32]) -> bool {
        let name = self.entry_name(digest);
        self.recent(&name).is_some() || self.dir.join(&name).is_file()
    }

    fn recent(&self, name: &str) -> Option<Component> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
    }

    fn remember(&self, name: String, component: &Component) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|(n, _)| *n != name);
        if recent.len() >= RECENT {
            recent.pop_back();
        }
        recent.push_front((name, component.clone()));
    }

    fn tag(&self, name: &str, artefact: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(artefact);
        mac
    }

    /// The component whose bytes hash to `digest` (SHA-256): one of the
    /// last loaded, or from a verified cache entry, else compiled with
    /// `compile` and stored.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        origin: &str,
        digest: &[u8; 32],
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<Component> {
        let name = self.entry_name(digest);
        if let Some(component) = self.recent(&name) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component);
        }
        let path = self.dir.join(&name);
        match std::fs::read(&path) {
            Ok(entry) => match self.verified(&name, &entry) {
                Ok(artefact) => match deserialize_verified(engine, artefact) {
                    Ok(component) => {
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        self.remember(name, &component);
                        return Ok(component);
                    }
                    Err(e) => tracing::debug!(
                        plugin = origin,
                        entry = %path.display(),
                        error = %format!("{e:#}"),
                        "cached artefact is not loadable by this engine; recompiling"
                    ),
                },
                Err(reason) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    self.metrics.compile_cache_rejected.inc();
                    tracing::warn!(
                        plugin = origin,
                        entry = %path.display(),
                        reason,
                        "compile cache entry refused: it was not written by this host for this component; recompiling"
                    );
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "cannot read compile cache entry; recompiling")
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let component = compile()?;
        self.remember(name.clone(), &component);
        match component.serialize() {
            Ok(artefact) => {
                if let Err(e) = self.store(&name, &artefact) {
                    tracing::warn!(entry = %path.display(), error = %e, "cannot write compile cache entry");
                }
            }
            Err(e) => {
                tracing::warn!(plugin = origin, error = %format!("{e:#}"), "cannot serialize compiled plugin")
            }
        }
        Ok(component)
    }

    /// The artefact of an entry whose tag verifies, or why not.
    fn verified<'a>(&self, name: &str, entry: &'a [u8]) -> Result<&'a [u8], &'static str> {
        let rest = entry
            .strip_prefix(MAGIC.as_slice())
            .ok_or("no kubewasm header")?;
        if rest.len() < TAG_LEN {
            return Err("truncated");
        }
        let (tag, artefact) = rest.split_at(TAG_LEN);
        self.tag(name, artefact)
            .verify_slice(tag)
            .map_err(|_| "its HMAC does not verify")?;
        Ok(artefact)
    }

    /// Writes an entry atomically: a temporary file renamed over the name.
    fn store(&self, name: &str, artefact: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&self.tag(name, artefact).finalize().into_bytes())?;
            file.write_all(artefact)?;
            file.sync_all()?;
            std::fs::rename(&tmp, self.dir.join(name))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Deserializes an artefact whose HMAC has just verified.
///
/// `Component::deserialize` is `unsafe` because wasmtime maps the bytes as
/// executable code without validating them: they must come from
/// `Component::serialize` of a compatible engine. That holds here: the bytes
/// carry a tag that only this host's key could have produced, bound to the
/// entry's name (the hash of the component and engine), and the key never
/// leaves a `0600` file outside the cache directory. wasmtime still checks
/// the header for engine compatibility and refuses a mismatch with an error.
#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, artefact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see above; `artefact` was produced by `Component::serialize`
    // in a host holding the same key, for this component and engine.
    unsafe { Component::deserialize(engine, artefact) }
}

/// The uid this process runs as, from `/proc/self` (owned by it).
fn current_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Reads the key file, creating it (32 random bytes, mode 0600) if missing.
/// Why the cache directory or its key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Io(std::io::Error),
    #[error("the directory has no name to put its key file beside")]
    Unnamed,
    #[error("cannot read random bytes for a new key")]
    Random(#[source] std::io::Error),
    #[error("cannot create the key file")]
    CreateKey(#[source] std::io::Error),
    #[error("cannot read the key file")]
    ReadKey(#[source] std::io::Error),
    #[error("the key file is not a regular file")]
    KeyNotRegular,
    #[error("the key file is owned by uid {owner}, not by this process (uid {uid})")]
    KeyOwner { owner: u32, uid: u32 },
    #[error("the key file has mode {mode:o}: others may read or write it (it must be 600)")]
    KeyExposed { mode: u32 },
    #[error("the key file holds {len} bytes, not {KEY_LEN}")]
    KeyLength { len: usize },
    #[error("{0}")]
    Mac(hmac::digest::InvalidLength),
}

fn load_or_create_key(path: &Path) -> Result<[u8; KEY_LEN], CacheError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => read_key(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; KEY_LEN];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut key))
                .map_err(CacheError::Random)?;
            // Written to a private temporary file, then linked into place:
            // a concurrent host either wins the link or reads the winner's key.
            let tmp = path.with_extension(format!("key.{}.tmp", std::process::id()));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()))
                .and_then(|()| std::fs::hard_link(&tmp, path));
            let _ = std::fs::remove_file(&tmp);
            match written {
                Ok(()) => Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
                Err(e) => Err(CacheError::CreateKey(e)),
            }
        }
        Err(e) => Err(CacheError::ReadKey(e)),
    }
}

fn read_key(path: &Path) -> Result<[u8; KEY_LEN], CacheError> {
    let meta = std::fs::symlink_metadata(path).map_err(CacheError::Io)?;
    if !meta.file_type().is_file() {
        return Err(CacheError::KeyNotRegular);
    }
    if let Some(uid) = current_uid()
        && meta.uid() != uid
    {
        return Err(CacheError::KeyOwner {
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CacheError::KeyExposed { mode });
    }
    let bytes = std::fs::read(path).map_err(CacheError::Io)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| CacheError::KeyLength { len: bytes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_sits_beside_the_directory() {
        assert_eq!(
            key_path(Path::new("/var/cache/kubewasm/compiled")).unwrap(),
            Path::new("/var/cache/kubewasm/compiled.key")
        );
    }

    /// The strategy is not part of the name explicitly: wasmtime's
    /// compatibility hash already tells the two compilers apart. If a
    /// wasmtime upgrade changed that, this fails before artefacts mix.
    #[test]
    fn cranelift_and_winch_artefacts_get_different_entries() {
        use super::super::{CompilerStrategy, RuntimeConfig, engine_config};
        let dir = tempfile::tempdir().unwrap();
        let name = |strategy| {
            let config = RuntimeConfig {
                strategy,
                ..RuntimeConfig::default()
            };
            let engine = Engine::new(&engine_config(&config, false)).unwrap();
            let cache =
                CompileCache::open(&dir.path().join("compiled"), &engine, Arc::default()).unwrap();
            cache.entry_name(&[1; 32])
        };
        let cranelift = name(CompilerStrategy::Cranelift);
        assert_eq!(cranelift, name(CompilerStrategy::Cranelift));
        assert_ne!(cranelift, name(CompilerStrategy::Winch));
    }

    #[test]
    fn a_key_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compiled.key");
        let first = load_or_create_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_key(&path).unwrap(), first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            load_or_create_key(&path).unwrap_err().to_string(),
            "the key file has mode 644: others may read or write it (it must be 600)"
        );
    }
}
