#include "text/tokenizer_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "common/error.h"

namespace kvsafe::engine {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return std::string(reinterpret_cast<const char*>(buffer));
}

// Per-thread match state: PCRE2 match data and JIT stacks may not be shared between
// threads, and creating them per call would cost more than most matches.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(16, nullptr);
  // NOTE: the default 32 KiB JIT stack overflows on long whitespace runs under
  // `\s+(?!\S)`; 8 MiB covers inputs of many megabytes.
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);

  ThreadMatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
};

ThreadMatchState& thread_match_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

TokenizerRegex::TokenizerRegex(std::string_view pattern, std::string_view source) : pattern_(pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error_code, &error_offset, nullptr);
  KVSAFE_CHECK(code_ != nullptr, source, ": pre-tokenizer regex does not compile at offset ", error_offset, " (",
               pcre2_message(error_code), "): ", pattern_);
  // JIT is an optimization: without it (e.g. an unsupported CPU) matching still works.
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
}

TokenizerRegex::~TokenizerRegex() {
  pcre2_code_free(code_);
}

void TokenizerRegex::for_each_match(std::string_view text,
                                    const std::function<void(std::size_t, std::size_t)>& on_match) const {
  ThreadMatchState& state = thread_match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t offset = 0;
  while (offset <= text.size()) {
    // NOTE: PCRE2_NO_UTF_CHECK: the tokenizer validates its input once, up front;
    // checking again per piece would cost more than the match.
    const int rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    KVSAFE_CHECK(rc >= 0, "pre-tokenizer regex failed (", pcre2_message(rc), ") on ", text.size(),
                 " bytes of input: ", pattern_);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    const std::size_t begin = ovector[0];
    const std::size_t end = ovector[1];
    if (end > begin) {
      on_match(begin, end);
      offset = end;
    } else {
      // An empty match: step over one character so the scan always advances.
      if (begin >= text.size()) return;
      offset = begin + 1;
      while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
    }
  }
}

}  // namespace kvsafe::engine
