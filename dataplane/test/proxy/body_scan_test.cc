// BodyScan finds where a message body ends inside the buffer it was read into,
// so the proxy forwards exactly the body and leaves the next message in place.
#include <gtest/gtest.h>

#include <string>

#include "proxy/session.h"

namespace banyan::dp::proxy {
namespace {

using http::BodyKind;

constexpr std::string_view kChunkedBody =
    "4\r\nWiki\r\n"
    "5;name=\"quoted value\"\r\npedia\r\n"
    "E\r\n in\r\n\r\nchunks.\r\n"
    "0\r\n"
    "Trailer-One: x\r\n"
    "\r\n";
constexpr std::string_view kNextRequest = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

// Plays the session: appends `input` in pieces of `piece` bytes, scans after
// each, and forwards (consumes) the validated prefix as the session does.
struct Relay {
  Buffer src;
  BodyScan scan;
  std::string forwarded;
  bool valid = true;

  void feed(std::string_view input, size_t piece, bool eof_at_end = false) {
    for (size_t off = 0; off < input.size() && valid; off += piece) {
      src.append(input.substr(off, piece));
      const bool eof = eof_at_end && off + piece >= input.size();
      step(eof);
    }
  }
  void step(bool eof) {
    valid = scan.scan(src, eof);
    forwarded.append(src.view().substr(0, scan.ready));
    src.consume(scan.ready);
    scan.ready = 0;
  }
};

TEST(BodyScan, NoBodyIsCompleteAtOnce) {
  BodyScan s;
  s.start(BodyKind::None, 0);
  EXPECT_TRUE(s.done);
  EXPECT_TRUE(s.complete());
  Buffer b;
  b.append(kNextRequest);
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, 0u);  // the bytes belong to the next message
}

TEST(BodyScan, ZeroContentLengthIsCompleteAtOnce) {
  BodyScan s;
  s.start(BodyKind::ContentLength, 0);
  EXPECT_TRUE(s.complete());
  Buffer b;
  b.append("xyz");
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, 0u);
}

TEST(BodyScan, ContentLengthCountsBytesAcrossReads) {
  BodyScan s;
  s.start(BodyKind::ContentLength, 10);
  Buffer b;
  b.append("0123");
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, 4u);
  EXPECT_EQ(s.left, 6u);
  EXPECT_FALSE(s.done);
  // Rescanning without new bytes changes nothing.
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, 4u);
  EXPECT_EQ(s.left, 6u);
  b.append("456789");
  b.append(kNextRequest);
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, 10u);  // the next request is left unscanned
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.complete());  // done, but the body is not forwarded yet
  b.consume(s.ready);
  s.ready = 0;
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(b.view(), kNextRequest);
}

TEST(BodyScan, ContentLengthBodyForwardedInSmallPiecesIsExact) {
  const std::string body(5000, 'b');
  Relay r;
  r.scan.start(BodyKind::ContentLength, body.size());
  r.feed(body + std::string(kNextRequest), 7);
  EXPECT_TRUE(r.valid);
  EXPECT_TRUE(r.scan.complete());
  EXPECT_EQ(r.forwarded, body);
  EXPECT_EQ(r.src.view(), kNextRequest);
}

TEST(BodyScan, ChunkedBodyInOneReadStopsAtItsEnd) {
  BodyScan s;
  s.start(BodyKind::Chunked, 0);
  Buffer b;
  b.append(kChunkedBody);
  b.append(kNextRequest);
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.ready, kChunkedBody.size());
}

TEST(BodyScan, ChunkedBodyFedOneByteAtATimeEndsOnItsLastByte) {
  BodyScan s;
  s.start(BodyKind::Chunked, 0);
  Buffer b;
  for (size_t i = 0; i < kChunkedBody.size(); ++i) {
    b.append(kChunkedBody.substr(i, 1));
    ASSERT_TRUE(s.scan(b, false)) << "byte " << i;
    // Without consuming, the scanner must see only the new byte each time.
    ASSERT_EQ(s.ready, i + 1) << "byte " << i;
    ASSERT_EQ(s.done, i + 1 == kChunkedBody.size()) << "byte " << i;
  }
  b.append(kNextRequest);
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, kChunkedBody.size());
}

TEST(BodyScan, ChunkedBodySplitAnywhereIsForwardedExactly) {
  const std::string input = std::string(kChunkedBody) + std::string(kNextRequest);
  for (size_t piece = 1; piece <= input.size(); ++piece) {
    Relay r;
    r.scan.start(BodyKind::Chunked, 0);
    r.feed(input, piece);
    ASSERT_TRUE(r.valid) << "piece " << piece;
    ASSERT_TRUE(r.scan.complete()) << "piece " << piece;
    ASSERT_EQ(r.forwarded, kChunkedBody) << "piece " << piece;
    ASSERT_EQ(r.src.view(), kNextRequest) << "piece " << piece;
  }
}

TEST(BodyScan, InvalidChunkedFramingFailsTheScan) {
  BodyScan s;
  s.start(BodyKind::Chunked, 0);
  Buffer b;
  b.append("4\r\nWiki\r\nzz\r\n");
  EXPECT_FALSE(s.scan(b, false));
  EXPECT_FALSE(s.done);
}

TEST(BodyScan, StartResetsTheChunkedScannerForTheNextMessage) {
  Relay r;
  r.scan.start(BodyKind::Chunked, 0);
  r.feed("4\r\nWi", 100);  // abandoned midway (e.g. the request failed)
  r.scan.start(BodyKind::Chunked, 0);
  r.src.clear();
  r.forwarded.clear();
  r.feed(kChunkedBody, 3);
  EXPECT_TRUE(r.valid);
  EXPECT_TRUE(r.scan.complete());
  EXPECT_EQ(r.forwarded, kChunkedBody);
}

TEST(BodyScan, UntilCloseForwardsEverythingAndEndsOnlyAtEof) {
  Relay r;
  r.scan.start(BodyKind::UntilClose, 0);
  r.feed("part one, ", 4);
  EXPECT_FALSE(r.scan.done);
  r.feed("part two", 3, /*eof_at_end=*/true);
  EXPECT_TRUE(r.scan.complete());
  EXPECT_EQ(r.forwarded, "part one, part two");
}

TEST(BodyScan, UntilCloseWithNoBytesEndsAtEof) {
  BodyScan s;
  s.start(BodyKind::UntilClose, 0);
  Buffer b;
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_FALSE(s.done);
  EXPECT_TRUE(s.scan(b, true));
  EXPECT_TRUE(s.complete());
}

TEST(BodyScan, StartAfterACompleteBodyBeginsAFreshCount) {
  BodyScan s;
  Buffer b;
  s.start(BodyKind::ContentLength, 3);
  b.append("abcdefgh");
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, 3u);
  b.consume(3);
  s.start(BodyKind::ContentLength, 4);
  EXPECT_EQ(s.ready, 0u);
  EXPECT_FALSE(s.done);
  EXPECT_TRUE(s.scan(b, false));
  EXPECT_EQ(s.ready, 4u);
  EXPECT_TRUE(s.done);
}

}  // namespace
}  // namespace banyan::dp::proxy
