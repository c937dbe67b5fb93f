//! Flags of the authoring commands: `new`, `wit`, `componentize`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// A plugin contract version (`kubewasm:plugin@X`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContractArg {
    /// kubewasm:plugin@0.2.0 (owned children, mapped watches, finalizers).
    #[value(name = "0.2.0", alias = "0.2")]
    V0_2,
    /// kubewasm:plugin@0.1.0, still served for plugins built against it.
    #[value(name = "0.1.0", alias = "0.1")]
    V0_1,
}

#[derive(Debug, Args)]
pub struct WitArgs {
    /// Write `DIR/plugin.wit` instead of printing the WIT.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// The contract version.
    #[arg(long, value_enum, default_value_t = ContractArg::V0_2)]
    pub contract: ContractArg,
}

#[derive(Debug, Args)]
pub struct ComponentizeArgs {
    /// The core WebAssembly module (e.g. Go's `GOOS=wasip1` c-shared build,
    /// or clang's `wasm32-wasi` reactor).
    pub module: PathBuf,

    /// The component to write [default: MODULE with `.component.wasm`].
    #[arg(long, short)]
    pub out: Option<PathBuf>,

    /// The contract version whose `plugin` world the module implements
    /// (used unless the module embeds its own bindings metadata).
    #[arg(long, value_enum, default_value_t = ContractArg::V0_2)]
    pub contract: ContractArg,
}

/// A language `kubewasm new` scaffolds a plugin in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Go,
    Python,
    #[value(name = "ts", alias = "typescript")]
    Ts,
    #[value(name = "js", alias = "javascript")]
    Js,
    C,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name: a DNS label (lowercase letters, digits, `-`), also
    /// the project directory's name.
    pub name: String,

    /// The language to write the plugin in.
    #[arg(long, value_enum)]
    pub lang: Lang,

    /// Where to create the project directory NAME.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,

    /// The kubewasm checkout whose SDKs the project builds against (the SDKs
    /// are not published to package registries yet) [default: the checkout
    /// this binary was built from, if it is still there].
    #[arg(long, env = "KUBEWASM_SDK")]
    pub sdk: Option<PathBuf>,
}
