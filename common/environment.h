#pragma once
// The environment variables kvsafe reads, read in this one place (STYLE.md) and logged
// once at start-up by the CLI.

#include <filesystem>
#include <map>
#include <string>

namespace kvsafe {

struct Environment {
  // Benchmark data: $KVSAFE_DATA, else ../shared/datasets next to the working
  // directory's checkout when it exists, else ${XDG_CACHE_HOME:-~/.cache}/kvsafe/datasets.
  std::filesystem::path data_dir;
  // Where the data dir came from: "KVSAFE_DATA", "../shared/datasets" or "cache".
  std::string data_dir_source;
  // ${XDG_CACHE_HOME:-~/.cache}/kvsafe/datasets whatever data_dir is: where `kvsafe datasets
  // pull` writes when $KVSAFE_DATA is unset (never into the read-only ../shared copy).
  std::filesystem::path dataset_cache_dir;
  // Model files: $KVSAFE_MODEL_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/kvsafe/models.
  std::filesystem::path model_cache_dir;
  // Fault injection for tests of `kvsafe run`: $KVSAFE_FAULT, e.g. "throw:shard=3" (parsed by
  // orchestrator/fault_injection.h; docs/run.md). Empty: no fault.
  std::string fault;
  // Intra-op CPU threads per worker for `kvsafe run`: $KVSAFE_THREADS; 0 (unset or not a
  // positive number) = cores / workers on the node (docs/run.md, "Threads").
  int threads = 0;
  // $SLURM_JOB_ID, recorded in the runs table; empty outside SLURM.
  std::string slurm_job_id;
  // Every SLURM_* variable (name -> value): cluster/slurm_job.h reads the job from them.
  std::map<std::string, std::string> slurm_variables;
  // True when an MPI launcher started this process (mpirun/mpiexec set OMPI_COMM_WORLD_SIZE,
  // PMI_SIZE or PMIX_RANK): `kvsafe run` then calls MPI_Init; otherwise it runs in process.
  bool launched_by_mpi = false;

  // Reads the process environment. `start` is where ../shared is looked for (default:
  // the current directory and its parents).
  static Environment from_process(const std::filesystem::path& start = std::filesystem::current_path());

  // Value of ${name} as grid files may use it: KVSAFE_DATA and KVSAFE_MODEL_CACHE resolve
  // to the fields above (with their defaults); other names come from the process
  // environment. Returns false when the name is unset.
  bool lookup(const std::string& name, std::string* value) const;

  // $KVSAFE_CPU_KERNELS: "avx512", "avx2" or "generic" forces that copy of the CPU kernels;
  // empty = the best this CPU runs. Read by common/cpu_kernels.cpp when a kernel first asks,
  // also in processes that never build an Environment (tests, benchmarks).
  static std::string cpu_kernels_from_process();
};

}  // namespace kvsafe
