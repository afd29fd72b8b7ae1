//! The shim's own name, as other programs link to it: the SONAME on Linux,
//! `@rpath/<file>` as the install name on macOS (cargo sets neither for a
//! cdylib; test/prebuilds.test.ts reads it).
fn main() {
    let file = match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") => "-Wl,-install_name,@rpath/libddffi_batch.dylib",
        _ => "-Wl,-soname,libddffi_batch.so",
    };
    println!("cargo:rustc-cdylib-link-arg={file}");
}
