// Renders one load balancer's stored Octavia objects into the banyan-proxy
// configuration document (docs/proxy-config.md) that the controller PUTs to each
// amphora's agent (PUT /1.0/config). The mapping, field by field, is in
// docs/provider-render.md; it follows what Octavia's HAProxy templates do
// (octavia/common/jinja/haproxy/combined_listeners), so a Banyan amphora serves
// what a stock amphora would.
//
// renderProxyConfig is pure (no I/O, no clock); loadGraph only
// reads through the transaction it is given. All are safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"
#include "store/store.h"

namespace banyan::provider::render {

// One load balancer and every child record, as stored (bodies are the Octavia v2
// API representation written by provider/src/api). Order within each vector is the
// store's insertion order, which keeps the rendered document stable.
struct LoadBalancerGraph {
  store::Record loadbalancer;
  std::vector<store::Record> listeners, pools, members, healthmonitors, l7policies, l7rules;
};

// Reads the LB and all records with load_balancer_id == lb_id. kNotFound when the
// LB is absent; store errors are passed through.
common::Result<LoadBalancerGraph> loadGraph(store::Transaction& tx, std::string_view lb_id);

struct RenderContext {
  int64_t generation = 0;  // goes to "generation"
  // Listeners bind here; "" falls back to the LB body's vip_address.
  std::string vip_address;
  // Listeners also bind these (listener "additional_addresses"). Empty falls back
  // to the ip_address of each of the LB body's additional_vips that has one.
  std::vector<std::string> additional_vip_addresses;
  // settings.session_cookie_secret when non-empty (both amphorae of a pair need the
  // same one for HTTP_COOKIE persistence to survive a failover).
  std::string session_cookie_secret;
  // Objects in PENDING_DELETE are left out (being deleted) unless this is set.
  // DELETED objects are always left out.
  bool include_pending_delete = false;
  // Certificate container reference (default_tls_container_ref, sni_container_refs,
  // client_ca_tls_container_ref, client_crl_container_ref, and the pool's
  // tls_container_ref, ca_tls_container_ref, crl_container_ref) -> absolute path of
  // the PEM file on the amphora. The controller places each file with the agent's
  // PUT /1.0/certificates/{name} (stored as <state_dir>/certs/<name>.pem) before it
  // pushes the document. A reference that is needed but missing here is an error.
  std::map<std::string, std::string> certificate_paths;
};

// The certificate references a render with this graph and context uses, by what the
// amphora must be given for each: a TLS certificate with its key (listener default and
// SNI certificates, a pool's client certificate), or a PEM secret as stored (client CA,
// CRL, a pool's CA and CRL). Only what the document would carry: objects being deleted
// (unless ctx.include_pending_delete), disabled load balancers and unused pools add
// nothing. ctx.certificate_paths is not consulted. Errors as renderProxyConfig's.
struct CertificateNeeds {
  std::set<std::string> tls_bundles;
  std::set<std::string> pem_secrets;
};
common::Result<CertificateNeeds> neededCertificates(const LoadBalancerGraph& graph, const RenderContext& ctx);

// The document, compact JSON. Errors name the object as context "<kind> <id>":
//  - kInvalidArgument: an object banyan-proxy cannot run (SCTP listeners, pools and
//    health monitors; L7 policies on a PROMETHEUS listener; tls_enabled on a
//    non-HTTP pool) or a stored body that is not what the API writes. L7 policies
//    of TCP and HTTPS listeners are rendered (the proxy routes on the SNI); those
//    of UDP listeners are left out, with the pools only they refer to;
//  - kUnavailable: a certificate the document needs has no entry in
//    ctx.certificate_paths (with an empty map: "TERMINATED_HTTPS needs a
//    certificate manager; none is configured").
common::Result<std::string> renderProxyConfig(const LoadBalancerGraph& graph, const RenderContext& ctx);

}  // namespace banyan::provider::render
