use super::*;

#[test]
fn references_need_a_tag_or_digest() {
    let digest = format!("sha256:{}", "0f".repeat(32));
    for good in [
        "127.0.0.1:5000/team/plugin:v1".to_string(),
        "ghcr.io/acme/website:1.2.3".to_string(),
        format!("127.0.0.1:5000/team/plugin@{digest}"),
        format!("127.0.0.1:5000/team/plugin:v1@{digest}"),
    ] {
        let reference = parse_reference(&good).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_ne!(reference.tag(), Some("latest"), "{good}");
    }
    let parsed = parse_reference("127.0.0.1:5000/team/plugin:v1").unwrap();
    assert_eq!(parsed.registry(), "127.0.0.1:5000");
    assert_eq!(parsed.repository(), "team/plugin");
    assert_eq!(parsed.tag(), Some("v1"));

    // No tag: the port is not a tag, and `latest` is never assumed.
    for tagless in [
        "127.0.0.1:5000/team/plugin",
        "ghcr.io/acme/website",
        "website",
    ] {
        let err = parse_reference(tagless).unwrap_err();
        assert!(err.is_usage(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(tagless) && text.contains("no tag or digest"),
            "{text}"
        );
    }
    for bad in [
        "127.0.0.1:5000/Team/plugin:v1",
        "127.0.0.1:5000/team/plugin@sha256:abc",
        "127.0.0.1:5000/team/plugin:",
    ] {
        assert!(parse_reference(bad).is_err(), "{bad} accepted");
    }
}

fn wasm_manifest() -> OciImageManifest {
    let layers = [ImageLayer::new(
        b"\0asm".to_vec(),
        WASM_LAYER_MEDIA_TYPE.into(),
        None,
    )];
    let config = Config::new(b"{}".to_vec(), WASM_MANIFEST_CONFIG_MEDIA_TYPE.into(), None);
    let mut manifest = OciImageManifest::build(&layers, &config, None);
    manifest.media_type = Some(WASM_MANIFEST_MEDIA_TYPE.into());
    manifest
}

#[test]
fn layout_check_names_what_is_wrong() {
    assert_eq!(check_layout(&wasm_manifest()), Ok(()));

    let mut image = wasm_manifest();
    image.config.media_type = "application/vnd.oci.image.config.v1+json".into();
    assert!(
        check_layout(&image)
            .unwrap_err()
            .contains("container image")
    );

    let mut two = wasm_manifest();
    two.layers.push(two.layers[0].clone());
    assert!(check_layout(&two).unwrap_err().contains("2 layers"));

    let mut tar = wasm_manifest();
    tar.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar".into();
    assert!(check_layout(&tar).unwrap_err().contains("layer.v1.tar"));
}

#[test]
fn config_serialises_in_the_wg_layout() {
    let config = WasmConfig {
        created: Some("2026-12-04T00:00:00Z".into()),
        author: None,
        architecture: WASM_ARCHITECTURE.into(),
        os: COMPONENT_OS.into(),
        layer_digests: vec![format!("sha256:{}", "00".repeat(32))],
        component: Some(ComponentConfig {
            exports: vec!["kubewasm:plugin/reconciler@0.2.0".into()],
            imports: vec![],
            target: Some("kubewasm:plugin/plugin@0.2.0".into()),
        }),
    };
    let json: serde_json::Value = serde_json::to_value(&config).unwrap();
    assert_eq!(json["architecture"], "wasm");
    assert_eq!(json["os"], "wasip2");
    assert_eq!(json["layerDigests"][0], config.layer_digests[0]);
    assert_eq!(json["component"]["target"], "kubewasm:plugin/plugin@0.2.0");
    assert!(json.get("author").is_none());
    // What `wkg` writes without a component section still reads.
    let minimal: WasmConfig =
        serde_json::from_str(r#"{"architecture":"wasm","os":"wasip2","layerDigests":[]}"#).unwrap();
    assert_eq!(minimal.component, None);
}

#[test]
fn limited_buffer_refuses_past_its_limit() {
    use tokio::io::AsyncWriteExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut buffer = LimitedBuffer::new(4);
        buffer.write_all(b"1234").await.unwrap();
        let err = buffer.write_all(b"5").await.unwrap_err();
        assert!(err.to_string().contains("limit of 4 bytes"), "{err}");
        assert_eq!(buffer.bytes, b"1234");
    });
}

#[test]
fn ca_file_without_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.crt");
    std::fs::write(&path, "not a certificate").unwrap();
    let options = RegistryOptions {
        ca_files: vec![path.clone()],
        auth_file: None,
    };
    match Registry::new(&options) {
        Err(OciError::CaNotPem { path: p }) => assert_eq!(p, path),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted a CA file without a certificate"),
    }
    let missing = RegistryOptions {
        ca_files: vec![],
        auth_file: Some(dir.path().join("missing.json")),
    };
    assert!(matches!(
        Registry::new(&missing),
        Err(OciError::AuthFile { .. })
    ));
}
