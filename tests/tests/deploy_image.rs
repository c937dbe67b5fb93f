//! The container image, built as `deploy/README.md` says: `deploy/image.sh`
//! assembles it with buildah from Debian (no Docker engine), runs
//! `/kubewasm --version` inside it as user 65532, and pushes it to the test
//! registry (`tests/registry/`: TLS, basic auth). The test then reads the
//! image back from the registry as a container runtime would (manifest by
//! tag, config, layer, every digest checked) and asserts what a user relies
//! on: user `65532:65532`, entrypoint `["/kubewasm"]`, the version label,
//! the binary in the layer byte for byte, and that the layer unpacked on its
//! own starts it.
//!
//! The image packages the debug binary the tests already use (`--binary`),
//! so CI builds the host once. Needs root and buildah (tests/run.sh installs
//! Debian's package) like the script; fails rather than skips without them.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, ensure};
use kubewasm_e2e::host::{kubewasm_binary, repo};
use kubewasm_e2e::registry::TestRegistry;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The workspace version (the tests crate inherits it): what the image's
/// label and `kubewasm --version` must say.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// One tag for every run, so the script's local storage keeps one test image.
const TAG: &str = "e2e";
const NONROOT: u32 = 65532;

/// The image as the registry serves it.
struct Pulled {
    digest: String,
    manifest: OciImageManifest,
    config: Value,
    layer: Vec<u8>,
}

async fn pull(registry: &TestRegistry, reference: &str) -> anyhow::Result<Pulled> {
    // reqwest needs a process-wide rustls provider; an `Err` means one is set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(&registry.ca).context("reading the registry's CA")?;
    let client = Client::try_from(ClientConfig {
        extra_root_certificates: vec![Certificate {
            encoding: CertificateEncoding::Pem,
            data: ca,
        }],
        ..ClientConfig::default()
    })?;
    let auth = RegistryAuth::Basic(registry.user.clone(), registry.password.clone());
    let reference: Reference = reference.parse()?;
    let (manifest, digest, config) = client
        .pull_manifest_and_config(&reference, &auth)
        .await
        .with_context(|| format!("pulling the manifest and config of {reference}"))?;
    let layer = manifest
        .layers
        .first()
        .context("the manifest has no layer")?;
    let mut bytes = Vec::new();
    // `pull_blob` fails when the content does not match the descriptor.
    client
        .pull_blob(&reference, layer, &mut bytes)
        .await
        .with_context(|| format!("pulling layer {} of {reference}", layer.digest))?;
    Ok(Pulled {
        digest,
        config: serde_json::from_str(&config).context("the config is not JSON")?,
        manifest,
        layer: bytes,
    })
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut hash = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hash)?;
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

