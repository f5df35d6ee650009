#pragma once
// Errors for kvsafe: the three channels of STYLE.md.
//  1. KVSAFE_ASSERT: an internal invariant broke (a bug in kvsafe). Throws InternalError
//     with file:line; never aborts.
//  2. KVSAFE_CHECK: bad input reached a library. Throws InputError whose message is
//     built only when the check fails; callers name the file, key, line or byte offset.
//  3. Expected failures at boundaries return a Status (common/status.h) instead.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace kvsafe {

// Base of every exception kvsafe throws on purpose; what() is the user-facing text.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The input (a file, a flag, a value) is wrong; the message says where and why.
class InputError : public Error {
 public:
  using Error::Error;
};

// kvsafe itself is wrong: an invariant that should hold did not.
class InternalError : public Error {
 public:
  using Error::Error;
};

namespace detail {
// Concatenates any streamable arguments; only called on the failure path.
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

}  // namespace kvsafe

#define KVSAFE_CHECK(cond, ...)                                          \
  do {                                                                   \
    if (!(cond)) [[unlikely]] {                                          \
      throw ::kvsafe::InputError(::kvsafe::detail::concat(__VA_ARGS__)); \
    }                                                                    \
  } while (false)

#define KVSAFE_ASSERT(cond, ...)                                                                              \
  do {                                                                                                        \
    if (!(cond)) [[unlikely]] {                                                                               \
      throw ::kvsafe::InternalError(::kvsafe::detail::concat("internal error at ", __FILE__, ":", __LINE__,   \
                                                             ": assertion `", #cond, "` failed",              \
                                                             ::kvsafe::detail::concat(": ", ##__VA_ARGS__))); \
    }                                                                                                         \
  } while (false)
