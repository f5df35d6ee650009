#include "orchestrator/schedule_policy.h"

#include <algorithm>

#include "common/error.h"
#include "orchestrator/cell.h"

namespace kvsafe::orchestrator {

PolicyCell policy_cell(const Cell& cell, std::int64_t order) {
  return {.id = cell.id,
          .model = cell.model.name,
          .model_params = cell.model.parameter_count().value_or(1e9),
          .baseline = cell.kv.scheme == KvScheme::kNone,
          .order = order};
}

SchedulePolicy::SchedulePolicy(const std::vector<PolicyCell>& cells) {
  for (const PolicyCell& cell : cells) {
    cells_[cell.id] = cell;
    models_[cell.model].params = cell.model_params > 0 ? cell.model_params : 1;
  }
}

void SchedulePolicy::add_cell(const PolicyCell& cell) {
  if (!cells_.emplace(cell.id, cell).second) return;
  if (models_.count(cell.model) == 0) models_[cell.model].params = cell.model_params > 0 ? cell.model_params : 1;
}

SchedulePolicy::Order SchedulePolicy::order_of(const db::ShardKey& shard) const {
  const auto it = cells_.find(shard.cell_id);
  KVSAFE_CHECK(it != cells_.end(), "scheduler: shard of unknown cell ", shard.cell_id);
  return {!it->second.baseline, it->second.order, shard.begin};
}

void SchedulePolicy::insert(Ticket ticket) {
  const Order order = order_of(ticket.shard);
  ModelQueue& queue = models_[cells_.at(ticket.shard.cell_id).model];
  const std::int64_t prompts = ticket.shard.end - ticket.shard.begin;
  if (queue.tickets.emplace(order, std::move(ticket)).second) {
    queue.prompts += prompts;
    ++count_;
  }
}

void SchedulePolicy::add(const db::ShardKey& shard) {
  insert(Ticket{.shard = shard});
}

void SchedulePolicy::requeue(const db::ShardKey& shard, int worker) {
  // NOTE: a shard is requeued only after it left the queue, so there is no earlier ticket
  // to merge with; failed_ remembers every worker it failed on across attempts.
  Ticket ticket{.shard = shard};
  const auto it = failed_.find(shard);
  if (it != failed_.end()) ticket.failed_on = it->second;
  ticket.failed_on.insert(worker);
  failed_[shard] = ticket.failed_on;
  insert(std::move(ticket));
}

std::int64_t SchedulePolicy::drop_cell(const std::string& cell_id) {
  const auto cell = cells_.find(cell_id);
  if (cell == cells_.end()) return 0;
  ModelQueue& queue = models_[cell->second.model];
  std::int64_t dropped = 0;
  for (auto it = queue.tickets.begin(); it != queue.tickets.end();) {
    if (it->second.shard.cell_id == cell_id) {
      queue.prompts -= it->second.shard.end - it->second.shard.begin;
      it = queue.tickets.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  count_ -= dropped;
  return dropped;
}

void SchedulePolicy::set_loaded(int worker, const std::string& model) {
  if (model.empty()) {
    loaded_.erase(worker);
  } else {
    loaded_[worker] = model;
  }
}

void SchedulePolicy::remove_worker(int worker) {
  loaded_.erase(worker);
}

std::optional<db::ShardKey> SchedulePolicy::take_from(ModelQueue& queue, int worker, int alive_workers) {
  for (auto it = queue.tickets.begin(); it != queue.tickets.end(); ++it) {
    const Ticket& ticket = it->second;
    // Rule 4: avoid a worker the shard failed on, unless every live worker has failed it.
    const bool eligible =
        ticket.failed_on.count(worker) == 0 || static_cast<int>(ticket.failed_on.size()) >= alive_workers;
    if (!eligible) continue;
    db::ShardKey shard = ticket.shard;
    queue.prompts -= shard.end - shard.begin;
    queue.tickets.erase(it);
    --count_;
    return shard;
  }
  return std::nullopt;
}

std::optional<db::ShardKey> SchedulePolicy::next(int worker, int alive_workers) {
  // Rule 1: stay on the loaded model while it has shards this worker may take.
  const auto held = loaded_.find(worker);
  if (held != loaded_.end()) {
    if (auto shard = take_from(models_[held->second], worker, alive_workers)) return shard;
  }
  // Rule 2: the model with the most remaining work per worker on it, this one included.
  std::map<std::string, int> holders;
  for (const auto& [other, model] : loaded_) {
    if (other != worker) ++holders[model];
  }
  std::vector<std::pair<std::string, ModelQueue*>> candidates;
  for (auto& [name, queue] : models_) {
    if (!queue.tickets.empty()) candidates.emplace_back(name, &queue);
  }
  std::sort(candidates.begin(), candidates.end(), [&holders](const auto& a, const auto& b) {
    const double share_a = static_cast<double>(a.second->prompts) * a.second->params / (holders[a.first] + 1);
    const double share_b = static_cast<double>(b.second->prompts) * b.second->params / (holders[b.first] + 1);
    if (share_a != share_b) return share_a > share_b;
    if (a.second->params != b.second->params) return a.second->params > b.second->params;
    return a.first < b.first;
  });
  for (auto& [name, queue] : candidates) {
    if (auto shard = take_from(*queue, worker, alive_workers)) return shard;
  }
  return std::nullopt;
}

std::int64_t SchedulePolicy::prompts_left() const {
  std::int64_t total = 0;
  for (const auto& [name, queue] : models_) total += queue.prompts;
  return total;
}

std::map<std::string, std::int64_t> SchedulePolicy::shards_left_per_model() const {
  std::map<std::string, std::int64_t> left;
  for (const auto& [name, queue] : models_) left[name] = static_cast<std::int64_t>(queue.tickets.size());
  return left;
}

}  // namespace kvsafe::orchestrator
