// Response heads: status line rules and message framing per RFC 9112
// section 6.3 (which decides how much of the member's stream is this body).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/parser.h"

namespace banyan::dp::http {
namespace {

struct FramingRow {
  const char* name;
  const char* request_method;
  std::string raw;
  BodyKind body;
  uint64_t content_length = 0;
};

std::ostream& operator<<(std::ostream& os, const FramingRow& r) { return os << r.name; }

std::vector<FramingRow> framingRows() {
  return {
      {"ContentLength", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", BodyKind::ContentLength, 12},
      {"ZeroContentLength", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", BodyKind::None, 0},
      {"Chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", BodyKind::Chunked},
      {"GzipThenChunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", BodyKind::Chunked},
      {"TransferEncodingNotChunkedRunsUntilClose", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
       BodyKind::UntilClose},
      {"NeitherRunsUntilClose", "GET", "HTTP/1.1 200 OK\r\n\r\n", BodyKind::UntilClose},
      {"HeadRequestHasNoBody", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", BodyKind::None, 1234},
      {"HeadRequestChunkedHasNoBody", "HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
       BodyKind::None},
      {"Continue100HasNoBody", "POST", "HTTP/1.1 100 Continue\r\n\r\n", BodyKind::None},
      {"SwitchingProtocols101HasNoBody", "GET",
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", BodyKind::None},
      {"NoContent204HasNoBody", "GET", "HTTP/1.1 204 No Content\r\n\r\n", BodyKind::None},
      {"NotModified304HasNoBodyDespiteLength", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
       BodyKind::None, 50},
      {"Http10ContentLength", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", BodyKind::ContentLength, 3},
      {"Http10Neither", "GET", "HTTP/1.0 200 OK\r\n\r\n", BodyKind::UntilClose},
  };
}

class ResponseFraming : public ::testing::TestWithParam<FramingRow> {};

TEST_P(ResponseFraming, PicksTheBodyKindOfRfc9112Section63) {
  const FramingRow& row = GetParam();
  ResponseHead head;
  const ParseResult r = parseResponseHead(row.raw, Limits{}, row.request_method, head);
  ASSERT_EQ(r.status, ParseStatus::Done) << parseErrorName(r.error);
  EXPECT_EQ(r.consumed, row.raw.size());
  EXPECT_EQ(head.body, row.body);
  EXPECT_EQ(head.content_length, row.content_length);
  if (head.body == BodyKind::UntilClose) {
    EXPECT_FALSE(head.flags.keep_alive);
  }
}

INSTANTIATE_TEST_SUITE_P(Http, ResponseFraming, ::testing::ValuesIn(framingRows()),
                         [](const ::testing::TestParamInfo<FramingRow>& info) { return info.param.name; });

struct ErrorRow {
  const char* name;
  std::string raw;
  ParseStatus status;
  ParseError error;
};

std::ostream& operator<<(std::ostream& os, const ErrorRow& r) { return os << r.name; }

std::vector<ErrorRow> errorRows() {
  using S = ParseStatus;
  using E = ParseError;
  return {
      {"PartialStatusLineNeedsMore", "HTTP/1.1 20", S::NeedMore, E::None},
      {"PartialHeadNeedsMore", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", S::NeedMore, E::None},
      {"Http2Version", "HTTP/2 200 OK\r\n\r\n", S::Invalid, E::BadVersion},
      {"Http12Version", "HTTP/1.2 200 OK\r\n\r\n", S::Invalid, E::BadVersion},
      {"TwoDigitStatus", "HTTP/1.1 20 OK\r\n\r\n", S::Invalid, E::BadStatusLine},
      {"FourDigitStatus", "HTTP/1.1 2000 OK\r\n\r\n", S::Invalid, E::BadStatusLine},
      {"LetterInStatus", "HTTP/1.1 2x0 OK\r\n\r\n", S::Invalid, E::BadStatusLine},
      {"StatusBelow100", "HTTP/1.1 099 Odd\r\n\r\n", S::Invalid, E::BadStatusLine},
      {"StatusAbove599", "HTTP/1.1 600 Odd\r\n\r\n", S::Invalid, E::BadStatusLine},
      {"TwoSpacesBeforeStatus", "HTTP/1.1  200 OK\r\n\r\n", S::Invalid, E::BadStatusLine},
      {"ControlCharInReason", "HTTP/1.1 200 O\x01K\r\n\r\n", S::Invalid, E::BadStatusLine},
      {"BareLfAfterStatusLine", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", S::Invalid, E::BareLF},
      {"BareCrInReason", "HTTP/1.1 200 O\rK\r\n\r\n", S::Invalid, E::BareCR},
      {"ContentLengthWithTransferEncoding",
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", S::Invalid,
       E::ContentLengthWithTransferEncoding},
      {"DifferingContentLengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n", S::Invalid,
       E::ConflictingContentLength},
      {"ChunkedTwice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"UnknownCoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: br\r\n\r\n", S::Invalid, E::BadTransferEncoding},
      {"TransferEncodingOnHttp10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"ObsFold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", S::Invalid, E::ObsFold},
      {"MalformedContentLengthEvenOn204", "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", S::Invalid,
       E::BadContentLength},
      {"StatusLineTooLong", "HTTP/1.1 200 " + std::string(9000, 'k'), S::Invalid, E::StatusLineTooLong},
  };
}

class ResponseErrors : public ::testing::TestWithParam<ErrorRow> {};

TEST_P(ResponseErrors, ParsesToTheExpectedStatusAndError) {
  const ErrorRow& row = GetParam();
  ResponseHead head;
  const ParseResult r = parseResponseHead(row.raw, Limits{}, "GET", head);
  EXPECT_EQ(r.status, row.status);
  EXPECT_EQ(r.error, row.error) << parseErrorName(r.error);
  EXPECT_EQ(r.consumed, 0u);
}

INSTANTIATE_TEST_SUITE_P(Http, ResponseErrors, ::testing::ValuesIn(errorRows()),
                         [](const ::testing::TestParamInfo<ErrorRow>& info) { return info.param.name; });

TEST(ResponseHeadParse, StatusLineWithoutReasonIsAccepted) {
  ResponseHead head;
  const ParseResult r = parseResponseHead("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", Limits{}, "GET", head);
  ASSERT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.reason, "");
}

TEST(ResponseHeadParse, EmptyReasonAfterSpaceIsAccepted) {
  ResponseHead head;
  ASSERT_EQ(parseResponseHead("HTTP/1.1 404 \r\n\r\n", Limits{}, "GET", head).status, ParseStatus::Done);
  EXPECT_EQ(head.status, 404);
  EXPECT_EQ(head.reason, "");
}

TEST(ResponseHeadParse, ReasonMayContainSpacesAndObsText) {
  ResponseHead head;
  ASSERT_EQ(parseResponseHead("HTTP/1.0 503 Service Unavailable \xe2\x9c\x97\r\n\r\n", Limits{}, "GET", head).status,
            ParseStatus::Done);
  EXPECT_EQ(head.version_minor, 0);
  EXPECT_EQ(head.status, 503);
  EXPECT_EQ(head.reason, "Service Unavailable \xe2\x9c\x97");
}

TEST(ResponseHeadParse, KeepAliveFollowsVersionAndConnection) {
  ResponseHead head;
  ASSERT_EQ(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Limits{}, "GET", head).status,
            ParseStatus::Done);
  EXPECT_TRUE(head.flags.keep_alive);
  ASSERT_EQ(parseResponseHead("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", Limits{}, "GET",
                              head)
                .status,
            ParseStatus::Done);
  EXPECT_FALSE(head.flags.keep_alive);
  EXPECT_TRUE(head.flags.connection_close);
  ASSERT_EQ(parseResponseHead("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", Limits{},
                              "GET", head)
                .status,
            ParseStatus::Done);
  EXPECT_TRUE(head.flags.keep_alive);
}

TEST(ResponseHeadParse, SwitchingProtocolsReportsUpgrade) {
  ResponseHead head;
  ASSERT_EQ(parseResponseHead("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                              Limits{}, "GET", head)
                .status,
            ParseStatus::Done);
  EXPECT_EQ(head.status, 101);
  EXPECT_TRUE(head.flags.has_upgrade);
  EXPECT_TRUE(head.flags.connection_upgrade);
}

TEST(ResponseHeadParse, BodyAfterTheHeadIsNotConsumed) {
  const std::string head_bytes = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
  ResponseHead head;
  const ParseResult r = parseResponseHead(head_bytes + "hi", Limits{}, "GET", head);
  ASSERT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(r.consumed, head_bytes.size());
  EXPECT_EQ(head.head_length, head_bytes.size());
}

}  // namespace
}  // namespace banyan::dp::http
