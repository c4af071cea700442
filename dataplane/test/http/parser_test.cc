// Request-head parsing: a table of smuggling and validity fixtures (one
// described row per rule of RFC 9110/9112 that parser.h promises to enforce),
// then behaviours that need more than a status: flags, framing, pipelining,
// limits and reuse.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "http/parser.h"

namespace banyan::dp::http {
namespace {

using namespace std::string_literals;

struct Row {
  const char* name;  // becomes the test name
  std::string raw;
  ParseStatus status;
  ParseError error = ParseError::None;
};

std::ostream& operator<<(std::ostream& os, const Row& r) { return os << r.name; }

const std::string kGet = "GET / HTTP/1.1\r\nHost: a\r\n";
const std::string kPost = "POST / HTTP/1.1\r\nHost: a\r\n";

std::string manyHeaders(size_t n) {
  std::string s = kGet;
  for (size_t i = 0; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
  return s + "\r\n";
}

std::vector<Row> requestRows() {
  using S = ParseStatus;
  using E = ParseError;
  return {
      // Accepted heads.
      {"SimpleGet", kGet + "\r\n", S::Done},
      {"Http10WithoutHost", "GET / HTTP/1.0\r\n\r\n", S::Done},
      {"OneLeadingCrlfIsIgnored", "\r\n" + kGet + "\r\n", S::Done},
      {"AbsoluteFormTarget", "GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\n\r\n", S::Done},
      {"AsteriskFormForOptions", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", S::Done},
      {"ExtensionMethodToken", "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", S::Done},
      {"IdenticalContentLengthList", kPost + "Content-Length: 5, 5\r\n\r\n", S::Done},
      {"RepeatedIdenticalContentLength", kPost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", S::Done},
      {"ChunkedAfterGzip", kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n", S::Done},
      {"ChunkedInAnyCase", kPost + "Transfer-Encoding: ChUnKeD\r\n\r\n", S::Done},
      {"CodingsSplitOverTwoLines", kPost + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", S::Done},
      {"ValueWithObsText", kGet + "X: caf\xc3\xa9\r\n\r\n", S::Done},
      {"ValueWithInnerHtab", kGet + "X: a\tb\r\n\r\n", S::Done},
      {"EmptyValue", kGet + "X:\r\n\r\n", S::Done},
      {"EmptyHostValue", "GET / HTTP/1.1\r\nHost:\r\n\r\n", S::Done},
      {"TcharPunctuationInName", kGet + "X!#$%&'*+-.^_`|~1: v\r\n\r\n", S::Done},

      // Incomplete heads.
      {"EmptyInputNeedsMore", "", S::NeedMore},
      {"LoneCrNeedsMore", "\r", S::NeedMore},
      {"PartialRequestLineNeedsMore", "GET / HT", S::NeedMore},
      {"CrAtEndOfRequestLineNeedsMore", "GET / HTTP/1.1\r", S::NeedMore},
      {"HeadWithoutFinalCrlfNeedsMore", kGet, S::NeedMore},
      {"CrOfFinalCrlfNeedsMore", kGet + "\r", S::NeedMore},

      // Framing: Content-Length and Transfer-Encoding (RFC 9112 section 6).
      {"ContentLengthThenTransferEncoding", kPost + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       S::Invalid, E::ContentLengthWithTransferEncoding},
      {"TransferEncodingThenContentLength", kPost + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       S::Invalid, E::ContentLengthWithTransferEncoding},
      {"DifferingContentLengths", kPost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", S::Invalid,
       E::ConflictingContentLength},
      {"DifferingContentLengthList", kPost + "Content-Length: 5, 6\r\n\r\n", S::Invalid,
       E::ConflictingContentLength},
      {"ContentLengthNotDigits", kPost + "Content-Length: abc\r\n\r\n", S::Invalid, E::BadContentLength},
      {"ContentLengthNegative", kPost + "Content-Length: -1\r\n\r\n", S::Invalid, E::BadContentLength},
      {"ContentLengthPlusSign", kPost + "Content-Length: +5\r\n\r\n", S::Invalid, E::BadContentLength},
      {"ContentLengthEmpty", kPost + "Content-Length:\r\n\r\n", S::Invalid, E::BadContentLength},
      {"ContentLengthEmptyListElement", kPost + "Content-Length: 5,\r\n\r\n", S::Invalid, E::BadContentLength},
      {"ContentLengthInnerSpace", kPost + "Content-Length: 1 2\r\n\r\n", S::Invalid, E::BadContentLength},
      {"ContentLengthHex", kPost + "Content-Length: 0x5\r\n\r\n", S::Invalid, E::BadContentLength},
      {"ContentLengthOverflowsUint64", kPost + "Content-Length: 18446744073709551616\r\n\r\n", S::Invalid,
       E::BadContentLength},
      {"TransferEncodingChunkedNotFinal", kPost + "Transfer-Encoding: chunked, gzip\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"TransferEncodingWithoutChunked", kPost + "Transfer-Encoding: gzip\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"ChunkedTwiceInOneList", kPost + "Transfer-Encoding: chunked, chunked\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"ChunkedTwiceAcrossLines", kPost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       S::Invalid, E::BadTransferEncoding},
      {"UnknownTransferCoding", kPost + "Transfer-Encoding: foo, chunked\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"IdentityTransferCoding", kPost + "Transfer-Encoding: identity\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"TransferCodingWithParameter", kPost + "Transfer-Encoding: chunked;q=1\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"TransferEncodingEmpty", kPost + "Transfer-Encoding:\r\n\r\n", S::Invalid, E::BadTransferEncoding},
      {"TransferEncodingEmptyElement", kPost + "Transfer-Encoding: , chunked\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"TransferEncodingOnHttp10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", S::Invalid,
       E::BadTransferEncoding},
      {"TransferEncodingWithVerticalTab", kPost + "Transfer-Encoding: \x0b" "chunked\r\n\r\n", S::Invalid,
       E::BadHeaderValue},
      {"TransferEncodingNameWithSpaceBeforeColon", kPost + "Transfer-Encoding : chunked\r\n\r\n", S::Invalid,
       E::WhitespaceBeforeColon},

      // Line structure (RFC 9112 sections 2.2 and 5).
      {"ObsFoldWithSpace", kGet + "X: a\r\n b\r\n\r\n", S::Invalid, E::ObsFold},
      {"ObsFoldWithTab", kGet + "X: a\r\n\tb\r\n\r\n", S::Invalid, E::ObsFold},
      {"WhitespaceBeforeFirstField", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", S::Invalid, E::ObsFold},
      {"BareCrInValue", kGet + "X: a\rb\r\n\r\n", S::Invalid, E::BareCR},
      {"BareCrEndingRequestLine", "GET / HTTP/1.1\rHost: a\r\n\r\n", S::Invalid, E::BareCR},
      {"BareCrInFinalLine", kGet + "\rX", S::Invalid, E::BareCR},
      {"BareCrBeforeRequestLine", "\rGET / HTTP/1.1\r\n", S::Invalid, E::BareCR},
      {"BareLfEndingRequestLine", "GET / HTTP/1.1\nHost: a\r\n\r\n", S::Invalid, E::BareLF},
      {"BareLfEndingField", "GET / HTTP/1.1\r\nHost: a\n\r\n", S::Invalid, E::BareLF},
      {"BareLfEndingHead", kGet + "\n", S::Invalid, E::BareLF},
      {"BareLfBeforeRequestLine", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BareLF},
      {"TwoLeadingCrlfs", "\r\n\r\n" + kGet + "\r\n", S::Invalid, E::BadRequestLine},
      {"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", S::Invalid, E::WhitespaceBeforeColon},
      {"TabBeforeColon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", S::Invalid, E::WhitespaceBeforeColon},
      {"EmptyFieldName", kGet + ": a\r\n\r\n", S::Invalid, E::BadHeaderName},
      {"ParenthesisInName", kGet + "X(y): a\r\n\r\n", S::Invalid, E::BadHeaderName},
      {"HighByteInName", kGet + "X\xff: a\r\n\r\n", S::Invalid, E::BadHeaderName},
      {"FieldLineWithoutColon", kGet + "Xa\r\n\r\n", S::Invalid, E::MissingColon},
      {"NulInValue", kGet + "X: a\0b\r\n\r\n"s, S::Invalid, E::BadHeaderValue},
      {"ControlCharInValue", kGet + "X: a\x01z\r\n\r\n", S::Invalid, E::BadHeaderValue},
      {"EscapeInValue", kGet + "X: a\x1b[0m\r\n\r\n", S::Invalid, E::BadHeaderValue},
      {"DelInValue", kGet + "X: a\x7f\r\n\r\n", S::Invalid, E::BadHeaderValue},
      {"ControlCharInLongValue", kGet + "X: abcdefghijklmnopqrstuvwxyz\x02z\r\n\r\n", S::Invalid,
       E::BadHeaderValue},

      // Request line (RFC 9112 section 3).
      {"Http20", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", S::Invalid, E::BadVersion},
      {"Http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", S::Invalid, E::BadVersion},
      {"Http111", "GET / HTTP/1.11\r\nHost: a\r\n\r\n", S::Invalid, E::BadVersion},
      {"LowercaseHttpName", "GET / http/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadVersion},
      {"WrongVersionWaitsForTheLineEnd", "GET / HTTX", S::NeedMore},
      {"WrongVersionWithBareLf", "GET / HTTX\n", S::Invalid, E::BadVersion},
      {"SpaceInsideTargetBeforeLineEnds", "GET /a b HTT", S::Invalid, E::BadTarget},
      {"Http09RequestLine", "GET /\r\n\r\n", S::Invalid, E::BadRequestLine},
      {"SpaceAfterVersion", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", S::Invalid, E::BadRequestLine},
      {"MethodNotAToken", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadMethod},
      {"MethodWithHighByte", "G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadMethod},
      {"SpaceBeforeMethod", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadMethod},
      {"TwoSpacesBeforeTarget", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadTarget},
      {"SpaceInsideTarget", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadTarget},
      {"TabInsideTarget", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadTarget},
      {"DelInTarget", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadTarget},
      {"HighByteInTarget", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadTarget},
      {"HighByteDeepInLongTarget", "GET /abcdefghijklmnopqrstuvwxyz\x80 HTTP/1.1\r\nHost: a\r\n\r\n",
       S::Invalid, E::BadTarget},
      {"NulInTarget", "GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n"s, S::Invalid, E::BadTarget},
      {"RelativeTarget", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadTarget},
      {"AsteriskTargetForGet", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", S::Invalid, E::BadTarget},
      {"ConnectIsRefused", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", S::Invalid,
       E::UnsupportedMethod},

      // Host (RFC 9112 section 3.2).
      {"Http11WithoutHost", "GET / HTTP/1.1\r\nX: a\r\n\r\n", S::Invalid, E::MissingHost},
      {"TwoHosts", kGet + "Host: b\r\n\r\n", S::Invalid, E::DuplicateHost},
      {"TwoHostsOnHttp10", "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", S::Invalid, E::DuplicateHost},

      // Limits (default Limits: 8192-byte request line, 64 KiB head, 100 fields).
      {"RequestLineWithoutCrlfPastLimit", "GET /" + std::string(9000, 'a'), S::Invalid,
       E::RequestLineTooLong},
      {"HeadWithoutEndPastLimit", kGet + "X: " + std::string(70000, 'a'), S::Invalid, E::HeadTooLarge},
      {"HundredFieldsAfterHost", manyHeaders(99), S::Done},
      {"HundredAndOneFields", manyHeaders(100), S::Invalid, E::TooManyHeaders},
  };
}

class RequestRows : public ::testing::TestWithParam<Row> {};

TEST_P(RequestRows, ParsesToTheExpectedStatusAndError) {
  const Row& row = GetParam();
  RequestHead head;
  const ParseResult r = parseRequestHead(row.raw, Limits{}, head);
  EXPECT_EQ(r.status, row.status) << parseErrorName(r.error);
  EXPECT_EQ(r.error, row.error) << parseErrorName(r.error) << " != " << parseErrorName(row.error);
  if (row.status == ParseStatus::Done) {
    EXPECT_EQ(r.consumed, row.raw.size());
    EXPECT_EQ(head.head_length, row.raw.size());
  } else {
    EXPECT_EQ(r.consumed, 0u);
  }
}

// A parser that re-parses on NeedMore must never change its mind: a prefix of
// the input is either incomplete or already broken in the same way.
TEST_P(RequestRows, EveryPrefixNeedsMoreOrFailsTheSameWay) {
  const Row& row = GetParam();
  RequestHead head;
  for (size_t n = 0; n < row.raw.size(); ++n) {
    const ParseResult r = parseRequestHead(std::string_view(row.raw).substr(0, n), Limits{}, head);
    if (r.status == ParseStatus::NeedMore) continue;
    ASSERT_EQ(r.status, ParseStatus::Invalid) << "prefix " << n;
    ASSERT_EQ(r.error, row.error) << "prefix " << n << ": " << parseErrorName(r.error);
  }
}

INSTANTIATE_TEST_SUITE_P(Http, RequestRows, ::testing::ValuesIn(requestRows()),
                         [](const ::testing::TestParamInfo<Row>& info) { return info.param.name; });

TEST(RequestTable, HasAtLeastSixtyDescribedRows) { EXPECT_GE(requestRows().size(), 60u); }

ParseResult parse(std::string_view raw, RequestHead& head, const Limits& limits = Limits{}) {
  return parseRequestHead(raw, limits, head);
}

TEST(RequestHeadParse, PipelinedRequestsAreConsumedOneHeadAtATime) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "GET /two HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string wire = first + second;
  RequestHead head;
  ParseResult r = parse(wire, head);
  ASSERT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(r.consumed, first.size());
  EXPECT_EQ(head.target, "/one");
  r = parse(std::string_view(wire).substr(r.consumed), head);
  ASSERT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(r.consumed, second.size());
  EXPECT_EQ(head.target, "/two");
}

TEST(RequestHeadParse, BodyBytesAfterTheHeadAreNotConsumed) {
  const std::string head_bytes = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
  RequestHead head;
  const ParseResult r = parse(head_bytes + "hello", head);
  ASSERT_EQ(r.status, ParseStatus::Done);
  EXPECT_EQ(r.consumed, head_bytes.size());
  EXPECT_EQ(head.body, BodyKind::ContentLength);
  EXPECT_EQ(head.content_length, 5u);
}

TEST(RequestHeadParse, FillsMethodTargetVersionHostAndTrimmedFields) {
  const std::string raw = "DELETE /a?b=c HTTP/1.1\r\nhOsT:   example.com:8080 \t\r\nX-Empty:\r\nX-Y:z\r\n\r\n";
  RequestHead head;
  ASSERT_EQ(parse(raw, head).status, ParseStatus::Done);
  EXPECT_EQ(head.method, "DELETE");
  EXPECT_EQ(head.target, "/a?b=c");
  EXPECT_EQ(head.version_minor, 1);
  EXPECT_EQ(head.host, "example.com:8080");
  ASSERT_EQ(head.headers.size(), 3u);
  EXPECT_EQ(head.headers[0].name, "hOsT");
  EXPECT_EQ(head.headers[0].value, "example.com:8080");
  EXPECT_EQ(head.headers[1].name, "X-Empty");
  EXPECT_EQ(head.headers[1].value, "");
  EXPECT_EQ(head.headers[2].value, "z");
}

TEST(RequestHeadParse, StringViewsPointIntoTheInput) {
  const std::string raw = "GET /x HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\n";
  RequestHead head;
  ASSERT_EQ(parse(raw, head).status, ParseStatus::Done);
  auto inside = [&](std::string_view v) {
    return v.data() >= raw.data() && v.data() + v.size() <= raw.data() + raw.size();
  };
  EXPECT_TRUE(inside(head.method));
  EXPECT_TRUE(inside(head.target));
  EXPECT_TRUE(inside(head.host));
  for (const Header& h : head.headers) {
    EXPECT_TRUE(inside(h.name));
    EXPECT_TRUE(inside(h.value));
  }
}

TEST(RequestHeadParse, AbsoluteFormKeepsTheWholeTarget) {
  RequestHead head;
  ASSERT_EQ(parse("GET https://a.example:8443/p?q HTTP/1.1\r\nHost: a.example:8443\r\n\r\n", head).status,
            ParseStatus::Done);
  EXPECT_EQ(head.target, "https://a.example:8443/p?q");
}

TEST(RequestHeadParse, Http11IsKeepAliveByDefault) {
  RequestHead head;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", head).status, ParseStatus::Done);
  EXPECT_TRUE(head.flags.keep_alive);
  EXPECT_FALSE(head.flags.connection_close);
}

TEST(RequestHeadParse, Http11ConnectionCloseInAListDisablesKeepAlive) {
  RequestHead head;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n", head).status,
            ParseStatus::Done);
  EXPECT_FALSE(head.flags.keep_alive);
  EXPECT_TRUE(head.flags.connection_close);
}

TEST(RequestHeadParse, Http10IsNotKeepAliveByDefault) {
  RequestHead head;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", head).status, ParseStatus::Done);
  EXPECT_EQ(head.version_minor, 0);
  EXPECT_FALSE(head.flags.keep_alive);
}

TEST(RequestHeadParse, Http10KeepAliveTokenEnablesKeepAlive) {
  RequestHead head;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", head).status, ParseStatus::Done);
  EXPECT_TRUE(head.flags.keep_alive);
}

TEST(RequestHeadParse, Http10CloseWinsOverKeepAlive) {
  RequestHead head;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", head).status,
            ParseStatus::Done);
  EXPECT_FALSE(head.flags.keep_alive);
}

TEST(RequestHeadParse, ExpectContinueIsReportedOnHttp11) {
  RequestHead head;
  ASSERT_EQ(parse("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-Continue\r\n\r\n", head).status,
            ParseStatus::Done);
  EXPECT_TRUE(head.flags.expect_continue);
}

TEST(RequestHeadParse, ExpectContinueIsIgnoredOnHttp10) {
  RequestHead head;
  ASSERT_EQ(parse("PUT /f HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n", head).status,
            ParseStatus::Done);
  EXPECT_FALSE(head.flags.expect_continue);
}

TEST(RequestHeadParse, WebSocketUpgradeSetsUpgradeFlags) {
  RequestHead head;
  ASSERT_EQ(parse("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  head)
                .status,
            ParseStatus::Done);
  EXPECT_TRUE(head.flags.has_upgrade);
  EXPECT_TRUE(head.flags.connection_upgrade);
  EXPECT_TRUE(head.flags.keep_alive);
}

TEST(RequestHeadParse, NoFramingMeansNoBody) {
  RequestHead head;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\n\r\n", head).status, ParseStatus::Done);
  EXPECT_EQ(head.body, BodyKind::None);
}

TEST(RequestHeadParse, ZeroContentLengthMeansNoBody) {
  RequestHead head;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", head).status, ParseStatus::Done);
  EXPECT_EQ(head.body, BodyKind::None);
  EXPECT_EQ(head.content_length, 0u);
}

TEST(RequestHeadParse, LargestContentLengthIsAccepted) {
  RequestHead head;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", head).status,
            ParseStatus::Done);
  EXPECT_EQ(head.content_length, UINT64_MAX);
}

TEST(RequestHeadParse, ChunkedRequestHasChunkedBody) {
  RequestHead head;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", head).status,
            ParseStatus::Done);
  EXPECT_EQ(head.body, BodyKind::Chunked);
}

TEST(RequestHeadParse, ReusedHeadKeepsHeaderCapacity) {
  RequestHead head;
  const std::string raw = manyHeaders(20);
  ASSERT_EQ(parse(raw, head).status, ParseStatus::Done);
  const Header* storage = head.headers.data();
  const size_t capacity = head.headers.capacity();
  ASSERT_EQ(parse(raw, head).status, ParseStatus::Done);
  EXPECT_EQ(head.headers.data(), storage);
  EXPECT_EQ(head.headers.capacity(), capacity);
}

TEST(RequestHeadParse, RequestLineExactlyAtTheLimitIsAccepted) {
  Limits limits;
  limits.max_request_line = 32;
  // "GET /" + path + " HTTP/1.1\r\n" is 16 bytes plus the path.
  const std::string line = "GET /" + std::string(16, 'a') + " HTTP/1.1\r\n";
  ASSERT_EQ(line.size(), 32u);
  RequestHead head;
  EXPECT_EQ(parse(line + "Host: a\r\n\r\n", head, limits).status, ParseStatus::Done);
  const std::string longer = "GET /" + std::string(17, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  const ParseResult r = parse(longer, head, limits);
  EXPECT_EQ(r.status, ParseStatus::Invalid);
  EXPECT_EQ(r.error, ParseError::RequestLineTooLong);
}

TEST(RequestHeadParse, RequestLineWithoutCrlfIsRefusedOnceItReachesTheLimit) {
  Limits limits;
  limits.max_request_line = 32;
  RequestHead head;
  // The parser judges the limit by byte count, not by what could still fit.
  const std::string partial = "GET /" + std::string(26, 'a');  // 31 bytes
  EXPECT_EQ(parse(partial, head, limits).status, ParseStatus::NeedMore);
  const ParseResult r = parse(partial + "a", head, limits);
  EXPECT_EQ(r.status, ParseStatus::Invalid);
  EXPECT_EQ(r.error, ParseError::RequestLineTooLong);
}

TEST(RequestHeadParse, HeadExactlyAtTheLimitIsAccepted) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nX: bbbb\r\n\r\n";
  Limits limits;
  limits.max_head = raw.size();
  RequestHead head;
  EXPECT_EQ(parse(raw, head, limits).status, ParseStatus::Done);
  limits.max_head = raw.size() - 1;
  const ParseResult r = parse(raw, head, limits);
  EXPECT_EQ(r.status, ParseStatus::Invalid);
  EXPECT_EQ(r.error, ParseError::HeadTooLarge);
  EXPECT_EQ(parse(raw.substr(0, raw.size() - 2), head, limits).status, ParseStatus::NeedMore);
}

TEST(RequestHeadParse, MaxHeadersIsConfigurable) {
  Limits limits;
  limits.max_headers = 2;
  RequestHead head;
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", head, limits).status, ParseStatus::Done);
  const ParseResult r = parse("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\nY: c\r\n", head, limits);
  EXPECT_EQ(r.status, ParseStatus::Invalid);
  EXPECT_EQ(r.error, ParseError::TooManyHeaders);
}

TEST(HasToken, FindsTokensCaseInsensitivelyInCommaLists) {
  EXPECT_TRUE(hasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(hasToken("  close  ", "close"));
  EXPECT_TRUE(hasToken("a,,close", "close"));
  EXPECT_FALSE(hasToken("closed", "close"));
  EXPECT_FALSE(hasToken("", "close"));
  EXPECT_FALSE(hasToken("x-close, closer", "close"));
}

TEST(EqualsIgnoreCase, ComparesAsciiOnly) {
  EXPECT_TRUE(equalsIgnoreCase("Content-Length", "content-length"));
  EXPECT_FALSE(equalsIgnoreCase("Content-Length", "content-lengt"));
  EXPECT_FALSE(equalsIgnoreCase("\xc3\x89", "\xc3\xa9"));
}

TEST(ParseErrorName, EveryErrorHasADistinctName) {
  std::set<std::string> names;
  for (int e = 0; e <= static_cast<int>(ParseError::BadChunkExtension); ++e) {
    const std::string name = parseErrorName(static_cast<ParseError>(e));
    EXPECT_NE(name, "unknown");
    EXPECT_TRUE(names.insert(name).second) << name;
  }
}

}  // namespace
}  // namespace banyan::dp::http
