//! The benchmark's baseline wasm filter (`cargo xtask bench`, scenario `empty_wasm`): it
//! reads the `authorization` header and lets the request through. Envoy with it, against
//! plain Envoy, is the floor cost of any proxy-wasm filter: the VM call per request and the
//! header map crossing into the VM.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopRequest))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct NoopRequest;

impl Context for NoopRequest {}

impl HttpContext for NoopRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // A header check, so the baseline does what every auth filter must at least do.
        let _present = self.get_http_request_header("authorization").is_some();
        Action::Continue
    }
}
