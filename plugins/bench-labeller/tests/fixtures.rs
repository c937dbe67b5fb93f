//! Runs the plugin natively on every case under `fixtures/`, the same cases
//! the host's conformance test runs the built component on.

#[test]
fn fixtures() {
    kubewasm_guest::testing::assert_fixtures::<bench_labeller::BenchLabeller>(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures"
    ));
}
