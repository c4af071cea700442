// Shared by the TLS integration suites: configs with a TERMINATED_HTTPS
// listener over the test PKI, and small helpers around the real clients.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "fixtures.h"
#include "test_pki.h"
#include "tls_client.h"
#include "tls_member.h"

namespace banyan::test {

// Listener "l1" (TERMINATED_HTTPS, default certificate default.example.test,
// SNI certificates www and api) -> pool "p1" (HTTP).
inline ConfigSpec tlsConfig(uint16_t port, std::vector<MemberSpec> members, int workers = 2) {
  const TestPki& pki = testPki();
  ConfigSpec c = simpleConfig(port, std::move(members), "TERMINATED_HTTPS", "HTTP");
  c.workers = workers;
  ListenerSpec& l = c.listener("l1");
  l.extra["default_tls_certificate"] = jsonString(pki.default_bundle);
  l.extra["sni_certificates"] =
      "[" + jsonString(pki.www_bundle) + "," + jsonString(pki.api_bundle) + "]";
  return c;
}

inline MemberSpec memberAt(const std::string& id, const std::string& address, uint16_t port) {
  MemberSpec m;
  m.id = id;
  m.address = address;
  m.protocol_port = port;
  return m;
}

// The TLS member as a pool member (its id is its name).
inline MemberSpec memberOf(const TestTlsMember& m) { return memberAt(m.name(), m.address(), m.port()); }

inline std::string jsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + jsonString(items[i]);
  return out + "]";
}

inline TlsClientOptions sniOptions(const std::string& sni) {
  TlsClientOptions o;
  o.sni = sni;
  return o;
}

// `openssl s_client` sending one request with Connection: close; -ign_eof keeps
// it until the proxy closes, so the response is in the output.
inline ToolResult sClient(uint16_t port, std::vector<std::string> args,
                          const std::string& target = "/") {
  std::vector<std::string> cmd = {"openssl", "s_client", "-connect",
                                  "127.0.0.1:" + std::to_string(port), "-ign_eof"};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return runTool(cmd, "GET " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", 10000);
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace banyan::test
