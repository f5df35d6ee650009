#include "common/logging.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace kvsafe {
namespace {

void append_json_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
}

// One JSON object per line on stderr, with the message escaped properly (spdlog's
// pattern formatter does not escape), so cluster log collectors can parse every line.
class JsonStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line = "{\"time\":\"";
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch());
    line += fmt::format("{:%Y-%m-%dT%H:%M:%S}", fmt::gmtime(std::chrono::system_clock::to_time_t(msg.time)));
    line += fmt::format(".{:06}Z\",\"level\":\"", micros.count() % 1000000);
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += fmt::format("\",\"pid\":{},\"msg\":\"", static_cast<long>(::getpid()));
    append_json_escaped(line, std::string_view(msg.payload.data(), msg.payload.size()));
    line += "\"}\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

// The live status line (show_live_line): text shown at the bottom of the terminal, or empty.
struct LiveLine {
  std::mutex mutex;
  std::string text;
};

LiveLine& live_line() {
  static LiveLine line;
  return line;
}

// Plain text on stderr that keeps the live line at the bottom: a log line first clears it
// (carriage return + erase line), prints itself with its newline, then redraws it.
class TextStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    LiveLine& live = live_line();
    const std::lock_guard lock(live.mutex);
    if (!live.text.empty()) std::fputs("\r\x1b[2K", stderr);
    std::fwrite(formatted.data(), 1, formatted.size(), stderr);
    if (!live.text.empty()) std::fputs(live.text.c_str(), stderr);
    std::fflush(stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

void show_live_line(const std::string& text) {
  LiveLine& live = live_line();
  const std::lock_guard lock(live.mutex);
  live.text = text;
  std::fputs("\r\x1b[2K", stderr);
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
}

void clear_live_line() {
  LiveLine& live = live_line();
  const std::lock_guard lock(live.mutex);
  if (live.text.empty()) return;
  live.text.clear();
  std::fputs("\r\x1b[2K", stderr);
  std::fflush(stderr);
}

namespace {
LogFormat g_log_format = LogFormat::kText;
}  // namespace

LogFormat current_log_format() {
  return g_log_format;
}

void print_to_stderr_lines(const std::string& text) {
  if (g_log_format == LogFormat::kText) {
    std::fputs(text.c_str(), stderr);
    return;
  }
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (!line.empty()) {
      if (line.find(": warning: ") != std::string::npos) {
        spdlog::warn("{}", line);
      } else {
        spdlog::error("{}", line);
      }
    }
    start = end + 1;
  }
}

void configure_logging(const LoggingOptions& options) {
  g_log_format = options.format;
  std::shared_ptr<spdlog::logger> logger;
  if (options.format == LogFormat::kJson) {
    logger = std::make_shared<spdlog::logger>("kvsafe", std::make_shared<JsonStderrSink>());
  } else {
    logger = std::make_shared<spdlog::logger>("kvsafe", std::make_shared<TextStderrSink>());
    logger->set_pattern("[%H:%M:%S.%e] [%l] %v");
  }
  logger->set_level(options.verbose ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace kvsafe
