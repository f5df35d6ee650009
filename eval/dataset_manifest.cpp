// The pinned manifest. Generated from ../shared/datasets/MANIFEST.sha256 and the files'
// sizes (`sha256sum`, `stat -c %s`); URLs from each folder's SOURCE.txt, at the commits
// recorded there, as raw.githubusercontent.com addresses:
//  - jailbreakbench/behaviors.csv and strongreject_dataset.csv come from the byte-identical
//    copies in andyrdt/refusal_direction @ 9d852fae (dataset/raw/), because the upstream
//    JailbreakBench CSV exists only at an unnamed parent commit and StrongREJECT's upstream
//    repository could not be checked (see their SOURCE.txt);
//  - paper_repo/ is pinned at the authors' short commit 682b9f6, the one SOURCE.txt records;
//  - wiki.test.raw has no single-file public copy (it is the file inside the official
//    wikitext-2-raw-v1.zip, rebuilt byte-exactly here; see wikitext-2/SOURCE.txt), so it has
//    no URL: `pull --from` a mirror provides it.

#include "eval/dataset_manifest.h"

namespace kvsafe::eval {
namespace {

constexpr ManifestEntry kEntries[] = {
    {"advbench/LICENSE", "1e4bb8e2313ef9ff36033526503aa8837c80ba1d4c055c2e7d9977760028eec7", 1065,
     ManifestKind::kLicence,
     "https://raw.githubusercontent.com/llm-attacks/llm-attacks/098262edf85f807224e70ecd87b9d83716bf6b73/LICENSE"},
    {"advbench/SOURCE.txt", "6879523ae8e60d3ee52399d5f4df2b529b87c16c34f32b473f3c13b7ec3d987a", 1346,
     ManifestKind::kProvenance, ""},
    {"advbench/harmful_behaviors.csv", "6cd1a5c63c07610d7eb67307772ee5606017ee950b5770ab288a2c487489d3e1", 82125,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/llm-attacks/llm-attacks/098262edf85f807224e70ecd87b9d83716bf6b73/data/advbench/"
     "harmful_behaviors.csv"},
    {"advbench/harmful_strings.csv", "2c4751403195634f88eb849d923670cb2d9a883bcc3d74456bf2f08141424a15", 34654,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/llm-attacks/llm-attacks/098262edf85f807224e70ecd87b9d83716bf6b73/data/advbench/"
     "harmful_strings.csv"},
    {"harmbench/LICENSE", "fe29c68dd1216e81e98a6069165e1c720757b23bbcaa6c0cb8f9a957bdaaca80", 1074,
     ManifestKind::kLicence,
     "https://raw.githubusercontent.com/centerforaisafety/HarmBench/8e1604d1171fe8a48d8febecd22f600e462bdcdd/LICENSE"},
    {"harmbench/SOURCE.txt", "4bb5b75b1af497602626b33819855fb2c3b1db1a609d26aaafbc0c51b418f5e2", 1874,
     ManifestKind::kProvenance, ""},
    {"harmbench/harmbench_behaviors_text_all.csv", "8d81accedd38eaaf8b760618622bb888417d1fd0c86eba65c427a16f1cbb4afc",
     198850, ManifestKind::kData,
     "https://raw.githubusercontent.com/centerforaisafety/HarmBench/8e1604d1171fe8a48d8febecd22f600e462bdcdd/data/"
     "behavior_datasets/harmbench_behaviors_text_all.csv"},
    {"harmbench/harmbench_behaviors_text_test.csv", "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29",
     160828, ManifestKind::kData,
     "https://raw.githubusercontent.com/centerforaisafety/HarmBench/8e1604d1171fe8a48d8febecd22f600e462bdcdd/data/"
     "behavior_datasets/harmbench_behaviors_text_test.csv"},
    {"harmbench/harmbench_behaviors_text_val.csv", "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534",
     38024, ManifestKind::kData,
     "https://raw.githubusercontent.com/centerforaisafety/HarmBench/8e1604d1171fe8a48d8febecd22f600e462bdcdd/data/"
     "behavior_datasets/harmbench_behaviors_text_val.csv"},
    {"ifeval/LICENSE", "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4", 11357,
     ManifestKind::kLicence,
     "https://raw.githubusercontent.com/josejg/instruction_following_eval/0c495b2f95155e8b10acb919ae283bfb4d5be6e2/"
     "LICENSE"},
    {"ifeval/SOURCE.txt", "5fa0218e71178559658babd932c0851881833a0994f5ae3d38ca43b4f141153b", 613,
     ManifestKind::kProvenance, ""},
    {"ifeval/input_data.jsonl", "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49", 207111,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/josejg/instruction_following_eval/0c495b2f95155e8b10acb919ae283bfb4d5be6e2/"
     "instruction_following_eval/data/input_data.jsonl"},
    {"jailbreakbench/LICENSE", "7e1ae8f3676f39ff6e62af1743385c176a9476b1157f35bb9d05b4e6c65b7d94", 1076,
     ManifestKind::kLicence,
     "https://raw.githubusercontent.com/JailbreakBench/jailbreakbench/04f9f94844f09bd2168d3d83e5dd870cded9fc57/"
     "LICENSE"},
    {"jailbreakbench/SOURCE.txt", "55d7efb50ee0d96d8b527133272639c9bb01431ceb6cd0c058b2e6db7639b174", 1470,
     ManifestKind::kProvenance, ""},
    {"jailbreakbench/behaviors.csv", "45e9a8923b28f547bb372fbaa9af7df8b38c818a80ae50c3bab97704197ff516", 23111,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/raw/"
     "jailbreakbench.csv"},
    {"paper_repo/SOURCE.txt", "5a720a9c32312deaf49a410d528ed82f5e72c0e586c6f4fbcf92deda9a13778b", 916,
     ManifestKind::kProvenance, ""},
    {"paper_repo/advbench.csv", "6cd1a5c63c07610d7eb67307772ee5606017ee950b5770ab288a2c487489d3e1", 82125,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/Adarsh321123/kv-quantization-alignment/682b9f6/data/benchmarks/advbench.csv"},
    {"paper_repo/harmbench.csv", "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29", 160828,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/Adarsh321123/kv-quantization-alignment/682b9f6/data/benchmarks/harmbench.csv"},
    {"paper_repo/jailbreak.txt", "98ff593a57d39d5a011a5fce3e2c174df7f199da38a0a8e84e4825a200bb6a18", 2160,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/Adarsh321123/kv-quantization-alignment/682b9f6/data/prompts/jailbreak.txt"},
    {"paper_repo/privacy.txt", "587a888c4320735fea3135cad2e7e8801c4fc9f65c36ee0cc897f0b0900d8790", 1262,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/Adarsh321123/kv-quantization-alignment/682b9f6/data/prompts/privacy.txt"},
    {"paper_repo/refusal.txt", "976c8d100a8015287cd8b28c1ec988e6d56120bf95e47e4170a8be2f9c95c8df", 1085,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/Adarsh321123/kv-quantization-alignment/682b9f6/data/prompts/refusal.txt"},
    {"paper_repo/xstest.csv", "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a", 38719,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/Adarsh321123/kv-quantization-alignment/682b9f6/data/benchmarks/xstest.csv"},
    {"refusal_direction/LICENSE", "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4", 11357,
     ManifestKind::kLicence,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/LICENSE"},
    {"refusal_direction/SOURCE.txt", "7badf37ae4fcf861d6f8b3ec548717726604de65c802cbcfd2d7a7463c777cf1", 1756,
     ManifestKind::kProvenance, ""},
    {"refusal_direction/splits/harmful_test.json", "5e12ae102c3791dee083a69ab6269a78e033411c629bc3f66f75d2fde196d9ef",
     115743, ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/"
     "splits/harmful_test.json"},
    {"refusal_direction/splits/harmful_train.json", "8f5c0eac0efd2a7f99084bbe8d0de2c465e31b1997184783c917969d9de9ece1",
     34613, ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/"
     "splits/harmful_train.json"},
    {"refusal_direction/splits/harmful_val.json", "305f1d1e6dfa6c50a32d24a18ef815f42b5441eb83e6d7767d242107162fd9f4",
     6763, ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/"
     "splits/harmful_val.json"},
    {"refusal_direction/splits/harmless_test.json", "1b5930ce5e855ada758b3116ce7c4aaea9b9d05f8cdd77b385511d4c84173b19",
     783466, ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/"
     "splits/harmless_test.json"},
    {"refusal_direction/splits/harmless_train.json", "86623b1f8a25aa35df153fc97a556dbcebb6a7c881538ae43ee479ca17f2e002",
     2344466, ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/"
     "splits/harmless_train.json"},
    {"refusal_direction/splits/harmless_val.json", "772010758e7d771ef4c7e5e4acdfd7598dcece1a6f383f20d382f640913a2a4d",
     780532, ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/"
     "splits/harmless_val.json"},
    {"refusal_markers/SOURCE.txt", "75f2b25e07d75eddd5641c1934a96ca03696fed8767ac38d5348c5f12f3531e3", 1314,
     ManifestKind::kProvenance, ""},
    {"refusal_markers/gcg_llm_attacks_api_experiments_key_words.json",
     "1a5b69be78caa74263760ea82a63aa9cf6ca35e2e268f5f96c86c74acbb74356", 1534, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_api_experiments_key_words.txt",
     "547936bcf5dcb60f0b7cfbad76ea776cff798e761580d0d7a3e27ccb549f8da5", 1243, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_attack_manager_default_test_prefixes.json",
     "e70a1940d6a45912e7df0ddebd977283a9e67292e26e8bb5280f0acea86863ef", 468, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_attack_manager_default_test_prefixes.txt",
     "e597de77f35f7ce3c59a2553caa1a611a13e95ab0d42ed6c79a862c65a35e49b", 489, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_demo_notebook_test_prefixes.json",
     "521a0894360f83d77dba0cf634ae9f8627263c425926295c55200676ab3afb9a", 425, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_demo_notebook_test_prefixes.txt",
     "e380a1ff1a42812d05dbfc9fcdcd337f690d9d15d14301be72bd87197c9b6384", 416, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_evaluate_individual_test_prefixes.json",
     "74b1b41e88c229215f79d210ca5c02397a82bc414cf8f5109d7f7f553ca713d3", 515, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_evaluate_individual_test_prefixes.txt",
     "1b9c84bf49567ec5931dec71066256e85ff0d86d73d49f69d5b3d134dd591c5a", 491, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_evaluate_test_prefixes.json",
     "3ee6fafb4f7f65797fe52831c4208780d46bdbc8083f089989aae993367d6034", 921, ManifestKind::kDerived, ""},
    {"refusal_markers/gcg_llm_attacks_evaluate_test_prefixes.txt",
     "16f49d736a6094335e7a13bdd431c8888d98cc74b3a273972cd03b870dd3a56e", 774, ManifestKind::kDerived, ""},
    {"refusal_markers/harmbench_advbench_metric_test_prefixes.json",
     "9184795fc7093280c1d0d0bb2ff604e47946eae85ec7f82a76026676f15c455d", 951, ManifestKind::kDerived, ""},
    {"refusal_markers/harmbench_advbench_metric_test_prefixes.txt",
     "6c45d357ee9f3781ca62c0d24b4829af1e845f4307f285bb5edcaf523999c099", 805, ManifestKind::kDerived, ""},
    {"refusal_markers/harmbench_check_refusal_REFUSAL_PREFIXES.json",
     "6b1d137cea0341fd6cdd9590d189d3d7e91e3722d1671c71debb659315d47972", 1087, ManifestKind::kDerived, ""},
    {"refusal_markers/harmbench_check_refusal_REFUSAL_PREFIXES.txt",
     "0aa9f30fcc01dc2b818505f0c6c8e97785fa5280826d459050152ef74166415d", 915, ManifestKind::kDerived, ""},
    {"refusal_markers/jailbreakbench_StringClassifier_TEST_PREFIXES.json",
     "071faaa8110faa4d2c5affdc69ae71a510d12015ad6b551018928008f5b5b04c", 535, ManifestKind::kDerived, ""},
    {"refusal_markers/jailbreakbench_StringClassifier_TEST_PREFIXES.txt",
     "7e06656ea8dbbaff2f8c9f918f987050b0b4401fffc6105975f2bb05e5d38c59", 507, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/harmbench_cls_prompt_contextual.txt",
     "e5d1b610c309ba353b71e4f0b7129bacf3c064a7c5cb2003f2aeb24671c4163e", 1781, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/harmbench_cls_prompt_standard.txt",
     "9936f14e8f85c676713499faadef720481440d674b2b3ff1f2d1019a7039d255", 2007, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/harmbench_cls_prompt_standard_modelcard_variant.txt",
     "9b1d10210d64bcd08e46b04ef5c6995b6729ab3474091efdc2e859a9a2bb9ae9", 1452, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/jailbreakbench_llama3_jailbreak_judge.txt",
     "c8e55b0d577cfffb37525152e80f268b61096adcab1940396a395049ddf9c0c5", 1463, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/jailbreakbench_llama3_refusal_judge.txt",
     "fedb249c7857d45418ac476b563087c7f1cb442cf47886b45c26a3b81180dc50", 745, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/jailbreakbench_llamaguard1_chat_template.jinja",
     "9c4dd720285b0dfa203f0f725ff20dca023f23d3541dbedc262f22aa38eebafe", 5036, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/refusal_direction_llamaguard2_usage.txt",
     "3b30b1d14c59d98321f36e34bf6bd2061887734bf8136b0bfc3408cce7a9af29", 688, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/strongreject_rubric_prompt_v1.txt",
     "be0f9b8604e7ebcc5660770088a0034e17185535c3e9dffed6309c180520c243", 2648, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/wildguard_paper.txt",
     "fa7f1c313ef1463a2fe249ff50c537adfbd84ff2fe82b3ffa72ee21124afb0d6", 415, ManifestKind::kDerived, ""},
    {"refusal_markers/judge_prompts/xstest_gpt4_classifier_prompt.txt",
     "eab86b64e5a97cc018cf24a0c92018a9cdb8be95a7614a0547754f102f5ddec4", 1598, ManifestKind::kDerived, ""},
    {"refusal_markers/paper_family_a.txt", "0e10603eeafd473ca0391158c02bea81f3a32f1c94702c3cf63fe1864716a58f", 267,
     ManifestKind::kDerived, ""},
    {"refusal_markers/refusal_direction_first_token_refusal_ids.txt",
     "375002922f0d47523c2cf9625cfd85b3ecced2537e68c230d6de74f6b3532733", 1028, ManifestKind::kDerived, ""},
    {"refusal_markers/refusal_direction_substring_matching.json",
     "35279dcf5d5cdf37d50290e0041a7ec84eab4fcb3210fbc8a7e0051f8c491c43", 673, ManifestKind::kDerived, ""},
    {"refusal_markers/refusal_direction_substring_matching.txt",
     "ccd6f80fdeeb7b42f4a701c05ef7bc6adeffb0cf59979df00ca4d98299e2c0e0", 641, ManifestKind::kDerived, ""},
    {"refusal_markers/xstest_strmatch_startswith_prefixes.json",
     "405b94e2b491107112958b41d769dc737fe6af595dd7d17faedda14e4bc49c74", 1525, ManifestKind::kDerived, ""},
    {"refusal_markers/xstest_strmatch_startswith_prefixes.txt",
     "428d370eca3a6d742ff80f70bf6a790383c88f2fbb7418bc7ce099476bd9a2ab", 565, ManifestKind::kDerived, ""},
    {"strongreject/SOURCE.txt", "2da33151dda116112fe133601fcf0e8b5bff5211fc45664dddcbd662ec65c966", 1178,
     ManifestKind::kProvenance, ""},
    {"strongreject/strongreject_dataset.csv", "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381", 56359,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/dataset/raw/"
     "strongreject.csv"},
    {"wikitext-2/LICENSE.pytorch-examples-BSD3", "7e5dc9b5cf276166c4a0678d33e53b14e3d7ef47eee9356ab786c4ba45414efd",
     1520, ManifestKind::kLicence,
     "https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/LICENSE"},
    {"wikitext-2/README.TyloQuant-wikitext-2-raw.md",
     "06a081285d93d7f5147510855ab45fd795879d9d5803412c14212d9f3521ae0c", 739, ManifestKind::kProvenance, ""},
    {"wikitext-2/README.pytorch-examples", "ed96062abea03d4f4e8ca80f0caad8b07ec59687b8064319c7ee6f6d900b6286", 159,
     ManifestKind::kProvenance,
     "https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/"
     "data/wikitext-2/README"},
    {"wikitext-2/SOURCE.txt", "882389b9bbfcdf8dddda5d2ef1842855efcda75456f3aa1666a327d58c5a2a25", 2269,
     ManifestKind::kProvenance, ""},
    {"wikitext-2/wiki.test.raw", "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08", 1290590,
     ManifestKind::kData, ""},
    {"wikitext-2/wikitext-2-tokenized-test.txt", "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
     1256449, ManifestKind::kData,
     "https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/"
     "data/wikitext-2/test.txt"},
    {"xstest/LICENSE", "9e5f1b3c610b9c2da5c313bf81d577a7d1acec686bdb0384edefa6df0f90cd94", 18656,
     ManifestKind::kLicence,
     "https://raw.githubusercontent.com/paul-rottger/exaggerated-safety/d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d/"
     "LICENSE"},
    {"xstest/SOURCE.txt", "8aeacea4d0407733459f2ff9833d12188bb0717aef81580542c39bb4dd5509d3", 679,
     ManifestKind::kProvenance, ""},
    {"xstest/xstest_prompts.csv", "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a", 38719,
     ManifestKind::kData,
     "https://raw.githubusercontent.com/paul-rottger/exaggerated-safety/d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d/"
     "xstest_prompts.csv"},
};

}  // namespace

std::span<const ManifestEntry> dataset_manifest() {
  return kEntries;
}

const ManifestEntry* find_manifest_entry(std::string_view path) {
  for (const ManifestEntry& entry : kEntries) {
    if (entry.path == path) return &entry;
  }
  return nullptr;
}

std::string_view to_string(ManifestKind kind) {
  switch (kind) {
    case ManifestKind::kData:
      return "data";
    case ManifestKind::kLicence:
      return "licence";
    case ManifestKind::kProvenance:
      return "provenance";
    case ManifestKind::kDerived:
      return "derived";
  }
  return "?";
}

bool is_required(ManifestKind kind) {
  return kind == ManifestKind::kData || kind == ManifestKind::kLicence;
}

}  // namespace kvsafe::eval
