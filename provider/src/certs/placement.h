// What the controller puts on an amphora for the certificates a load balancer uses:
// each referenced certificate fetched through the cert manager and turned into the
// file the agent stores (PUT /1.0/certificates/{name}, kept as
// <state_dir>/certs/<name>.pem) and banyan-proxy reads.
#pragma once

#include <map>
#include <set>
#include <string>

#include "certs/cert_manager.h"

namespace banyan::provider::certs {

struct PlacedFile {
  std::string name;  // the agent's certificate name: [A-Za-z0-9_.-], from the reference
  std::string pem;   // a TLS bundle (certificate, intermediates, key) or the PEM secret
};

struct Placement {
  std::map<std::string, PlacedFile> by_ref;  // reference -> file
};

// The file name of a reference: "tls-" or "pem-" and a hash of the reference, so a
// reference always lands in the same file and distinct ones never collide.
std::string placedName(const std::string& ref, bool tls_bundle);

// Fetches every reference (as the load balancer's project, `ctx`). The first failure
// ends it, naming the reference in the error's context.
common::Result<Placement> fetchForPlacement(CertManager& manager, const RequestContext& ctx,
                                            const std::set<std::string>& tls_bundles,
                                            const std::set<std::string>& pem_secrets);

}  // namespace banyan::provider::certs
