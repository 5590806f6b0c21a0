//! The HTTP context: reads what the decision needs from the request, applies the answer.
//!
//! On success the filter replaces the one hand-off header ([`HANDOFF_HEADER`]) with the
//! verified claims (RS-15): a replace drops every client-sent copy first, and it is the only
//! host call the filter makes besides its four reads. The `Authorization` header is left in
//! place: ext_authz, the next filter, re-checks revocation with the token's `jti` and then
//! removes both the bearer token and the hand-off header before the request reaches the MCP
//! server.
//!
//! Header values are read as bytes: the SDK's `String` getters panic on non-UTF-8 values,
//! which a client controls.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use mcp_auth_proto::handoff::HANDOFF_HEADER;

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
                self.set_http_request_header(HANDOFF_HEADER, Some(&admitted.handoff_value()));
                Action::Continue
            }
            Err(refused) => {
                debug!("refused with {}: {}", refused.denial.status, refused.reason);
                self.deny(&refused.denial)
            }
        }
    }
}
