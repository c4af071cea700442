// Request smuggling: classic ambiguous-framing vectors sent through an HTTP
// listener. Each must get 400 with the connection closed, and the member must
// receive none of its bytes (every vector carries the marker "SMUGGLED").
#include <gtest/gtest.h>

#include <memory>

#include "fixtures.h"
#include "http_client.h"

namespace banyan::test {
namespace {

struct Vector {
  const char* name;
  std::string bytes;
};

void PrintTo(const Vector& v, std::ostream* os) { *os << v.name; }

std::string post(const std::string& headers, const std::string& body = "") {
  return "POST /SMUGGLED HTTP/1.1\r\nHost: a\r\n" + headers + "\r\n" + body;
}

const std::string kInner = "GPOST /SMUGGLED-inner HTTP/1.1\r\nHost: a\r\n\r\n";

std::vector<Vector> vectors() {
  using namespace std::string_literals;
  return {
      {"ContentLengthWithTransferEncoding",
       post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            "5c\r\n" + kInner + "\r\n0\r\n\r\n")},
      {"TransferEncodingWithContentLength",
       post("Transfer-Encoding: chunked\r\nContent-Length: 48\r\n", "0\r\n\r\n" + kInner)},
      {"TwoDifferentContentLengths",
       post("Content-Length: 6\r\nContent-Length: 5\r\n", "12345" + kInner)},
      {"ContentLengthList", post("Content-Length: 5, 6\r\n", "123456" + kInner)},
      {"ContentLengthWithPlusSign", post("Content-Length: +5\r\n", "12345" + kInner)},
      {"NegativeContentLength", post("Content-Length: -1\r\n", kInner)},
      {"HexContentLength", post("Content-Length: 0x5\r\n", "12345" + kInner)},
      {"OverflowingContentLength",
       post("Content-Length: 18446744073709551621\r\n", "12345" + kInner)},
      {"ChunkedTwice", post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n" + kInner)},
      {"ChunkedNotTheFinalCoding",
       post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n" + kInner)},
      {"UnknownTransferCoding", post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n" + kInner)},
      {"TransferEncodingOnHttp10",
       "POST /SMUGGLED HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kInner},
      {"ObsFoldedTransferEncoding",
       post("Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n" + kInner)},
      {"ObsFoldedOtherHeader", post("X-Note: a\r\n\tb\r\n")},
      {"SpaceBeforeColon", post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n" + kInner)},
      {"TabBeforeColon", post("Content-Length\t: 5\r\n", "12345" + kInner)},
      {"VerticalTabInTransferEncoding", post("Transfer-Encoding:\x0b"
                                             "chunked\r\n",
                                             "0\r\n\r\n" + kInner)},
      {"BareLfBetweenHeaders", "GET /SMUGGLED HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"},
      {"BareLfAfterRequestLine", "GET /SMUGGLED HTTP/1.1\nHost: a\r\n\r\n"},
      {"BareCrInHeaderValue", "GET /SMUGGLED HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"},
      {"NulInHeaderValue", "GET /SMUGGLED HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n"s},
      {"MissingHostOnHttp11", "GET /SMUGGLED HTTP/1.1\r\nX-A: b\r\n\r\n"},
      {"DuplicateHost", "GET /SMUGGLED HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"InvalidHeaderNameCharacter", "GET /SMUGGLED HTTP/1.1\r\nHost: a\r\nX[A]: b\r\n\r\n"},
      {"EmptyHeaderName", "GET /SMUGGLED HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"},
      {"SpaceInsideTarget", "GET /SMUGGLED HTTP/1.1 HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"MalformedVersion", "GET /SMUGGLED HTP/1.1\r\nHost: a\r\n\r\n"},
  };
}

class Smuggling : public ::testing::TestWithParam<Vector> {
 protected:
  static void SetUpTestSuite() {
    member_ = new TestHttpBackend("m1", "127.0.0.51");
    port_ = pickFreePort();
    ConfigSpec c = simpleConfig(port_, {memberOf(*member_)});
    c.listener("l1").insert_headers = {{"X-Forwarded-For", "true"}};
    proxy_ = new ProxyProcess(c.toJson());
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete member_;
  }

  static inline TestHttpBackend* member_ = nullptr;
  static inline ProxyProcess* proxy_ = nullptr;
  static inline uint16_t port_ = 0;
};

TEST_P(Smuggling, IsAnswered400AndNeverReachesTheMember) {
  const Vector& v = GetParam();
  ASSERT_TRUE(proxy_->running()) << proxy_->stderrText();
  size_t requests_before = member_->requestCount();

  HttpClient c("127.0.0.1", port_);
  c.sendRaw(v.bytes);
  HttpResponse resp = c.readResponse();
  EXPECT_EQ(resp.status, 400) << v.name;
  EXPECT_TRUE(headerHasToken(resp.headers, "Connection", "close"))
      << "400 must say Connection: close";
  EXPECT_TRUE(c.waitClosed(2000)) << "connection not closed after 400";

  // A valid request on a new connection: once the member has it, anything the
  // proxy had forwarded from the bad one would have arrived before it.
  std::string sentinel = "/sentinel-" + std::string(v.name);
  HttpResponse ok = fetchOnce("127.0.0.1", port_, sentinel);
  EXPECT_EQ(ok.status, 200);
  ASSERT_TRUE(member_->waitForRequests(requests_before + 1, 2000));
  auto requests = member_->requests();
  EXPECT_EQ(requests.size(), requests_before + 1);
  EXPECT_EQ(requests.back().target, sentinel);
  EXPECT_EQ(member_->receivedBytes().find("SMUGGLED"), std::string::npos)
      << "bytes of the rejected request reached the member";
}

INSTANTIATE_TEST_SUITE_P(ClassicVectors, Smuggling, ::testing::ValuesIn(vectors()),
                         [](const ::testing::TestParamInfo<Vector>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace banyan::test
