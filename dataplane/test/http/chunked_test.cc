// ChunkedScanner: finds where a chunked body ends, whatever way its bytes are
// split across reads, and refuses framing that other parsers could read
// differently (RFC 9112 section 7.1).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/parser.h"

namespace banyan::dp::http {
namespace {

using namespace std::string_literals;

// Feeds `body` in pieces of `piece` bytes, as the proxy would after each read;
// unconsumed bytes are kept and offered again with the next piece.
struct Scan {
  ChunkedScanner::Step last;
  size_t consumed = 0;
};

Scan scanInPieces(std::string_view body, size_t piece, const Limits& limits = Limits{}) {
  ChunkedScanner scanner(limits);
  Scan out;
  size_t offered = 0;
  while (offered < body.size()) {
    offered = std::min(body.size(), offered + piece);
    out.last = scanner.feed(body.substr(out.consumed, offered - out.consumed));
    if (out.last.status != ParseStatus::NeedMore) {
      out.consumed += out.last.consumed;
      return out;
    }
    EXPECT_EQ(out.last.consumed, offered - out.consumed) << "NeedMore must consume everything offered";
    out.consumed += out.last.consumed;
  }
  return out;
}

struct Row {
  const char* name;
  std::string body;  // may have bytes after the end of the chunked body
  ParseStatus status;
  ParseError error = ParseError::None;
  size_t consumed = 0;  // Done: where the body ends
};

std::ostream& operator<<(std::ostream& os, const Row& r) { return os << r.name; }

std::vector<Row> rows() {
  using S = ParseStatus;
  using E = ParseError;
  const std::string simple = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  const std::string ext = "5;name=val;q=\"a \\\"quoted\\\" str\"\r\nhello\r\n0 ; last ; x = y\r\n\r\n";
  const std::string trailers = "3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nY-Empty:\r\n\r\n";
  const std::string after = "4\r\nwxyz\r\n0\r\n\r\n";
  return {
      {"TwoChunks", simple, S::Done, E::None, simple.size()},
      {"OnlyLastChunk", "0\r\n\r\n", S::Done, E::None, 5},
      {"UpperAndLowerHexSizes", "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", S::Done, E::None, 35},
      {"LeadingZerosInSize", "0005\r\nhello\r\n000\r\n\r\n", S::Done, E::None, 20},
      {"Extensions", ext, S::Done, E::None, ext.size()},
      {"Trailers", trailers, S::Done, E::None, trailers.size()},
      {"BytesAfterTheEndAreNotConsumed", after + "GET / HTTP/1.1\r\n", S::Done, E::None, after.size()},
      {"DataContainingCrlf", "4\r\n\r\n\r\n\r\n0\r\n\r\n", S::Done, E::None, 14},
      {"IncompleteNeedsMore", "5\r\nhel", S::NeedMore},
      {"SixteenDigitSizeNeedsMore", "ffffffffffffffff\r\nabc", S::NeedMore},

      {"NonHexSize", "g\r\n", S::Invalid, E::BadChunkSize},
      {"EmptySize", "\r\nhello\r\n", S::Invalid, E::BadChunkSize},
      {"HexPrefixInSize", "0x5\r\nhello\r\n0\r\n\r\n", S::Invalid, E::BadChunkSize},
      {"NegativeSize", "-5\r\n", S::Invalid, E::BadChunkSize},
      {"SeventeenDigitSize", "10000000000000000\r\n", S::Invalid, E::ChunkSizeOverflow},
      {"SeventeenDigitsWithLeadingZeros", "00000000000000005\r\n", S::Invalid, E::ChunkSizeOverflow},
      {"BareLfAfterSize", "5\nhello\r\n0\r\n\r\n", S::Invalid, E::BareLF},
      {"BareCrAfterSize", "5\rhello\r\n", S::Invalid, E::BareCR},
      {"DataLongerThanSize", "5\r\nhelloX\r\n0\r\n\r\n", S::Invalid, E::BadChunkTerminator},
      {"BareLfAfterData", "5\r\nhello\n0\r\n\r\n", S::Invalid, E::BadChunkTerminator},
      {"CrCrAfterData", "5\r\nhello\r\r0\r\n\r\n", S::Invalid, E::BadChunkTerminator},
      {"ExtensionWithoutName", "5;=x\r\nhello\r\n", S::Invalid, E::BadChunkExtension},
      {"ExtensionWithoutSemicolon", "5 x\r\nhello\r\n", S::Invalid, E::BadChunkExtension},
      {"ExtensionUnterminatedQuote", "5;a=\"abc\r\nhello\r\n", S::Invalid, E::BadChunkExtension},
      {"ExtensionValueWithSpaceInside", "5;a=b c\r\nhello\r\n", S::Invalid, E::BadChunkExtension},
      {"BareLfInExtension", "5;a\nhello\r\n", S::Invalid, E::BareLF},
      {"NulInExtension", "5;a=\"\0\"\r\nhello\r\n"s, S::Invalid, E::BadChunkExtension},
      {"TrailerObsFold", "0\r\nX: a\r\n b\r\n\r\n", S::Invalid, E::BadTrailer},
      {"TrailerWithoutColon", "0\r\nX-Trailer\r\n\r\n", S::Invalid, E::BadTrailer},
      {"TrailerSpaceBeforeColon", "0\r\nX : a\r\n\r\n", S::Invalid, E::BadTrailer},
      {"TrailerEmptyName", "0\r\n: a\r\n\r\n", S::Invalid, E::BadTrailer},
      {"TrailerNulInValue", "0\r\nX: a\0\r\n\r\n"s, S::Invalid, E::BadTrailer},
      {"TrailerBareLf", "0\r\nX: a\n\r\n", S::Invalid, E::BareLF},
      {"TrailerBareCr", "0\r\nX: a\rb\r\n", S::Invalid, E::BareCR},
      {"FinalBareLf", "0\r\n\n", S::Invalid, E::BareLF},
      {"FinalBareCr", "0\r\n\rX", S::Invalid, E::BareCR},
  };
}

class ChunkedRows : public ::testing::TestWithParam<Row> {};

TEST_P(ChunkedRows, InOnePiece) {
  const Row& row = GetParam();
  const Scan s = scanInPieces(row.body, row.body.size());
  EXPECT_EQ(s.last.status, row.status);
  EXPECT_EQ(s.last.error, row.error) << parseErrorName(s.last.error);
  if (row.status == ParseStatus::Done) {
    EXPECT_EQ(s.consumed, row.consumed);
  }
}

TEST_P(ChunkedRows, OneByteAtATime) {
  const Row& row = GetParam();
  const Scan s = scanInPieces(row.body, 1);
  EXPECT_EQ(s.last.status, row.status);
  EXPECT_EQ(s.last.error, row.error) << parseErrorName(s.last.error);
  if (row.status == ParseStatus::Done) {
    EXPECT_EQ(s.consumed, row.consumed);
  }
}

TEST_P(ChunkedRows, InThreeBytePieces) {
  const Row& row = GetParam();
  const Scan s = scanInPieces(row.body, 3);
  EXPECT_EQ(s.last.status, row.status);
  EXPECT_EQ(s.last.error, row.error) << parseErrorName(s.last.error);
  if (row.status == ParseStatus::Done) {
    EXPECT_EQ(s.consumed, row.consumed);
  }
}

INSTANTIATE_TEST_SUITE_P(Http, ChunkedRows, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) { return info.param.name; });

TEST(ChunkedScanner, FeedingAfterDoneConsumesNothing) {
  ChunkedScanner scanner;
  ASSERT_EQ(scanner.feed("0\r\n\r\n").status, ParseStatus::Done);
  EXPECT_TRUE(scanner.done());
  const auto step = scanner.feed("more");
  EXPECT_EQ(step.status, ParseStatus::Done);
  EXPECT_EQ(step.consumed, 0u);
}

TEST(ChunkedScanner, StaysInvalidAfterAnError) {
  ChunkedScanner scanner;
  ASSERT_EQ(scanner.feed("z").status, ParseStatus::Invalid);
  const auto step = scanner.feed("0\r\n\r\n");
  EXPECT_EQ(step.status, ParseStatus::Invalid);
  EXPECT_EQ(step.error, ParseError::BadChunkSize);
  EXPECT_EQ(step.consumed, 0u);
}

TEST(ChunkedScanner, ResetStartsANewBody) {
  ChunkedScanner scanner;
  ASSERT_EQ(scanner.feed("0\r\n\r\n").status, ParseStatus::Done);
  scanner.reset();
  EXPECT_FALSE(scanner.done());
  const auto step = scanner.feed("2\r\nhi\r\n0\r\n\r\n");
  EXPECT_EQ(step.status, ParseStatus::Done);
  EXPECT_EQ(step.consumed, 12u);
}

TEST(ChunkedScanner, LargeChunkDataIsSkippedWithoutLookingAtIt) {
  ChunkedScanner scanner;
  std::string body = "100000\r\n" + std::string(0x100000, '\n') + "\r\n0\r\n\r\n";
  const auto step = scanner.feed(body);
  EXPECT_EQ(step.status, ParseStatus::Done);
  EXPECT_EQ(step.consumed, body.size());
}

TEST(ChunkedScanner, EndlessExtensionIsRefused) {
  Limits limits;
  limits.max_request_line = 64;
  const Scan s = scanInPieces("5;a=" + std::string(100, 'x') + "\r\n", 7, limits);
  EXPECT_EQ(s.last.status, ParseStatus::Invalid);
  EXPECT_EQ(s.last.error, ParseError::BadChunkExtension);
}

TEST(ChunkedScanner, OversizedTrailerSectionIsRefused) {
  Limits limits;
  limits.max_head = 64;
  std::string body = "0\r\n";
  for (int i = 0; i < 10; ++i) body += "X-T: 0123456789\r\n";
  const Scan s = scanInPieces(body + "\r\n", 5, limits);
  EXPECT_EQ(s.last.status, ParseStatus::Invalid);
  EXPECT_EQ(s.last.error, ParseError::TrailerTooLarge);
}

}  // namespace
}  // namespace banyan::dp::http
