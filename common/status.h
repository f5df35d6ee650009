#pragma once
// Status: the result of an operation whose failure is expected and must be looked at
// by the caller (a malformed grid, a busy database, a missing file), as leveldb's Status.

#include <string>
#include <utility>

namespace kvsafe {

class [[nodiscard]] Status {
 public:
  enum class Code { kOk, kInvalidInput, kNotFound, kBusy, kIoError, kUnsupported };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid_input(std::string message) { return {Code::kInvalidInput, std::move(message)}; }
  static Status not_found(std::string message) { return {Code::kNotFound, std::move(message)}; }
  static Status busy(std::string message) { return {Code::kBusy, std::move(message)}; }
  static Status io_error(std::string message) { return {Code::kIoError, std::move(message)}; }
  static Status unsupported(std::string message) { return {Code::kUnsupported, std::move(message)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Empty when ok; otherwise the user-facing explanation.
  const std::string& message() const { return message_; }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace kvsafe
