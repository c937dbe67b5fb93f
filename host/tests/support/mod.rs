//! Tiny plugins written by hand in WAT, turned into components against the
//! real WIT package with wit-component: no guest toolchain needed.
//!
//! They target the previous contract, `kubewasm:plugin@0.1.0`
//! (`wit/v0.1.0/`), whose canonical ABI layouts are the ones written out
//! below; every sandbox and budget test therefore also shows that the host
//! still runs 0.1.0 components through the same limits. The 0.2.0 path is
//! covered by the SDK-built example plugins (conformance and e2e tests).
//!
//! Every plugin shares one core module skeleton: a bump allocator, a
//! `describe` that returns static data (it subscribes to core `v1`
//! ConfigMaps, so it may read them), an accepting `validate-settings`, and a
//! `reconcile` whose body each test supplies. The canonical ABI layouts used
//! in the data segments are written out next to each constant.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubewasm::cluster::cache::{ObjectReader, ReadError};
use kubewasm::cluster::object::CachedObject;
use kubewasm::cmd::cli::{BaselineCompile, RuntimeArgs};
use kubewasm::contract::GroupKind;
use kubewasm::contract::selector::LabelSelector;
use kubewasm::contract::{Event, EventType, ResourceKind};
use kubewasm::runtime::{CallError, Plugin, ReadAccess, Runtime};
use serde_json::{Value, json};

pub const EXPORT: &str = "kubewasm:plugin/reconciler@0.1.0";

/// Return area of `describe`: plugin-info = {name, version, subscriptions,
/// writes}, each a (ptr, len) pair of i32.
const DESCRIBE_RET: u32 = 0x200;
/// Return area of `validate-settings`: result<_, string>, discriminant 0 = ok.
const SETTINGS_RET: u32 = 0x300;
/// Return area of `reconcile` for ok(outcome) with no intents and
/// `requeue-after-ms = some(5000)`: result discriminant at +0, outcome at +8:
/// intents (ptr, len) at +8, option<u64> discriminant at +16, value at +24.
pub const OK_REQUEUE_RET: u32 = 0x400;
/// Return area for ok(outcome) with one `create` intent whose object is 1 MiB
/// of NUL bytes at 0x10000 (variant discriminant 3 = create, payload at +4).
pub const OVERSIZED_RET: u32 = 0x500;
/// Return area for ok(outcome) with one `create` intent whose object is `{nope`.
pub const MALFORMED_RET: u32 = 0x580;
/// Return area for err(reconcile-error { message: "not ready" }).
pub const ERR_RET: u32 = 0x900;
/// The one subscription of `describe`: {group "", version "v1", kind
/// "ConfigMap", namespaces [], label-selector none}, 44 bytes: three
/// strings at +0, +8, +16, a list at +24, option<string> at +32.
const SUBSCRIPTION: u32 = 0x1000;
/// The string `v1` (2 bytes), usable as an api-version argument.
pub const V1: u32 = 0x1100;
/// The string `ConfigMap` (9 bytes), usable as a kind argument.
pub const CONFIGMAP: u32 = 0x1110;
/// Free scratch memory (e.g. return areas of host calls), up to 0x2000.
pub const SCRATCH: u32 = 0x1200;
/// The core import of `list-objects`: api-version, kind (string pairs),
/// namespace and label-selector (option<string> triples), return pointer.
/// The result<list<string>, string> is written at the return pointer:
/// discriminant at +0, (ptr, len) at +4.
pub const LIST_OBJECTS_IMPORT: &str = r#"(import "kubewasm:plugin/host@0.1.0" "list-objects" (func $list_objects (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))"#;

/// WAT that lists every `v1` ConfigMap the host can read, result at [`SCRATCH`].
pub fn list_configmaps() -> String {
    format!(
        "(call $list_objects (i32.const {V1}) (i32.const 2) (i32.const {CONFIGMAP}) (i32.const 9)
           (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
           (i32.const {SCRATCH}))"
    )
}

fn le32(values: &[u32]) -> String {
    values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .map(|b| format!("\\{b:02x}"))
        .collect()
}

fn le64(value: u64) -> String {
    value
        .to_le_bytes()
        .iter()
        .map(|b| format!("\\{b:02x}"))
        .collect()
}

