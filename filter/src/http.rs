//! The HTTP context: reads what the decision needs from the request, applies the answer.
//!
//! On success the client's copies of every hand-off header are removed and the filter's own
//! are set from the verified claims (RS-15): one host call per header, as a replace drops
//! every existing entry of the name. The `Authorization` header is left in place:
//! ext_authz, the next filter, re-checks revocation with the token's `jti` and then removes
//! both the bearer token and the hand-off headers before the request reaches the MCP server.
//!
//! Header values are read as bytes: the SDK's `String` getters panic on non-UTF-8 values,
//! which a client controls.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use mcp_auth_proto::headers::HANDOFF_HEADERS;

use crate::challenge::{self, Denial};
use crate::worker::{RequestFacts, Worker};

/// One request's context.
pub struct FilterRequest {
    worker: Option<Rc<Worker>>,
}

impl FilterRequest {
    pub fn new(worker: Option<Rc<Worker>>) -> Self {
        Self { worker }
    }

    fn now_secs(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn deny(&self, denial: &Denial) -> Action {
        self.send_http_response(
            denial.status,
            denial.headers(),
            Some(denial.body.as_bytes()),
        );
        Action::Pause
    }
}

impl Context for FilterRequest {}

impl HttpContext for FilterRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            return self.deny(&challenge::not_configured());
        };
        // Not the trait's `get_property`: it panics where the host reports an error.
        let route_name = hostcalls::get_property(vec!["xds", "route_name"])
            .ok()
            .flatten();
        let origin = self.get_http_request_header_bytes("origin");
        let authorization = self.get_http_request_header_bytes("authorization");
        let path = self.get_http_request_header_bytes(":path");
        let facts = RequestFacts {
            route_name: route_name.as_deref(),
            origin: origin.as_deref(),
            authorization: authorization.as_deref(),
            path: path.as_deref(),
        };
        match worker.decide(&facts, self.now_secs()) {
            Ok(admitted) => {
                let handoff = admitted.handoff_headers();
                // Every client copy goes: a header the filter sets is replaced (Envoy's
                // replace removes all entries of the name first), the others are removed.
                for name in HANDOFF_HEADERS {
                    if !handoff.iter().any(|(set, _)| set == name) {
                        self.set_http_request_header(name, None);
                    }
                }
                for (name, value) in handoff {
                    self.set_http_request_header(name, Some(value));
                }
                Action::Continue
            }
            Err(refused) => {
                debug!("refused with {}: {}", refused.denial.status, refused.reason);
                self.deny(&refused.denial)
            }
        }
    }
}
