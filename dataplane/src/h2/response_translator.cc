#include "h2/response_translator.h"

#include <algorithm>

#include "h2/nv.h"

namespace banyan::dp::h2 {
namespace {

// Our own heads: the listener's limits plus what Banyan inserts.
constexpr http::Limits kHeadLimits{16384, 262144, 1000};
constexpr size_t kMaxTrailerLine = 65536;

}  // namespace

bool isConnectionSpecific(std::string_view name) {
  switch (name.size()) {
    case 2: return http::equalsIgnoreCase(name, "te");
    case 7: return http::equalsIgnoreCase(name, "upgrade");
    case 10:
      return http::equalsIgnoreCase(name, "connection") || http::equalsIgnoreCase(name, "keep-alive");
    case 16: return http::equalsIgnoreCase(name, "proxy-connection");
    case 17: return http::equalsIgnoreCase(name, "transfer-encoding");
    default: return false;
  }
}

ResponseTranslator::Status ResponseTranslator::parseHead(std::vector<ResponseHead>& heads,
                                                         size_t* consumed) {
  *consumed = 0;
  auto r = http::parseResponseHead(pending_, kHeadLimits, head_request_ ? "HEAD" : "GET", scratch_);
  if (r.status == http::ParseStatus::NeedMore) return Status::Ok;
  if (r.status == http::ParseStatus::Invalid) return Status::Invalid;
  // HTTP/2 has no 101 (RFC 9113 section 8.6): the proxy never upgrades a stream.
  if (scratch_.status == 101) return Status::Invalid;
  ResponseHead h;
  h.status = scratch_.status;
  h.final = scratch_.status >= 200;
  const bool framed_by_length =
      scratch_.body == http::BodyKind::ContentLength || scratch_.body == http::BodyKind::None;
  for (const auto& hd : scratch_.headers) {
    if (isConnectionSpecific(hd.name)) continue;
    // Content-Length stays only where it states the body's length (or the
    // length a HEAD/304 would have had).
    if (!framed_by_length && http::equalsIgnoreCase(hd.name, "content-length")) continue;
    h.fields.push_back({lower(hd.name), std::string(hd.value)});
  }
  h.has_body = h.final && scratch_.body != http::BodyKind::None;
  heads.push_back(std::move(h));
  *consumed = r.consumed;
  if (!heads.back().final) return Status::Ok;  // the final head follows
  switch (scratch_.body) {
    case http::BodyKind::None: state_ = State::Done; break;
    case http::BodyKind::ContentLength:
      left_ = scratch_.content_length;
      state_ = left_ ? State::Length : State::Done;
      break;
    case http::BodyKind::Chunked:
      state_ = State::ChunkSize;
      left_ = 0;
      size_digits_ = 0;
      break;
    case http::BodyKind::UntilClose: state_ = State::UntilClose; break;
  }
  return Status::Ok;
}

ResponseTranslator::Status ResponseTranslator::feed(std::string_view in,
                                                    std::vector<ResponseHead>& heads,
                                                    std::string& body) {
  if (invalid_) return Status::Invalid;
  std::string carry;  // bytes after a head, still to translate
  for (;;) {
    switch (state_) {
      case State::Head: {
        if (in.empty()) return Status::Ok;
        pending_.append(in);
        in = {};
        size_t consumed = 0;
        if (parseHead(heads, &consumed) != Status::Ok) return fail();
        if (consumed == 0) {
          if (pending_.size() > kHeadLimits.max_head) return fail();
          return Status::Ok;
        }
        carry = pending_.substr(consumed);
        pending_.clear();
        in = carry;
        continue;
      }
      case State::Length: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(left_, in.size()));
        body.append(in.substr(0, take));
        in.remove_prefix(take);
        left_ -= take;
        if (left_ != 0) return Status::Ok;
        state_ = State::Done;
        continue;
      }
      case State::UntilClose:
        body.append(in);
        return Status::Ok;
      case State::ChunkSize: {
        if (in.empty()) return Status::Ok;
        char c = in.front();
        int v = hexValue(c);
        if (v >= 0) {
          if (++size_digits_ > 15) return fail();
          left_ = left_ * 16 + static_cast<uint64_t>(v);
          in.remove_prefix(1);
          continue;
        }
        if (size_digits_ == 0) return fail();
        state_ = State::ChunkExt;  // extensions, BWS and the line end
        continue;
      }
      case State::ChunkExt: {
        size_t lf = in.find('\n');
        if (lf == std::string_view::npos) return Status::Ok;
        in.remove_prefix(lf + 1);
        size_digits_ = 0;
        state_ = left_ == 0 ? State::Trailer : State::ChunkData;
        continue;
      }
      case State::ChunkData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(left_, in.size()));
        body.append(in.substr(0, take));
        in.remove_prefix(take);
        left_ -= take;
        if (left_ != 0) return Status::Ok;
        state_ = State::ChunkDataEnd;
        continue;
      }
      case State::ChunkDataEnd: {
        if (in.empty()) return Status::Ok;
        char c = in.front();
        in.remove_prefix(1);
        if (c == '\r') continue;
        if (c != '\n') return fail();
        state_ = State::ChunkSize;
        left_ = 0;
        continue;
      }
      case State::Trailer: {
        size_t lf = in.find('\n');
        if (lf == std::string_view::npos) {
          pending_.append(in);
          if (pending_.size() > kMaxTrailerLine) return fail();
          return Status::Ok;
        }
        pending_.append(in.substr(0, lf));
        in.remove_prefix(lf + 1);
        if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
        if (pending_.empty()) {
          state_ = State::Done;
          continue;
        }
        size_t colon = pending_.find(':');
        if (colon == std::string::npos || colon == 0) return fail();
        std::string_view name(pending_.data(), colon);
        std::string_view value = std::string_view(pending_).substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        // Framing and routing fields have no place in trailers (RFC 9110 section 6.5.1).
        if (!isConnectionSpecific(name) && !http::equalsIgnoreCase(name, "content-length") &&
            !http::equalsIgnoreCase(name, "host"))
          trailers_.push_back({lower(name), std::string(value)});
        pending_.clear();
        continue;
      }
      case State::Done:
        return Status::Ok;  // nothing belongs to this stream after its response
    }
  }
}

void ResponseTranslator::endOfInput() {
  if (state_ == State::UntilClose) state_ = State::Done;
}

}  // namespace banyan::dp::h2
