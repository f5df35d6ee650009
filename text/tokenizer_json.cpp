#include "text/tokenizer_json.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace kvsafe::engine {
namespace {

using nlohmann::json;

// Parsing context: the file and the JSON path of the value being read, for errors.
struct Where {
  std::string source;
  std::string key;
  Where at(const std::string& child) const { return {source, key + "." + child}; }
  Where at(std::size_t index) const { return {source, key + "[" + std::to_string(index) + "]"}; }
};

[[noreturn]] void fail(const Where& where, const std::string& message) {
  throw InputError(where.source + ": " + where.key + ": " + message);
}

const json& field(const json& object, const char* name, const Where& where) {
  if (!object.is_object() || !object.contains(name)) fail(where, std::string("missing key \"") + name + "\"");
  return object.at(name);
}

std::string get_string(const json& object, const char* name, const Where& where) {
  const json& value = field(object, name, where);
  if (!value.is_string()) fail(where.at(name), "expected a string, got " + std::string(value.type_name()));
  return value.get<std::string>();
}

bool get_bool(const json& object, const char* name, bool fallback, const Where& where) {
  if (!object.contains(name) || object.at(name).is_null()) return fallback;
  if (!object.at(name).is_boolean()) fail(where.at(name), "expected true or false");
  return object.at(name).get<bool>();
}

std::int64_t get_int(const json& value, const Where& where) {
  if (!value.is_number_integer()) fail(where, "expected an integer, got " + std::string(value.type_name()));
  return value.get<std::int64_t>();
}

TokenId get_id(const json& value, const Where& where) {
  const std::int64_t id = get_int(value, where);
  if (id < 0 || id >= (std::int64_t{1} << 30)) fail(where, "token id " + std::to_string(id) + " is out of range");
  return static_cast<TokenId>(id);
}

// {"String": "..."} or {"Regex": "..."}.
std::pair<std::string, bool> get_pattern(const json& object, const Where& where) {
  const json& pattern = field(object, "pattern", where);
  if (pattern.contains("String")) return {get_string(pattern, "String", where.at("pattern")), false};
  if (pattern.contains("Regex")) return {get_string(pattern, "Regex", where.at("pattern")), true};
  fail(where.at("pattern"), "expected {\"String\": ...} or {\"Regex\": ...}");
}

// Steps of a possibly nested Sequence, flattened.
std::vector<std::pair<const json*, Where>> flatten(const json& node, const char* list_key, const Where& where) {
  std::vector<std::pair<const json*, Where>> out;
  if (node.is_null()) return out;
  if (get_string(node, "type", where) == "Sequence") {
    const json& list = field(node, list_key, where);
    if (!list.is_array()) fail(where.at(list_key), "expected an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto inner = flatten(list[i], list_key, where.at(list_key).at(i));
      out.insert(out.end(), inner.begin(), inner.end());
    }
    return out;
  }
  out.emplace_back(&node, where);
  return out;
}

PrependScheme get_prepend_scheme(const json& node, const Where& where) {
  if (node.contains("prepend_scheme")) {
    const std::string scheme = get_string(node, "prepend_scheme", where);
    if (scheme == "always") return PrependScheme::kAlways;
    if (scheme == "first") return PrependScheme::kFirst;
    if (scheme == "never") return PrependScheme::kNever;
    fail(where.at("prepend_scheme"), "unknown scheme \"" + scheme + "\" (supported: always, first, never)");
  }
  // Files written before prepend_scheme existed say add_prefix_space.
  return get_bool(node, "add_prefix_space", true, where) ? PrependScheme::kAlways : PrependScheme::kNever;
}

std::vector<NormalizerStep> parse_normalizer(const json& root, const Where& where) {
  std::vector<NormalizerStep> steps;
  if (!root.contains("normalizer")) return steps;
  for (const auto& [node_ptr, at] : flatten(root.at("normalizer"), "normalizers", where.at("normalizer"))) {
    const json& node = *node_ptr;
    const std::string type = get_string(node, "type", at);
    NormalizerStep step;
    if (type == "NFC") {
      step.kind = NormalizerStep::Kind::kNfc;
    } else if (type == "NFD") {
      step.kind = NormalizerStep::Kind::kNfd;
    } else if (type == "NFKC") {
      step.kind = NormalizerStep::Kind::kNfkc;
    } else if (type == "NFKD") {
      step.kind = NormalizerStep::Kind::kNfkd;
    } else if (type == "Lowercase") {
      step.kind = NormalizerStep::Kind::kLowercase;
    } else if (type == "Prepend") {
      step.kind = NormalizerStep::Kind::kPrepend;
      step.content = get_string(node, "prepend", at);
    } else if (type == "Replace") {
      step.kind = NormalizerStep::Kind::kReplace;
      std::tie(step.pattern, step.pattern_is_regex) = get_pattern(node, at);
      step.content = get_string(node, "content", at);
    } else if (type == "Strip") {
      step.kind = NormalizerStep::Kind::kStrip;
      step.strip_left = get_bool(node, "strip_left", false, at);
      step.strip_right = get_bool(node, "strip_right", false, at);
    } else {
      fail(at, "unsupported normalizer \"" + type +
                   "\" (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip)");
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

SplitBehavior parse_behavior(const std::string& name, const Where& where) {
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  fail(where, "unknown split behavior \"" + name +
                  "\" (supported: Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous)");
}

std::vector<PreTokenizerStep> parse_pre_tokenizer(const json& root, const Where& where) {
  std::vector<PreTokenizerStep> steps;
  if (!root.contains("pre_tokenizer")) return steps;
  for (const auto& [node_ptr, at] : flatten(root.at("pre_tokenizer"), "pretokenizers", where.at("pre_tokenizer"))) {
    const json& node = *node_ptr;
    const std::string type = get_string(node, "type", at);
    PreTokenizerStep step;
    if (type == "ByteLevel") {
      step.kind = PreTokenizerStep::Kind::kByteLevel;
      step.add_prefix_space = get_bool(node, "add_prefix_space", true, at);
      step.use_regex = get_bool(node, "use_regex", true, at);
    } else if (type == "Split") {
      step.kind = PreTokenizerStep::Kind::kSplit;
      std::tie(step.pattern, step.pattern_is_regex) = get_pattern(node, at);
      step.behavior = parse_behavior(get_string(node, "behavior", at), at.at("behavior"));
      step.invert = get_bool(node, "invert", false, at);
    } else if (type == "Digits") {
      step.kind = PreTokenizerStep::Kind::kDigits;
      step.individual_digits = get_bool(node, "individual_digits", false, at);
    } else if (type == "Metaspace") {
      step.kind = PreTokenizerStep::Kind::kMetaspace;
      step.replacement = get_string(node, "replacement", at);
      step.prepend_scheme = get_prepend_scheme(node, at);
      step.split = get_bool(node, "split", true, at);
    } else if (type == "WhitespaceSplit") {
      step.kind = PreTokenizerStep::Kind::kWhitespaceSplit;
    } else {
      fail(at, "unsupported pre-tokenizer \"" + type +
                   "\" (supported: Sequence, ByteLevel, Split, Digits, Metaspace, WhitespaceSplit)");
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

std::vector<DecoderStep> parse_decoder(const json& root, const Where& where) {
  std::vector<DecoderStep> steps;
  if (!root.contains("decoder")) return steps;
  for (const auto& [node_ptr, at] : flatten(root.at("decoder"), "decoders", where.at("decoder"))) {
    const json& node = *node_ptr;
    const std::string type = get_string(node, "type", at);
    DecoderStep step;
    if (type == "ByteLevel") {
      step.kind = DecoderStep::Kind::kByteLevel;
    } else if (type == "Replace") {
      step.kind = DecoderStep::Kind::kReplace;
      bool regex = false;
      std::tie(step.pattern, regex) = get_pattern(node, at);
      if (regex) fail(at.at("pattern"), "regex patterns in a Replace decoder are not supported");
      step.content = get_string(node, "content", at);
    } else if (type == "ByteFallback") {
      step.kind = DecoderStep::Kind::kByteFallback;
    } else if (type == "Fuse") {
      step.kind = DecoderStep::Kind::kFuse;
    } else if (type == "Strip") {
      step.kind = DecoderStep::Kind::kStrip;
      step.content = get_string(node, "content", at);
      step.strip_start = static_cast<int>(get_int(field(node, "start", at), at.at("start")));
      step.strip_stop = static_cast<int>(get_int(field(node, "stop", at), at.at("stop")));
    } else if (type == "Metaspace") {
      step.kind = DecoderStep::Kind::kMetaspace;
      step.replacement = get_string(node, "replacement", at);
      step.prepend_scheme = get_prepend_scheme(node, at);
    } else {
      fail(at, "unsupported decoder \"" + type +
                   "\" (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)");
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

// BOS/EOS from a TemplateProcessing post-processor's "single" template: special tokens
// before $A are BOS, after it EOS (ByteLevel and RobertaProcessing-free models add none).
void parse_post_processor(const json& root, const Where& where, TokenizerData& data) {
  if (!root.contains("post_processor") || root.at("post_processor").is_null()) return;
  for (const auto& [node_ptr, at] : flatten(root.at("post_processor"), "processors", where.at("post_processor"))) {
    const json& node = *node_ptr;
    const std::string type = get_string(node, "type", at);
    if (type == "ByteLevel") continue;  // offsets only
    if (type != "TemplateProcessing") {
      fail(at, "unsupported post-processor \"" + type + "\" (supported: Sequence, ByteLevel, TemplateProcessing)");
    }
    const json& single = field(node, "single", at);
    const json& specials = field(node, "special_tokens", at);
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.size(); ++i) {
      const Where item_at = at.at("single").at(i);
      const json& item = single[i];
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      const std::string name = get_string(field(item, "SpecialToken", item_at), "id", item_at.at("SpecialToken"));
      const json& special = field(specials, name.c_str(), at.at("special_tokens"));
      const json& ids = field(special, "ids", at.at("special_tokens").at(name));
      if (!ids.is_array() || ids.size() != 1) fail(at.at("special_tokens").at(name), "expected exactly one id");
      const TokenId id = get_id(ids[0], at.at("special_tokens").at(name).at("ids").at(0));
      if (!seen_sequence) {
        if (data.add_bos) fail(item_at, "more than one token before $A is not supported");
        data.bos_id = id;
        data.add_bos = true;
      } else {
        if (data.add_eos) fail(item_at, "more than one token after $A is not supported");
        data.eos_id = id;
        data.add_eos = true;
      }
    }
  }
}

void parse_model(const json& root, const Where& where, TokenizerData& data) {
  const Where at = where.at("model");
  const json& model = field(root, "model", where);
  const std::string type = model.contains("type") ? get_string(model, "type", at) : "BPE";
  if (type != "BPE") fail(at.at("type"), "unsupported model \"" + type + "\" (supported: BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model.at(key).is_null() && model.at(key) != "") {
      fail(at.at(key), "is not supported (no model of the paper uses it)");
    }
  }
  if (model.contains("dropout") && !model.at("dropout").is_null() && model.at("dropout") != 0.0) {
    fail(at.at("dropout"), "BPE dropout is random; refusing it");
  }
  data.byte_fallback = get_bool(model, "byte_fallback", false, at);
  data.fuse_unk = get_bool(model, "fuse_unk", false, at);
  data.ignore_merges = get_bool(model, "ignore_merges", false, at);

  const json& vocab = field(model, "vocab", at);
  if (!vocab.is_object()) fail(at.at("vocab"), "expected an object {token: id}");
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [piece, id_value] : vocab.items()) {
    const Where entry = at.at("vocab").at(piece);
    const TokenId id = get_id(id_value, entry);
    if (static_cast<std::size_t>(id) >= tokens.size()) {
      fail(entry, "token id " + std::to_string(id) + " is out of range: the vocabulary has " +
                      std::to_string(tokens.size()) + " entries, so ids must be 0.." +
                      std::to_string(tokens.size() - 1));
    }
    if (seen[static_cast<std::size_t>(id)]) fail(entry, "token id " + std::to_string(id) + " is used twice");
    seen[static_cast<std::size_t>(id)] = true;
    tokens[static_cast<std::size_t>(id)] = piece;
  }
  data.tokens = std::move(tokens);

  if (model.contains("unk_token") && !model.at("unk_token").is_null()) {
    const std::string unk = get_string(model, "unk_token", at);
    const auto it = vocab.find(unk);
    if (it == vocab.end()) fail(at.at("unk_token"), "\"" + unk + "\" is not in the vocabulary");
    data.unk_id = get_id(*it, at.at("unk_token"));
  }

  const json& merges = field(model, "merges", at);
  if (!merges.is_array()) fail(at.at("merges"), "expected an array");
  data.merges.reserve(merges.size());
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const json& merge = merges[i];
    if (merge.is_string()) {
      // The older format: "left right", split at the single space.
      const std::string text = merge.get<std::string>();
      const std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        fail(at.at("merges").at(i), "expected \"left right\" with exactly one space, got \"" + text + "\"");
      }
      data.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      data.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      fail(at.at("merges").at(i), "expected \"left right\" or [\"left\", \"right\"]");
    }
  }
}

}  // namespace

TokenizerData parse_tokenizer_json(std::string_view json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& error) {
    // NOTE: nlohmann also rejects strings that are not valid UTF-8 here, with the byte.
    throw InputError(source + ": not valid JSON: " + error.what());
  }
  const Where where{source, "tokenizer.json"};
  if (!root.is_object()) fail(where, "expected a JSON object");
  TokenizerData data;
  data.source = source;
  data.bpe = BpeKind::kMergeRanks;
  parse_model(root, where, data);
  data.normalizer = parse_normalizer(root, where);
  data.pre_tokenizer = parse_pre_tokenizer(root, where);
  data.decoder = parse_decoder(root, where);
  if (root.contains("added_tokens")) {
    const json& added = root.at("added_tokens");
    if (!added.is_array()) fail(where.at("added_tokens"), "expected an array");
    for (std::size_t i = 0; i < added.size(); ++i) {
      const Where at = where.at("added_tokens").at(i);
      AddedToken token;
      token.id = get_id(field(added[i], "id", at), at.at("id"));
      token.content = get_string(added[i], "content", at);
      token.special = get_bool(added[i], "special", false, at);
      token.lstrip = get_bool(added[i], "lstrip", false, at);
      token.rstrip = get_bool(added[i], "rstrip", false, at);
      token.single_word = get_bool(added[i], "single_word", false, at);
      token.normalized = get_bool(added[i], "normalized", !token.special, at);
      data.added_tokens.push_back(std::move(token));
    }
  }
  parse_post_processor(root, where, data);
  return data;
}

TokenizerData load_tokenizer_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  KVSAFE_CHECK(in.good(), path.string(), ": cannot open tokenizer.json");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_tokenizer_json(text.str(), path.string());
}

}  // namespace kvsafe::engine