/// A core module implementing the kubewasm exports; `reconcile_body` must
/// leave the address of a return area on the stack. `extra` adds module
/// fields (imports go first, so they are given separately).
pub fn core_module(name: &str, imports: &str, reconcile_body: &str, extra: &str) -> String {
    let name_len = name.len() as u32;
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 0x20000))
  (global $count (mut i64) (i64.const 0))
  (data (i32.const 0x100) "{name}")
  (data (i32.const 0x110) "1.0.0")
  (data (i32.const {DESCRIBE_RET}) "{describe}")
  (data (i32.const {OK_REQUEUE_RET}) "\00\00\00\00\00\00\00\00{empty_list}\01\00\00\00\00\00\00\00{requeue}")
  (data (i32.const {OVERSIZED_RET}) "\00\00\00\00\00\00\00\00{oversized_list}\00")
  (data (i32.const 0x600) "\03\00\00\00{oversized_string}")
  (data (i32.const {MALFORMED_RET}) "\00\00\00\00\00\00\00\00{malformed_list}\00")
  (data (i32.const 0x680) "\03\00\00\00{malformed_string}")
  (data (i32.const 0x700) "{{nope")
  (data (i32.const {ERR_RET}) "\01\00\00\00\00\00\00\00{err_string}")
  (data (i32.const 0x980) "not ready")
  (data (i32.const {SUBSCRIPTION}) "{subscription}")
  (data (i32.const {V1}) "v1")
  (data (i32.const {CONFIGMAP}) "ConfigMap")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add
                  (i32.div_u
                    (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
                    (i32.const 65536))
                  (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (local.get $ptr))
  (func (export "{EXPORT}#describe") (result i32)
    (i32.const {DESCRIBE_RET}))
  (func (export "{EXPORT}#validate-settings") (param i32 i32) (result i32)
    (i32.const {SETTINGS_RET}))
  (func (export "{EXPORT}#reconcile")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    {reconcile_body})
  {extra}
)"#,
        describe = le32(&[0x100, name_len, 0x110, 5, SUBSCRIPTION, 1, 0, 0]),
        subscription = le32(&[0, 0, V1, 2, CONFIGMAP, 9, 0, 0, 0, 0, 0]),
        empty_list = le32(&[0, 0]),
        requeue = le64(5000),
        oversized_list = le32(&[0x600, 1]),
        oversized_string = le32(&[0x10000, 1 << 20]),
        malformed_list = le32(&[0x680, 1]),
        malformed_string = le32(&[0x700, 5]),
        err_string = le32(&[0x980, 9]),
    )
}

/// Encodes a core module (WAT) as a component of `world` in the WIT package
/// at `wit/v0.1.0/` plus any `extra_wit` packages.
pub fn componentize(core_wat: &str, world: &str, extra_wit: &[&str]) -> Vec<u8> {
    let mut module = wat::parse_str(core_wat).expect("test WAT parses");
    let mut resolve = wit_parser::Resolve::default();
    let wit_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/v0.1.0");
    let (kubewasm, _) = resolve.push_dir(&wit_dir).expect("wit/v0.1.0 parses");
    let mut main = kubewasm;
    for (i, text) in extra_wit.iter().enumerate() {
        main = resolve
            .push_str(format!("extra{i}.wit"), text)
            .expect("extra WIT parses");
    }
    let world = resolve
        .select_world(&[main], Some(world))
        .expect("world exists");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module is accepted")
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// A `reconcile` body that never returns.
pub const LOOP_FOREVER: &str = "(loop $forever (br $forever)) unreachable";
/// A `reconcile` body that grows memory by 1 MiB until refused, then traps.
pub const GROW_FOREVER: &str =
    "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable";

/// `err` is the memory limit error of `plugin` whose limit is `limit` bytes,
/// for a request past it.
pub fn assert_memory_limit(err: &CallError, plugin: &str, limit: usize) {
    let CallError::MemoryLimit {
        plugin: name,
        limit: actual,
        requested,
    } = err
    else {
        panic!("expected a memory limit error, got {err:?}");
    };
    assert_eq!(name, plugin);
    assert_eq!(*actual, limit);
    assert!(*requested > limit);
    assert!(err.to_string().starts_with(&format!(
        "plugin {plugin} exceeded its memory limit of {limit} bytes"
    )));
}

/// A kubewasm plugin component whose `reconcile` runs `reconcile_body`.
pub fn plugin(name: &str, reconcile_body: &str) -> Vec<u8> {
    componentize(&core_module(name, "", reconcile_body, ""), "plugin", &[])
}

/// Loads the plugin [`plugin`] builds, or panics with why not.
pub fn load(runtime: &Runtime, name: &str, reconcile_body: &str) -> Plugin {
    runtime
        .load(name, &plugin(name, reconcile_body))
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

/// Reads of nothing, settings `{}`.
pub fn access() -> ReadAccess {
    ReadAccess::offline("{}")
}

/// A healthy plugin still answers after a hostile call on the same runtime.
pub fn assert_still_serving(runtime: &Runtime) {
    let healthy = load(runtime, "healthy", &format!("(i32.const {OK_REQUEUE_RET})"));
    let outcome = healthy.reconcile(&event(), access()).expect("healthy call");
    assert_eq!(outcome.requeue_after_ms, Some(5000));
}

/// An `applied` event of a core `v1` ConfigMap carrying `object`.
pub fn configmap_event(object: Value) -> Event {
    Event {
        event_type: EventType::Applied,
        kind: ResourceKind {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        },
        object: Arc::new(CachedObject::from_value(&object)),
    }
}

/// The event the runtime tests reconcile: ConfigMap `b/a`.
pub fn event() -> Event {
    configmap_event(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "b"}}),
    )
}

