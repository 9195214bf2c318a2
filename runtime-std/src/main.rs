//! The `tern` binary.
fn main() {
    println!("tern {}", env!("CARGO_PKG_VERSION"));
}
