//! Runs the plugin's logic natively on every case under `fixtures/`, the same
//! cases the host's conformance test runs the built 0.1.0 component on. The
//! component does not use the SDK; only this runner does, through a small
//! adapter to its `Plugin` trait.

use kubewasm_guest::{Apply, Error, Event, Outcome, Plugin, PluginInfo, raw_settings};
use v01_labeler::{Settings, desired};

struct Native;

impl Plugin for Native {
    fn describe() -> PluginInfo {
        PluginInfo::new(v01_labeler::NAME, env!("CARGO_PKG_VERSION"))
    }

    fn validate_settings(settings: &str) -> Result<(), Error> {
        Settings::parse(settings).map(drop).map_err(Error::msg)
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        let settings = Settings::parse(&raw_settings()).map_err(Error::msg)?;
        Ok(
            match desired(event.is_deleted(), event.object.value(), &settings) {
                Some(applied) => Outcome::new().with(Apply::new(applied)),
                None => Outcome::new(),
            },
        )
    }
}

#[test]
fn fixtures() {
    kubewasm_guest::testing::assert_fixtures::<Native>(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures"
    ));
}
