#pragma once
// One HTTP(S) download into a local file, through libcurl. The only code in kvsafe that
// opens network connections; tests point it at a server on 127.0.0.1.

#include <filesystem>
#include <string>

#include "common/status.h"

namespace kvsafe::eval {

struct HttpDownloadOptions {
  long connect_timeout_seconds = 30;  // give up when no connection is made in this time
  long timeout_seconds = 600;         // whole transfer limit
  long max_redirects = 5;             // GitHub raw URLs may redirect
};

// Fetches `url` into `destination` (created or truncated). Returns io_error naming the URL
// for a connection failure, a timeout or an HTTP status >= 400 ("HTTP 404"); the partial
// file is then removed. Follows redirects. Thread-safe (libcurl is initialized once).
Status http_download(const std::string& url, const std::filesystem::path& destination,
                     const HttpDownloadOptions& options = {});

}  // namespace kvsafe::eval
