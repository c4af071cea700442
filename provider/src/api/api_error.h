// The API's error type. Inside this module handlers throw ApiError; the service turns it
// into Octavia's fault body {"faultcode", "faultstring", "debuginfo"} at the edge, so no
// exception leaves the module.
#pragma once

#include <stdexcept>
#include <string>

namespace banyan::provider::api {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message)
      : std::runtime_error(message), status_(status), message_(std::move(message)) {}
  int status() const { return status_; }
  const std::string& message() const { return message_; }
  // WSME's faultcode: "Client" for 4xx, "Server" otherwise.
  const char* faultcode() const { return status_ < 500 ? "Client" : "Server"; }

 private:
  int status_;
  std::string message_;
};

[[noreturn]] inline void throwApi(int status, std::string message) {
  throw ApiError(status, std::move(message));
}
// WSME's type-validation wording, which tempest and clients match on.
[[noreturn]] inline void throwInvalidField(const std::string& field, const std::string& value,
                                           const std::string& reason) {
  throw ApiError(400, "Invalid input for field/attribute " + field + ". Value: '" + value + "'. " +
                          reason);
}
[[noreturn]] inline void throwValidation(const std::string& detail) {
  throw ApiError(400, "Validation failure: " + detail);
}
[[noreturn]] inline void throwNotFound(const std::string& resource, const std::string& id) {
  throw ApiError(404, resource + " " + id + " not found.");
}
[[noreturn]] inline void throwForbidden() {
  throw ApiError(403, "Policy does not allow this request to be performed.");
}
[[noreturn]] inline void throwImmutable(const std::string& resource, const std::string& id) {
  throw ApiError(409, resource + " " + id + " is immutable and cannot be updated.");
}

}  // namespace banyan::provider::api
