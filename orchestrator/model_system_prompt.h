#pragma once
// A model's own system prompt (`models[].system_prompt` or `system_prompt_file`, issue 20): the
// text a model's chat template would insert by default (Mistral-Small-24B's embeds the current
// date), given explicitly so the run can be reproduced. Placeholders {date} / {today} become the
// pinned `system_prompt_date` (YYYY-MM-DD) and {yesterday} the day before it; the date is part
// of the prompt, hence of the cell, so it is pinned in the grid rather than read from the clock
// (a run resumed the next day must find the same cells).

#include <optional>
#include <string>
#include <string_view>

namespace kvsafe::orchestrator {

// The calendar date of "YYYY-MM-DD", normalized; nullopt when it is not a real date.
std::optional<std::string> parse_iso_date(std::string_view text);

// Whether `text` holds a date placeholder: {date}, {today} or {yesterday}.
bool has_date_placeholder(std::string_view text);

// `text` with the placeholders replaced (`date` from parse_iso_date). Other braces stay.
std::string substitute_prompt_date(std::string_view text, const std::string& date);

}  // namespace kvsafe::orchestrator
