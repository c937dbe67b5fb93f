//! Plugins delivered as `deploy/README.md` says: the plugin ConfigMap
//! filled with `kubectl` survives re-applying the base, and the README's
//! overlay (plugin RBAC, image, plugins from an image volume) renders and
//! applies.
//!
//! The base uses fixed names (namespace `kubewasm-system`, ClusterRole
//! `kubewasm-host`), so every test here is idempotent and tolerates running
//! next to the others and again on the same cluster. No kubelet runs, so the
//! Deployment never gets Pods; the tests check what the API server stores.
//! The other `deploy_*.rs` files test the rest of `deploy/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kubewasm_e2e::ControlPlane;
use kubewasm_e2e::deploy::{
    NAMESPACE, apply_base, deploy_dir, kubectl, kubectl_offline, yaml_documents,
};

/// The field manager `deploy/README.md` fills the plugin ConfigMap with.
const PLUGINS_FIELD_MANAGER: &str = "kubewasm-plugins";

/// The files a ConfigMap volume of `cm` holds, by name.
fn mounted_files(cm: ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let text = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()));
    let binary = cm
        .binary_data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0));
    text.chain(binary).collect()
}

/// `kubectl create configmap kubewasm-plugins ... --from-file=DIR
/// --dry-run=client -o yaml | kubectl apply --server-side
/// --field-manager=kubewasm-plugins -f -`, as deploy/README.md says.
async fn fill_plugins_configmap(dir: &Path) -> anyhow::Result<()> {
    let from_file = format!("--from-file={}/", dir.display());
    let manifest = kubectl(
        [
            "create",
            "configmap",
            "kubewasm-plugins",
            "--namespace",
            NAMESPACE,
            &from_file,
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        None,
    )
    .await?;
    kubectl(
        [
            "apply",
            "--server-side",
            &format!("--field-manager={PLUGINS_FIELD_MANAGER}"),
            "-f",
            "-",
        ],
        Some(manifest.into_bytes()),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn plugin_configmap_filled_as_documented_survives_reapplying_the_base() -> anyhow::Result<()>
{
    apply_base().await?;
    let client = ControlPlane::shared().await?.client().await?;
    let configmaps = Api::<ConfigMap>::namespaced(client, NAMESPACE);

    // A component larger than the 256 KiB a client-side apply could keep in
    // its last-applied annotation, and one small one, with settings.
    let dir = tempfile::tempdir()?;
    let big: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain([0xff, 0xfe])
        .collect();
    std::fs::write(dir.path().join("big.wasm"), &big)?;
    std::fs::write(dir.path().join("small.wasm"), b"\0asm\x0d\0\x01\0")?;
    std::fs::write(
        dir.path().join("big.settings.json"),
        r#"{"labels": ["team"]}"#,
    )?;
    fill_plugins_configmap(dir.path()).await?;

    // kubectl puts a file under binaryData unless it is valid UTF-8; the
    // mounted files are the same either way.
    let check = |cm: ConfigMap, want_small: bool| -> anyhow::Result<()> {
        let files = mounted_files(cm);
        ensure!(
            files.get("big.wasm") == Some(&big),
            "big.wasm is missing or changed; files: {:?}",
            files.keys().collect::<Vec<_>>()
        );
        ensure!(
            files.contains_key("small.wasm") == want_small,
            "small.wasm present: {}, expected {want_small}",
            files.contains_key("small.wasm")
        );
        ensure!(
            files.get("big.settings.json").map(Vec::as_slice)
                == Some(br#"{"labels": ["team"]}"#.as_slice()),
            "settings missing or changed: {:?}",
            files.keys().collect::<Vec<_>>()
        );
        Ok(())
    };
    check(configmaps.get("kubewasm-plugins").await?, true)?;

    // Applying the base again, server-side or client-side, keeps the plugins.
    apply_base().await?;
    check(configmaps.get("kubewasm-plugins").await?, true)
        .context("after `kubectl apply --server-side -k deploy/`")?;
    kubectl(["apply", "-k", "deploy/"], None).await?;
    check(configmaps.get("kubewasm-plugins").await?, true)
        .context("after `kubectl apply -k deploy/`")?;

    // Filling it again from a directory without a plugin removes that plugin.
    std::fs::remove_file(dir.path().join("small.wasm"))?;
    fill_plugins_configmap(dir.path()).await?;
    check(configmaps.get("kubewasm-plugins").await?, false)
        .context("after removing small.wasm from the directory")?;
    Ok(())
}

/// `to` relative to the directory `from` (both absolute), as kustomize
/// wants local resources.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    std::iter::repeat_n(Path::new(".."), from.len() - common)
        .map(Path::to_path_buf)
        .chain(to[common..].iter().map(|c| PathBuf::from(c.as_os_str())))
        .collect()
}

#[tokio::test]
async fn readme_overlay_with_plugin_rbac_image_and_plugins_from_an_image_applies()
-> anyhow::Result<()> {
    // The overlay deploy/README.md shows, in a directory of the operator's.
    let overlay = tempfile::tempdir()?;
    let base = relative_path(
        &overlay.path().canonicalize()?,
        &deploy_dir().canonicalize()?,
    );
    for file in ["plugins-rbac.yaml", "plugins-image-volume.yaml"] {
        std::fs::copy(
            deploy_dir().join("examples").join(file),
            overlay.path().join(file),
        )?;
    }
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\n\
             kind: Kustomization\n\
             resources:\n  - {}\n  - plugins-rbac.yaml\n\
             images:\n  - name: ghcr.io/kubewasm/kubewasm\n    \
             newName: registry.example.com/kubewasm\n    newTag: 0.1.0\n\
             patches:\n  - path: plugins-image-volume.yaml\n",
            base.display()
        ),
    )?;
    let dir = overlay.path().display().to_string();

    let rendered = kubectl_offline(&["kustomize", &dir])?;
    let objects = yaml_documents(&rendered, "the README's overlay")?;
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .context("no Deployment")?;
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example.com/kubewasm:0.1.0"
    );
    let volumes = pod["volumes"].as_array().context("no volumes")?;
    let plugins = volumes
        .iter()
        .find(|v| v["name"] == "plugins")
        .context("no plugins volume")?;
    assert!(plugins["image"]["reference"].is_string(), "{plugins}");
    assert!(plugins.get("configMap").is_none(), "two sources: {plugins}");
    let plugin_roles = objects
        .iter()
        .filter(|o| {
            o["kind"] == "ClusterRole" && o["metadata"]["labels"]["kubewasm.dev/plugin"].is_string()
        })
        .count();
    assert_eq!(plugin_roles, 3);

    // The API server accepts it (a dry run: the other tests check the base).
    kubectl(
        ["apply", "--server-side", "--dry-run=server", "-k", &dir],
        None,
    )
    .await?;
    Ok(())
}
