#include "orchestrator/cost_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <queue>

#include "common/error.h"

namespace kvsafe::orchestrator {
namespace {

const std::vector<DeviceProfile>& builtin_profiles() {
  // Peak numbers from the vendors' data sheets (dense, no sparsity).
  static const std::vector<DeviceProfile> profiles = {
      {.name = "h100", .memory_bandwidth_gb_s = 3350, .memory_gib = 80, .dense_tflops = 989, .bytes_per_param = 2},
      {.name = "h200", .memory_bandwidth_gb_s = 4800, .memory_gib = 141, .dense_tflops = 989, .bytes_per_param = 2},
      {.name = "a100", .memory_bandwidth_gb_s = 2039, .memory_gib = 80, .dense_tflops = 312, .bytes_per_param = 2},
      {.name = "l40s", .memory_bandwidth_gb_s = 864, .memory_gib = 48, .dense_tflops = 362, .bytes_per_param = 2},
      // A laptop/server CPU socket running float32 (this project's CI machine class).
      {.name = "cpu", .memory_bandwidth_gb_s = 20, .memory_gib = 24, .dense_tflops = 0.2, .bytes_per_param = 4},
  };
  return profiles;
}

double weight_bytes(double params, const CostModelOptions& options) {
  return params * options.device.bytes_per_param;
}

int gpus_for(double params, const CostModelOptions& options) {
  const double usable = options.device.memory_gib * 1024.0 * 1024.0 * 1024.0 * options.weight_memory_fraction;
  return std::max(1, static_cast<int>(std::ceil(weight_bytes(params, options) / usable)));
}

}  // namespace

DeviceProfile device_profile(const std::string& name) {
  for (const DeviceProfile& profile : builtin_profiles()) {
    if (profile.name == name) return profile;
  }
  std::string known;
  for (const std::string& candidate : device_profile_names()) known += (known.empty() ? "" : ", ") + candidate;
  KVSAFE_CHECK(false, "unknown device profile '", name, "'; known profiles: ", known);
  return {};
}

std::vector<std::string> device_profile_names() {
  std::vector<std::string> names;
  for (const DeviceProfile& profile : builtin_profiles()) names.push_back(profile.name);
  return names;
}

CellCost estimate_cell(const CellWork& work, const CostModelOptions& options) {
  KVSAFE_CHECK(work.params > 0, "model '", work.model, "' has no parameter count; add `params:` to it in the grid");
  CellCost cost;
  cost.gpus = gpus_for(work.params, options);
  const double bytes = weight_bytes(work.params, options);
  const double bandwidth = options.device.memory_bandwidth_gb_s * 1e9 * options.bandwidth_efficiency * cost.gpus;
  const double flops = options.device.dense_tflops * 1e12 * options.compute_efficiency * cost.gpus;

  double wall_seconds = 0;
  if (work.scored_tokens > 0) {
    cost.prefill_tokens = static_cast<double>(work.scored_tokens);
  } else {
    cost.prefill_tokens = static_cast<double>(work.prompts) * options.mean_prompt_tokens;
    const double batch = static_cast<double>(std::max<std::int64_t>(1, work.batch_size));
    const double batches = std::ceil(static_cast<double>(work.prompts) / batch);
    const double steps = static_cast<double>(work.max_new_tokens) * options.generated_fraction;
    cost.generated_tokens = static_cast<double>(work.prompts) * steps;
    if (work.draft_params > 0) {
      // Each prompt alone: rounds of k draft steps (the draft's weights each) and one verify (the
      // target's, memory-bound like a decode step); the draft's prompt is prefilled too.
      const double k = static_cast<double>(std::max<std::int64_t>(1, work.draft_tokens));
      const double rounds = steps / (1.0 + k * std::clamp(options.speculative_acceptance, 0.0, 1.0));
      const double draft_bytes = weight_bytes(work.draft_params, options);
      wall_seconds += static_cast<double>(work.prompts) * rounds * (k * draft_bytes + bytes) / bandwidth;
      wall_seconds += 2.0 * work.draft_params * cost.prefill_tokens / flops;
      cost.load_seconds += draft_bytes / (options.load_gb_per_s * 1e9);
    } else {
      wall_seconds += batches * steps * (bytes / bandwidth);
    }
  }
  wall_seconds += 2.0 * work.params * cost.prefill_tokens / flops;
  cost.gpu_seconds = wall_seconds * cost.gpus;
  cost.load_seconds += bytes / (options.load_gb_per_s * 1e9);
  return cost;
}

MakespanEstimate estimate_makespan(const std::vector<CellWork>& cells, int gpus, const CostModelOptions& options) {
  KVSAFE_CHECK(gpus >= 1, "--gpus must be at least 1, got ", gpus);
  struct ModelQueue {
    int gpus_per_replica = 1;
    double load_seconds = 0;
    std::vector<double> shard_seconds;  // wall seconds of each shard on one replica
    double total = 0;
  };
  std::map<std::string, ModelQueue> models;
  for (const CellWork& work : cells) {
    const CellCost cost = estimate_cell(work, options);
    ModelQueue& queue = models[work.model];
    queue.gpus_per_replica = cost.gpus;
    queue.load_seconds = cost.load_seconds;
    KVSAFE_CHECK(cost.gpus <= gpus, "model '", work.model, "' needs ", cost.gpus, " GPUs of kind ", options.device.name,
                 " but the plan has only ", gpus);
    const double wall = cost.gpu_seconds / cost.gpus;
    const std::int64_t shards =
        std::max<std::int64_t>(1, (work.prompts + work.shard_size - 1) / std::max<std::int64_t>(1, work.shard_size));
    for (std::int64_t i = 0; i < shards; ++i) queue.shard_seconds.push_back(wall / static_cast<double>(shards));
    queue.total += wall;
  }
  // Largest models (by wall time per replica and GPUs needed) first: the tail stays short.
  std::vector<std::pair<std::string, ModelQueue*>> order;
  for (auto& [name, queue] : models) order.emplace_back(name, &queue);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    const double wa = a.second->total * a.second->gpus_per_replica;
    const double wb = b.second->total * b.second->gpus_per_replica;
    return wa != wb ? wa > wb : a.first < b.first;
  });

  // Each GPU's time at which it becomes free. A model's shards go, one at a time, to the
  // group of its earliest-free GPUs; the group keeps the model (affinity) so it pays the
  // load once per group, and the next model starts where GPUs free up.
  std::vector<double> free_at(static_cast<std::size_t>(gpus), 0.0);
  MakespanEstimate estimate;
  for (auto& [name, queue] : order) {
    const int width = queue->gpus_per_replica;
    // Replicas: as many groups as fit, but never more than the model has shards.
    const int max_groups = std::max(1, gpus / width);
    const int groups =
        static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(max_groups), queue->shard_seconds.size()));
    std::vector<std::size_t> index(free_at.size());
    for (std::size_t i = 0; i < index.size(); ++i) index[i] = i;
    std::sort(index.begin(), index.end(), [&](std::size_t a, std::size_t b) { return free_at[a] < free_at[b]; });
    // Group g takes GPUs index[g*width .. g*width+width).
    using Slot = std::pair<double, int>;  // (time the group is free, group)
    std::priority_queue<Slot, std::vector<Slot>, std::greater<>> ready;
    std::vector<double> group_end(static_cast<std::size_t>(groups), 0.0);
    std::vector<bool> loaded(static_cast<std::size_t>(groups), false);
    for (int g = 0; g < groups; ++g) {
      double start = 0;
      for (int k = 0; k < width; ++k) start = std::max(start, free_at[index[static_cast<std::size_t>(g * width + k)]]);
      group_end[static_cast<std::size_t>(g)] = start;  // a group that gets no shard stays as it was
      ready.emplace(start + queue->load_seconds, g);
    }
    for (double seconds : queue->shard_seconds) {
      auto [time, group] = ready.top();
      ready.pop();
      const auto slot = static_cast<std::size_t>(group);
      if (!loaded[slot]) {
        loaded[slot] = true;
        ++estimate.model_loads;
      }
      group_end[slot] = time + seconds;
      ready.emplace(time + seconds, group);
    }
    for (int g = 0; g < groups; ++g) {
      for (int k = 0; k < width; ++k) {
        free_at[index[static_cast<std::size_t>(g * width + k)]] = group_end[static_cast<std::size_t>(g)];
      }
    }
  }
  estimate.seconds = *std::max_element(free_at.begin(), free_at.end());
  return estimate;
}

}  // namespace kvsafe::orchestrator
