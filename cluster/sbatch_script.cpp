#include "cluster/sbatch_script.h"

#include <algorithm>
#include <regex>
#include <sstream>

#include "cluster/shell_quote.h"
#include "cluster/slurm_time.h"
#include "common/error.h"
#include "common/exit_codes.h"

namespace kvsafe::cluster {
namespace {

void directive(std::ostringstream& out, const std::string& option, const std::string& value) {
  out << "#SBATCH " << option << '=' << sbatch_quote(value) << '\n';
}

}  // namespace

std::int64_t drain_signal_lead_s(const std::string& time, std::int64_t grace_period_s) {
  const std::int64_t wanted = std::max<std::int64_t>(grace_period_s, 0) + 60;
  const auto limit = slurm_time_seconds(time);
  if (!limit) return wanted;
  return std::max<std::int64_t>(1, std::min(wanted, *limit / 2));
}

std::string sbatch_script(const SbatchOptions& o) {
  KVSAFE_CHECK(o.nodes >= 1, "sbatch script: nodes must be >= 1, got ", o.nodes);
  KVSAFE_CHECK(o.tasks_per_node >= 1, "sbatch script: tasks per node must be >= 1, got ", o.tasks_per_node);
  KVSAFE_CHECK(o.gpus_per_node >= 0 && o.cpus_per_task >= 0 && o.requeue_limit >= 0 && o.signal_lead_s >= 1,
               "sbatch script: negative GPU, CPU, requeue or signal count");
  static const std::regex kShellName("[A-Za-z_][A-Za-z0-9_]*");
  std::ostringstream out;
  out << "#!/bin/bash\n";
  out << "# Written by kvsafe submit; resubmit with: sbatch " << shell_quote((o.job_dir / "job.sbatch").string())
      << "\n";
  if (!o.submitted_from.empty()) {
    std::string line = o.submitted_from;
    std::replace(line.begin(), line.end(), '\n', ' ');
    out << "# From: " << line << '\n';
  }
  directive(out, "--job-name", o.job_name);
  // NOTE: sbatch expands %-patterns in --output: a % of the path itself is written %%.
  std::string job_dir = o.job_dir.string();
  for (std::size_t at = job_dir.find('%'); at != std::string::npos; at = job_dir.find('%', at + 2)) {
    job_dir.insert(at, 1, '%');
  }
  directive(out, "--output", job_dir + "/slurm-%j.out");
  directive(out, "--open-mode", "append");  // a requeued job appends to the same file
  directive(out, "--nodes", std::to_string(o.nodes));
  directive(out, "--ntasks-per-node", std::to_string(o.tasks_per_node));
  if (o.gpus_per_node > 0) directive(out, "--gpus-per-task", "1");
  if (o.cpus_per_task > 0) directive(out, "--cpus-per-task", std::to_string(o.cpus_per_task));
  if (!o.time.empty()) directive(out, "--time", o.time);
  if (!o.partition.empty()) directive(out, "--partition", o.partition);
  if (o.account) directive(out, "--account", *o.account);
  directive(out, "--signal", "B:USR1@" + std::to_string(o.signal_lead_s));
  out << "#SBATCH --requeue\n";
  for (const std::string& extra : o.extra_options) out << "#SBATCH " << sbatch_quote(extra) << '\n';
  out << "\n";
  out << "set -u\n";
  for (const auto& [name, value] : o.environment) {
    KVSAFE_CHECK(std::regex_match(name, kShellName), "sbatch script: `", name, "` is not an environment name");
    out << "export " << name << '=' << shell_quote(value) << '\n';
  }
  out << "requeue_limit=" << o.requeue_limit << "\n";
  out << "drained=" << kExitInterrupted << "\n\n";
  out << "# SLURM's USR1 (the drain warning) reaches this shell alone: srun forwards it to every\n";
  out << "# rank, and kvsafe run drains. TERM (scancel, the limit itself) reaches the ranks from SLURM\n";
  out << "# directly; forwarding it too would be a second signal, which stops a run at once.\n";
  out << "srun_pid=\n";
  out << "signalled=0\n";
  out << "warned=0  # USR1 came: the limit is near. TERM alone (scancel) is never requeued.\n";
  out << "trap 'signalled=1; warned=1; [ -n \"$srun_pid\" ] && kill -USR1 \"$srun_pid\" 2>/dev/null' USR1\n";
  out << "trap 'signalled=1' TERM\n\n";
  out << "srun --mpi=pmix --kill-on-bad-exit=1 " << shell_quote(o.kvsafe_binary.string()) << " run "
      << shell_quote(o.grid_path.string()) << " --db " << shell_quote(o.db_path.string());
  out << " &\n";
  out << "srun_pid=$!\n";
  out << "while :; do\n";
  out << "  signalled=0\n";
  out << "  wait \"$srun_pid\"\n";
  out << "  rc=$?\n";
  out << "  # A wait cut short by a trapped signal returns > 128 while srun still runs: wait again.\n";
  out << "  if [ \"$signalled\" = 1 ] && [ \"$rc\" -gt 128 ] && kill -0 \"$srun_pid\" 2>/dev/null; then continue; fi\n";
  out << "  break\n";
  out << "done\n\n";
  out << "restarts=${SLURM_RESTART_COUNT:-0}\n";
  out << "if [ \"$rc\" -eq \"$drained\" ] && [ \"$warned\" = 1 ]; then\n";
  out << "  if [ \"$restarts\" -lt \"$requeue_limit\" ]; then\n";
  out << "    echo \"kvsafe submit: the run drained (exit $rc); requeueing job $SLURM_JOB_ID"
         " (requeue $((restarts + 1)) of $requeue_limit)\"\n";
  out << "    scontrol requeue \"$SLURM_JOB_ID\" && exit 0\n";
  out << "    echo \"kvsafe submit: scontrol requeue failed; resubmit the script to resume\" >&2\n";
  out << "  else\n";
  out << "    echo \"kvsafe submit: the run drained (exit $rc) after $restarts requeue(s), the limit;"
         " resubmit the script to resume\" >&2\n";
  out << "  fi\n";
  out << "fi\n";
  out << "exit \"$rc\"\n";
  return out.str();
}

}  // namespace kvsafe::cluster
