#pragma once
// The kvsafe command's exit codes, as the CLI's files name them; the numbers live in
// common/exit_codes.h.

#include "common/exit_codes.h"

namespace kvsafe::cli {

using kvsafe::kExitFailure;
using kvsafe::kExitInterrupted;
using kvsafe::kExitOk;
using kvsafe::kExitUsage;

}  // namespace kvsafe::cli
