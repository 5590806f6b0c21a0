//! The wasm VM's environment: what Envoy's `vm_config.environment_variables` passes in
//! (`host_env_keys` copies variables of Envoy's own process, `key_values` sets them), read
//! through WASI's `environ_get`, which Envoy provides to every module. Secrets come this way
//! rather than in the plugin configuration, which Envoy's admin `config_dump` prints.

/// The value of the VM's environment variable `name`, if it is set.
pub fn var(name: &str) -> Option<String> {
    variables().into_iter().find_map(|entry| {
        entry
            .strip_prefix(name)?
            .strip_prefix('=')
            .map(str::to_owned)
    })
}

/// FFI glue for the host's WASI ABI: the one place in the filter with `unsafe`.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
fn variables() -> Vec<String> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn environ_sizes_get(count: *mut usize, buf_size: *mut usize) -> u16;
        fn environ_get(environ: *mut *mut u8, buf: *mut u8) -> u16;
    }
    let (mut count, mut size) = (0usize, 0usize);
    // SAFETY: both pointers are valid for one write each.
    if unsafe { environ_sizes_get(&mut count, &mut size) } != 0 || count == 0 {
        return Vec::new();
    }
    let mut pointers = vec![std::ptr::null_mut::<u8>(); count];
    let mut buf = vec![0u8; size];
    // SAFETY: WASI writes `count` pointers into `pointers` and `size` bytes into `buf`,
    // whose lengths are what `environ_sizes_get` asked for.
    if unsafe { environ_get(pointers.as_mut_ptr(), buf.as_mut_ptr()) } != 0 {
        return Vec::new();
    }
    // Each entry is `NAME=value\0`; the pointers only say where each starts, in `buf`.
    buf.split(|b| *b == 0)
        .take(count)
        .filter_map(|entry| std::str::from_utf8(entry).ok().map(str::to_owned))
        .collect()
}

#[cfg(not(target_arch = "wasm32"))]
fn variables() -> Vec<String> {
    std::env::vars().map(|(k, v)| format!("{k}={v}")).collect()
}
