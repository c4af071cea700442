// A throwaway PKI made with the openssl CLI for the HTTP server and client tests: a CA,
// server certificates for 127.0.0.1 and ::1 ("server", "server2"), one for 127.0.0.1
// only ("server4"), a client certificate from the CA and one from a foreign CA
// ("stranger").
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "banyan/common/http_server.h"

namespace banyan::common {

class TlsPki : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/banyan-http-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ca "
                  "-keyout ca.key -out ca.pem"), 0);
    ASSERT_EQ(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other "
                  "-keyout other.key -out other.pem"), 0);
    issue("server", "ca", "-addext subjectAltName=IP:127.0.0.1,IP:::1");
    issue("server2", "ca", "-addext subjectAltName=IP:127.0.0.1,IP:::1");
    issue("server4", "ca", "-addext subjectAltName=IP:127.0.0.1");
    issue("client", "ca", "");
    issue("stranger", "other", "");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int run(const std::string& cmd) {
    return std::system(("cd " + dir_ + " && " + cmd + " >/dev/null 2>&1").c_str());
  }
  void issue(const std::string& name, const std::string& ca, const std::string& ext) {
    ASSERT_EQ(run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + name + " " + ext +
                  " -keyout " + name + ".key -out " + name + ".csr"), 0);
    ASSERT_EQ(run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
                  ".key -CAcreateserial -days 1 -copy_extensions copy -out " + name + ".pem"), 0);
  }
  // curl's exit code; 0 means the request got a response. host: "127.0.0.1" or "[::1]".
  int curl(uint16_t port, const std::string& client, const std::string& host = "127.0.0.1") {
    std::string cert = client.empty() ? "" : " --cert " + client + ".pem --key " + client + ".key";
    return run("curl -g -sS --max-time 5 --cacert ca.pem" + cert + " https://" + host + ":" + std::to_string(port) +
               "/");
  }
  std::string servedSubject(uint16_t port) {
    std::string cmd = "cd " + dir_ + " && echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                      " -cert client.pem -key client.key 2>/dev/null | openssl x509 -noout -subject";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (p && std::fgets(buf, sizeof(buf), p)) out += buf;
    if (p) ::pclose(p);
    return out;
  }
  HttpServerOptions mtlsOptions(const std::string& server = "server") {
    HttpServerOptions o;
    o.tls = HttpServerTls{dir_ + "/" + server + ".pem", dir_ + "/" + server + ".key", dir_ + "/ca.pem"};
    return o;
  }

  std::string dir_;
};

}  // namespace banyan::common
