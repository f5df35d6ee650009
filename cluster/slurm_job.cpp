#include "cluster/slurm_job.h"

#include <nlohmann/json.hpp>

#include <charconv>

#include "common/error.h"

namespace kvsafe::cluster {
namespace {

std::string text(const std::map<std::string, std::string>& variables, const char* name) {
  const auto found = variables.find(name);
  return found == variables.end() ? std::string() : found->second;
}

void number(const std::map<std::string, std::string>& variables, const char* name, std::int64_t* out) {
  const std::string value = text(variables, name);
  std::int64_t parsed = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (!value.empty() && error == std::errc() && end == value.data() + value.size()) *out = parsed;
}

}  // namespace

SlurmJob slurm_job_from(const std::map<std::string, std::string>& variables) {
  SlurmJob job;
  job.job_id = text(variables, "SLURM_JOB_ID");
  if (job.job_id.empty()) return job;
  job.job_name = text(variables, "SLURM_JOB_NAME");
  number(variables, "SLURM_RESTART_COUNT", &job.restart_count);
  job.node_list = text(variables, "SLURM_JOB_NODELIST");
  number(variables, "SLURM_JOB_NUM_NODES", &job.nodes);
  number(variables, "SLURM_NTASKS", &job.tasks);
  number(variables, "SLURM_PROCID", &job.procid);
  job.partition = text(variables, "SLURM_JOB_PARTITION");
  job.cluster = text(variables, "SLURM_CLUSTER_NAME");
  return job;
}

std::string to_json(const SlurmJob& job) {
  if (!job.in_slurm()) return "{}";
  const nlohmann::json j = {
      {"job_id", job.job_id},       {"job_name", job.job_name},   {"restart_count", job.restart_count},
      {"node_list", job.node_list}, {"nodes", job.nodes},         {"tasks", job.tasks},
      {"procid", job.procid},       {"partition", job.partition}, {"cluster", job.cluster}};
  return j.dump();
}

SlurmJob slurm_job_from_json(std::string_view json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::parse_error& error) {
    throw InputError("SLURM job record is not JSON: " + std::string(error.what()));
  }
  SlurmJob job;
  if (!j.is_object()) return job;
  const auto read_text = [&](const char* key, std::string* out) {
    if (j.contains(key) && j.at(key).is_string()) *out = j.at(key).get<std::string>();
  };
  const auto read_number = [&](const char* key, std::int64_t* out) {
    if (j.contains(key) && j.at(key).is_number_integer()) *out = j.at(key).get<std::int64_t>();
  };
  read_text("job_id", &job.job_id);
  read_text("job_name", &job.job_name);
  read_number("restart_count", &job.restart_count);
  read_text("node_list", &job.node_list);
  read_number("nodes", &job.nodes);
  read_number("tasks", &job.tasks);
  read_number("procid", &job.procid);
  read_text("partition", &job.partition);
  read_text("cluster", &job.cluster);
  return job;
}

}  // namespace kvsafe::cluster
