//! Runs the plugin natively (`cargo test`) on every case under `fixtures/`,
//! the cases `kubewasm test` runs the built component on.

#[test]
fn fixtures() {
    kubewasm_guest::testing::assert_fixtures::<{{name_snake}}::Component>(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures"
    ));
}
