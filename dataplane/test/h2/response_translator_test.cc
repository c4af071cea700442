#include "h2/response_translator.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace banyan::dp::h2 {
namespace {

struct Translated {
  std::vector<ResponseHead> heads;
  std::string body;
  ResponseTranslator::Status status = ResponseTranslator::Status::Ok;
};

// Feeds `in` in pieces of `step` bytes, as the proxy would hand it over.
Translated translate(ResponseTranslator& t, std::string_view in, size_t step) {
  Translated out;
  for (size_t i = 0; i < in.size() && out.status == ResponseTranslator::Status::Ok; i += step)
    out.status = t.feed(in.substr(i, step), out.heads, out.body);
  return out;
}

std::string fieldValue(const ResponseHead& h, const std::string& name) {
  for (const auto& f : h.fields)
    if (f.name == name) return f.value;
  return "<absent>";
}

TEST(ResponseTranslator, ContentLengthResponseKeepsItsLengthAndLowercasesNames) {
  for (size_t step : {1u, 7u, 1000u}) {
    ResponseTranslator t;
    auto r = translate(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Backend: m1\r\n"
                          "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello", step);
    ASSERT_EQ(r.status, ResponseTranslator::Status::Ok);
    ASSERT_EQ(r.heads.size(), 1u);
    EXPECT_EQ(r.heads[0].status, 200);
    EXPECT_TRUE(r.heads[0].has_body);
    EXPECT_EQ(fieldValue(r.heads[0], "content-length"), "5");
    EXPECT_EQ(fieldValue(r.heads[0], "x-backend"), "m1");
    EXPECT_EQ(fieldValue(r.heads[0], "connection"), "<absent>");
    EXPECT_EQ(fieldValue(r.heads[0], "keep-alive"), "<absent>");
    EXPECT_EQ(r.body, "hello");
    EXPECT_TRUE(t.done());
  }
}

TEST(ResponseTranslator, ChunkedBodyIsDeframedAndItsTrailersKept) {
  for (size_t step : {1u, 3u, 1000u}) {
    ResponseTranslator t;
    auto r = translate(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\ngrpc-status: 0\r\n"
                          "Grpc-Message: ok\r\n\r\n", step);
    ASSERT_EQ(r.status, ResponseTranslator::Status::Ok);
    ASSERT_EQ(r.heads.size(), 1u);
    EXPECT_EQ(fieldValue(r.heads[0], "transfer-encoding"), "<absent>");
    EXPECT_EQ(r.body, "hello0123456789");
    EXPECT_TRUE(t.done());
    ASSERT_EQ(t.trailers().size(), 2u);
    EXPECT_EQ(t.trailers()[0].name, "grpc-status");
    EXPECT_EQ(t.trailers()[1].name, "grpc-message");
    EXPECT_EQ(t.trailers()[1].value, "ok");
  }
}

TEST(ResponseTranslator, InterimResponsesComeBeforeTheFinalHead) {
  ResponseTranslator t;
  auto r = translate(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 1000);
  ASSERT_EQ(r.heads.size(), 2u);
  EXPECT_FALSE(r.heads[0].final);
  EXPECT_EQ(r.heads[0].status, 100);
  EXPECT_TRUE(r.heads[1].final);
  EXPECT_FALSE(r.heads[1].has_body);
  EXPECT_TRUE(t.done());
}

TEST(ResponseTranslator, HeadRequestResponseHasNoBodyWhateverItsLength) {
  ResponseTranslator t(/*head_request=*/true);
  auto r = translate(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 1000);
  ASSERT_EQ(r.heads.size(), 1u);
  EXPECT_FALSE(r.heads[0].has_body);
  EXPECT_EQ(fieldValue(r.heads[0], "content-length"), "100");
  EXPECT_TRUE(t.done());
}

TEST(ResponseTranslator, BodyUntilCloseEndsAtTheEndOfInput) {
  ResponseTranslator t;
  auto r = translate(t, "HTTP/1.0 200 OK\r\n\r\nsome bytes", 4);
  EXPECT_EQ(r.body, "some bytes");
  EXPECT_FALSE(t.done());
  t.endOfInput();
  EXPECT_TRUE(t.done());
}

TEST(ResponseTranslator, SwitchingProtocolsCannotBeCarried) {
  ResponseTranslator t;
  auto r = translate(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 1000);
  EXPECT_EQ(r.status, ResponseTranslator::Status::Invalid);
}

TEST(ResponseTranslator, BrokenChunkFramingIsInvalid) {
  ResponseTranslator t;
  auto r = translate(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1000);
  EXPECT_EQ(r.status, ResponseTranslator::Status::Invalid);
}

TEST(ResponseTranslator, ConnectionSpecificNamesAreRecognisedInAnyCase) {
  EXPECT_TRUE(isConnectionSpecific("Connection"));
  EXPECT_TRUE(isConnectionSpecific("TRANSFER-ENCODING"));
  EXPECT_TRUE(isConnectionSpecific("te"));
  EXPECT_TRUE(isConnectionSpecific("Proxy-Connection"));
  EXPECT_FALSE(isConnectionSpecific("content-length"));
  EXPECT_FALSE(isConnectionSpecific("trailer"));
}

}  // namespace
}  // namespace banyan::dp::h2
