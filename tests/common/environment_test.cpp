#include "common/environment.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace kvsafe {
namespace {

namespace fs = std::filesystem;

TEST(Environment, KvsafeDataWins) {
  ::setenv("KVSAFE_DATA", "/some/data", 1);
  const Environment env = Environment::from_process();
  ::unsetenv("KVSAFE_DATA");
  EXPECT_EQ(env.data_dir, fs::path("/some/data"));
  EXPECT_EQ(env.data_dir_source, "KVSAFE_DATA");
}

TEST(Environment, FindsSharedDatasetsAboveTheCheckout) {
  const fs::path root = fs::temp_directory_path() / "kvsafe_env_test";
  fs::remove_all(root);
  fs::create_directories(root / "shared" / "datasets");
  fs::create_directories(root / "clone" / "build" / "sub");
  ::unsetenv("KVSAFE_DATA");
  const Environment env = Environment::from_process(root / "clone" / "build" / "sub");
  EXPECT_EQ(env.data_dir, root / "shared" / "datasets");
  EXPECT_EQ(env.data_dir_source, "../shared/datasets");
  // `kvsafe datasets pull` writes to the cache, never into the shared copy.
  EXPECT_NE(env.dataset_cache_dir, env.data_dir);
  EXPECT_EQ(env.dataset_cache_dir.filename(), "datasets");
  EXPECT_EQ(env.dataset_cache_dir.parent_path().filename(), "kvsafe");
  fs::remove_all(root);
}

TEST(Environment, ModelCacheFollowsXdgCacheHome) {
  ::unsetenv("KVSAFE_MODEL_CACHE");
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  const Environment env = Environment::from_process();
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(env.model_cache_dir, fs::path("/xdg/kvsafe/models"));
  EXPECT_EQ(env.dataset_cache_dir, fs::path("/xdg/kvsafe/datasets"));
  std::string value;
  ASSERT_TRUE(env.lookup("KVSAFE_MODEL_CACHE", &value));
  EXPECT_EQ(value, "/xdg/kvsafe/models");
  EXPECT_FALSE(env.lookup("KVSAFE_SURELY_UNSET_VARIABLE", &value));
}

}  // namespace
}  // namespace kvsafe
