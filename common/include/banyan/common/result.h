// Result<T>: a value or an Error, returned across module boundaries instead of
// exceptions (the dataplane is built without them).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace banyan::common {

enum class ErrorCode {
  kInvalidArgument,  // hostile or malformed input; the message says what and where
  kNotFound,
  kConflict,
  kUnavailable,      // the environment failed: a syscall, a peer, a file
  kInternal,
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string context;  // e.g. a JSON pointer ("/listeners/0/protocol_port") or a file path
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}     // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Error makeError(ErrorCode code, std::string message, std::string context = {}) {
  return Error{code, std::move(message), std::move(context)};
}

}  // namespace banyan::common
