#pragma once
// IFEval instruction checkers (target kvsafe_eval_ifeval, torch-free): the 25 instruction
// types of IFEval's registry, strict and loose verdicts, prompt- and instruction-level
// accuracy. Written from the instruction definitions of the reference implementation
// (shared/reference/ifeval_oracle, Apache-2.0) and checked against it as an oracle
// (tests/eval/ifeval_test.cpp, fixture from tests/oracles/ifeval_oracle.py); docs/ifeval.md.
//
// Known divergences from the reference (also in docs/ifeval.md; the oracle cases check
// everything else, and list the language rows that disagree):
//   * Sentences: untrained Punkt (eval/ifeval_text.h): abbreviations end sentences.
//   * Capital words: nltk.word_tokenize reproduced only as far as it changes the count.
//   * Language: the reference asks langdetect (a Java port, in Python); here CLD2 decides
//     (ifeval_language.cpp, Debian's libcld2), its codes mapped to langdetect's. A text with no
//     letters follows (langdetect raises there and the reference counts it followed); a text
//     CLD2 finds no language in falls back to its script: a non-Latin script names its
//     language (or the few that share it), Latin script follows any Latin-script target and
//     counts as English. The two detectors can disagree on short or mixed texts.
//   * Regex kwargs: the reference uses keywords, forbidden words, section splitters and
//     postscript markers as Python regexes; here they are literal text (every value in
//     IFEval's input_data.jsonl is literal) and a value with a regex metacharacter is refused
//     (InputError). Case-insensitive matching compares str.lower() of each code point.
//   * JSON: parsed by nlohmann::json; Python's json.loads also accepts NaN/Infinity.
//   * Kwargs the reference would draw at random (missing, null, negative, or a letter that is
//     not a-z) are refused (InputError) instead.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvsafe::eval::ifeval {

// One instruction of a prompt: its registry id ("keywords:existence") and kwargs (the
// matching element of input_data.jsonl's "kwargs").
struct Instruction {
  std::string id;                                    // e.g. "punctuation:no_comma"
  nlohmann::json kwargs = nlohmann::json::object();  // the instruction's arguments
};

// The 25 ids of the reference's registry, sorted.
std::span<const std::string_view> instruction_ids();

// The reference's check_following: does `response` (UTF-8) follow the instruction? Throws
// InputError naming the id for an unknown id, and naming the id and key for a missing or
// invalid kwarg. Never aborts; invalid UTF-8 bytes read as U+FFFD.
bool follows(const Instruction& instruction, std::string_view response);

// The reference's evaluation of one instruction: strict = a response that is not all
// whitespace and follows; loose = the same for any of the response, it with '*' removed,
// without its first line, without its last line, without both (each of those three
// stripped, and again with '*' removed).
bool follows_strict(const Instruction& instruction, std::string_view response);
bool follows_loose(const Instruction& instruction, std::string_view response);

// One prompt's instructions from an input_data.jsonl object ("instruction_id_list",
// "kwargs"; "key" only names it in errors). Null kwargs are dropped, as IFEval's published
// loaders do. Throws InputError naming the key when the lists are missing or differ in length.
std::vector<Instruction> instructions_from_input(const nlohmann::json& example);

// Per-instruction verdicts of one prompt.
struct PromptVerdict {
  std::vector<bool> strict;  // one per instruction, in order
  std::vector<bool> loose;   // one per instruction, in order
};

PromptVerdict evaluate_prompt(std::span<const Instruction> instructions, std::string_view response);

// One instruction's verdicts on a stored answer, as a run records them: strict and loose, or
// neither when the instruction cannot be scored without guessing (the kwargs the reference would
// draw at random: IFEval keys 1122 and 1129 ask for the "letter" '#' and '!'), with why.
struct ScoredInstruction {
  std::string id{};
  std::optional<bool> strict{};
  std::optional<bool> loose{};
  std::string unscored{};  // the InputError's message when not scored; "" otherwise
};

// Scores every instruction of a prompt; never throws for one bad instruction (its verdicts are
// left empty and `unscored` says why), so one unscorable instruction costs only itself.
std::vector<ScoredInstruction> score_instructions(std::span<const Instruction> instructions, std::string_view response);

// Accuracies as the reference reports them: prompt level = share of prompts whose every
// instruction is followed, instruction level = share of all instructions followed. 0 when
// there is nothing to average.
struct Accuracy {
  double prompt_level_strict = 0;  // prompts with all instructions followed (strict)
  double inst_level_strict = 0;    // instructions followed (strict), over all prompts
  double prompt_level_loose = 0;   // prompts with all instructions followed (loose)
  double inst_level_loose = 0;     // instructions followed (loose), over all prompts
};

Accuracy accuracy(std::span<const PromptVerdict> verdicts);

// The language CLD2 (Compact Language Detector 2) finds in a UTF-8 text, as langdetect's code
// ("en", "he", "zh-cn", ...); nullopt when it finds none (too little text: the caller then
// falls back to language_candidates).
std::optional<std::string> detected_language(std::string_view text);

// The script-based language fallback (see above): the langdetect codes a text's dominant
// script allows ({"ko"}, {"bg", "mk", "ru", "uk"}, ...); empty for a text with no letters;
// {"unknown"} for Latin script; {"other"} for a script it does not know (no target follows).
std::vector<std::string> language_candidates(std::string_view text);

}  // namespace kvsafe::eval::ifeval