/// A cache that takes `delay` to answer a list (a slow host call, or one
/// that holds the caller's memory meanwhile) of `count` copies of one
/// 500-byte ConfigMap.
pub struct SlowReader {
    pub delay: Duration,
    pub count: usize,
}

impl ObjectReader for SlowReader {
    fn get(
        &self,
        _: &GroupKind,
        _: Option<&str>,
        _: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        Ok(None)
    }

    fn list(
        &self,
        _: &GroupKind,
        _: Option<&str>,
        _: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        std::thread::sleep(self.delay);
        let object = Arc::new(CachedObject::from_value(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "big", "namespace": "b"},
            "data": {"payload": "x".repeat(420)}
        })));
        Ok(vec![object; self.count])
    }
}

/// WIT for the parts of WASI stderr a plugin uses, as Rust's std does.
const WASI_IO: &str = r#"
    package wasi:io@0.2.6;
    interface error { resource error; }
    interface streams {
        use error.{error};
        variant stream-error { last-operation-failed(error), closed }
        resource output-stream {
            blocking-write-and-flush: func(contents: list<u8>) -> result<_, stream-error>;
        }
    }
"#;
const WASI_CLI: &str = r#"
    package wasi:cli@0.2.6;
    interface stderr {
        use wasi:io/streams@0.2.6.{output-stream};
        get-stderr: func() -> output-stream;
    }
    world chatty-plugin {
        import stderr;
        include kubewasm:plugin/plugin@0.1.0;
    }
"#;

/// A plugin that writes 300 chunks of 4 KiB (1.2 MiB) to stderr through
/// WASI and then "done" and, like Rust's `eprintln!`, traps if a write
/// fails; then returns Ok with a requeue of 5 s (`ok`) or traps.
pub fn chatty(name: &str, ok: bool) -> Vec<u8> {
    let imports = r#"
        (import "wasi:cli/stderr@0.2.6" "get-stderr" (func $get_stderr (result i32)))
        (import "wasi:io/streams@0.2.6" "[method]output-stream.blocking-write-and-flush"
            (func $write (param i32 i32 i32 i32)))"#;
    let end = match ok {
        true => format!("(i32.const {OK_REQUEUE_RET})"),
        false => "unreachable".to_string(),
    };
    let body = format!(
        "(local $stream i32) (local $i i32)
        (local.set $stream (call $get_stderr))
        (memory.fill (i32.const 0x10000) (i32.const 0x78) (i32.const 4096))
        (block $done (loop $chunk
          (br_if $done (i32.ge_u (local.get $i) (i32.const 300)))
          (call $write (local.get $stream) (i32.const 0x10000) (i32.const 4096) (i32.const {SCRATCH}))
          (if (i32.load8_u (i32.const {SCRATCH})) (then unreachable))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $chunk)))
        (call $write (local.get $stream) (i32.const 0x1500) (i32.const 4) (i32.const {SCRATCH}))
        (if (i32.load8_u (i32.const {SCRATCH})) (then unreachable))
        {end}"
    );
    let core = core_module(name, imports, &body, r#"(data (i32.const 0x1500) "done")"#);
    componentize(&core, "chatty-plugin", &[WASI_IO, WASI_CLI])
}

/// The CLI's runtime flags at their defaults but a generous call timeout
/// (a loaded 2-core CI machine, JavaScript components) and no baseline
/// compile (offline runs compile optimized).
pub fn runtime_args() -> RuntimeArgs {
    RuntimeArgs {
        max_memory_mib: 128,
        call_timeout_ms: 10_000,
        max_result_kib: 4096,
        max_intents: 1000,
        max_host_read_mib: 64,
        plugin_memory_budget_mib: 1024,
        max_plugin_file_mib: 64,
        compile_cache: None,
        no_compile_cache: false,
        baseline_compile: BaselineCompile::Never,
    }
}
