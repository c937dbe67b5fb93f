//! Rebuilds the binary when a `kubewasm new` template or the contract's WIT
//! changes: both are compiled in (`include_dir!`, `include_str!`), and
//! `include_dir!` does not tell cargo which files it read.

fn main() {
    println!("cargo:rerun-if-changed=../templates");
    println!("cargo:rerun-if-changed=../wit");
}
