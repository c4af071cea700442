// A throwaway PKI made with the openssl CLI in a temp dir: a root CA, an intermediate,
// a leaf (SANs www.example.com and *.example.org) signed by the intermediate, a second
// key, the leaf as PKCS12, the leaf key encrypted, and a CRL of the root.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace banyan::provider::certs::test {

class TestPki {
 public:
  TestPki() {
    char tmpl[] = "/tmp/banyan-certs-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
        "-out ca.pem -days 30 -subj /CN=Test-Root "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout int.key -out "
        "int.csr -subj /CN=Test-Intermediate");
    write("int.ext", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
    run("openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out int.pem -days "
        "30 "
        "-extfile int.ext");
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout leaf.key -out "
        "leaf.csr -subj /CN=www.example.com");
    write("leaf.ext", "subjectAltName=DNS:www.example.com,DNS:*.example.org\n");
    run("openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -out leaf.pem "
        "-days 30 "
        "-extfile leaf.ext");
    run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out other.key");
    run("openssl pkcs12 -export -in leaf.pem -inkey leaf.key -certfile int.pem -passout pass: -out "
        "leaf.p12");
    run("openssl pkcs12 -export -in leaf.pem -inkey leaf.key -passout pass:secret -out "
        "leaf-pass.p12");
    run("openssl pkey -in leaf.key -aes256 -passout pass:hunter2 -out leaf-enc.key");
    run("openssl crl2pkcs7 -nocrl -certfile int.pem -out int.p7b");
    write("ca.cnf", "[ca]\ndefault_ca=d\n[d]\ndatabase=" + path("index.txt") +
                        "\ndefault_md=sha256\ndefault_crl_days=30\n");
    write("index.txt", "");
    run("openssl ca -gencrl -keyfile ca.key -cert ca.pem -out ca.crl -config ca.cnf");
    run("openssl ca -gencrl -keyfile int.key -cert int.pem -out int.crl -config ca.cnf");
  }
  ~TestPki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string read(const std::string& name) const {
    std::ifstream in(path(name), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void write(const std::string& name, const std::string& contents) const {
    std::ofstream(path(name), std::ios::binary) << contents;
  }

 private:
  void run(const std::string& cmd) const {
    std::string full = "cd " + dir_ + " && " + cmd + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(full.c_str()), 0) << cmd;
  }
  std::string dir_;
};

// Standard base64 (Barbican takes binary payloads so).
inline std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

// One PKI per test binary (key generation takes seconds), removed at exit.
inline TestPki& sharedPki() {
  static TestPki pki;
  return pki;
}

}  // namespace banyan::provider::certs::test