/// Writes to a file and hashes what it writes.
struct Tee {
    file: std::fs::File,
    hash: Sha256,
    len: u64,
}

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Runs `/kubewasm --version` in `root` as the image's user, as the script
/// does in buildah's mount of the image.
fn version_inside(root: &Path) -> anyhow::Result<String> {
    let output = Command::new("chroot")
        .arg(format!("--userspec={NONROOT}:{NONROOT}"))
        .arg(root)
        .args(["/kubewasm", "--version"])
        .output()
        .context("running chroot")?;
    ensure!(
        output.status.success(),
        "/kubewasm --version in the unpacked layer failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[test]
fn the_image_is_built_without_docker_runs_kubewasm_as_nonroot_and_is_pushed() -> anyhow::Result<()>
{
    let registry = TestRegistry::shared()?;
    let binary = kubewasm_binary();
    let repository = format!("{}/kubewasm", registry.host);

    let started = Instant::now();
    let output = Command::new("bash")
        .arg(repo().join("deploy/image.sh"))
        .arg("--binary")
        .arg(&binary)
        .args(["--tag", TAG, "--push", &repository])
        .arg("--auth")
        .arg(&registry.auth)
        .arg("--ca")
        .arg(&registry.ca)
        .output()
        .context("running deploy/image.sh")?;
    let script_time = started.elapsed();
    let log = String::from_utf8_lossy(&output.stderr);
    eprint!("{log}");
    ensure!(
        output.status.success(),
        "deploy/image.sh failed ({}); its log is above (it needs root and buildah: \
         apt-get install --no-install-recommends buildah, as tests/run.sh does)",
        output.status
    );
    let pinned = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let printed_digest = pinned
        .strip_prefix(&format!("{repository}:{TAG}@"))
        .with_context(|| format!("image.sh printed {pinned:?}, not {repository}:{TAG}@sha256:…"))?;
    ensure!(
        log.contains(&format!(
            "as {NONROOT}:{NONROOT}: /kubewasm --version prints 'kubewasm {VERSION}'"
        )),
        "image.sh did not report the binary running inside the image"
    );

    // By tag: the registry serves what the script pushed.
    let runtime = tokio::runtime::Runtime::new()?;
    let image = runtime.block_on(pull(registry, &format!("{repository}:{TAG}")))?;
    assert_eq!(
        image.digest, printed_digest,
        "the tag names another manifest"
    );
    let manifest = &image.manifest;
    assert_eq!(
        manifest.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        manifest.config.media_type,
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(manifest.layers.len(), 1, "one layer, FROM scratch");
    let layer = &manifest.layers[0];
    assert_eq!(
        layer.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(sha256(&image.layer), layer.digest);

    // The config a runtime starts the container from.
    let config = &image.config;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], arch);
    assert_eq!(config["config"]["User"], format!("{NONROOT}:{NONROOT}"));
    assert_eq!(config["config"]["Entrypoint"], json!(["/kubewasm"]));
    assert_eq!(config["config"]["Cmd"], json!(["--help"]));
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(labels["org.opencontainers.image.title"], "kubewasm");
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");

    // The layer: its uncompressed digest is the config's diff_id (what a
    // runtime checks on unpacking), and it unpacks into a root that starts.
    // Streamed: with the debug binary the tar is ~600 MB.
    let dir = tempfile::tempdir()?;
    let tar_path = dir.path().join("layer.tar");
    let mut tar = Tee {
        file: std::fs::File::create(&tar_path)?,
        hash: Sha256::new(),
        len: 0,
    };
    std::io::copy(
        &mut flate2::read::GzDecoder::new(image.layer.as_slice()),
        &mut tar,
    )
    .context("the layer is not gzip")?;
    let diff_id = format!("sha256:{}", hex::encode(tar.hash.finalize()));
    assert_eq!(config["rootfs"]["diff_ids"], json!([diff_id]));
    let root = dir.path().join("root");
    std::fs::create_dir(&root)?;
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "--same-owner", "--same-permissions"])
        .output()?;
    ensure!(
        untar.status.success(),
        "tar -xf of the layer failed: {}",
        String::from_utf8_lossy(&untar.stderr)
    );

    assert_eq!(
        file_sha256(&root.join("kubewasm")).context("no /kubewasm in the layer")?,
        file_sha256(&binary)?,
        "/kubewasm in the image differs from {}",
        binary.display()
    );
    let mode = std::fs::metadata(root.join("kubewasm"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "/kubewasm mode {mode:o}");
    let home = std::fs::metadata(root.join("home/nonroot"))?;
    assert_eq!((home.uid(), home.gid()), (NONROOT, NONROOT));
    assert_eq!(home.permissions().mode() & 0o777, 0o700);
    let passwd = std::fs::read_to_string(root.join("etc/passwd"))?;
    assert!(
        passwd.contains(&format!("\nnonroot:x:{NONROOT}:{NONROOT}:")),
        "{passwd}"
    );
    let cas = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt"))?;
    assert!(cas.contains("-----BEGIN CERTIFICATE-----"));
    assert_eq!(version_inside(&root)?, format!("kubewasm {VERSION}"));

    eprintln!(
        "deploy_image: image.sh (build, check, push) {:.1} s; layer {:.1} MB gzip, {:.1} MB tar, \
         binary {:.1} MB",
        script_time.as_secs_f64(),
        layer.size as f64 / 1e6,
        tar.len as f64 / 1e6,
        std::fs::metadata(&binary)?.len() as f64 / 1e6
    );
    Ok(())
}
