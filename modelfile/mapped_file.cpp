#include "modelfile/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "modelfile/model_file_error.h"

namespace kvsafe::engine {
namespace {

std::string errno_text() {
  return std::strerror(errno);
}

// Closes a descriptor when the scope ends (the mapping outlives it).
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile MappedFile::open(const std::filesystem::path& path) {
  MappedFile file;
  file.path_ = path;
  FdGuard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (guard.fd < 0) throw ModelFileError(path, "open", "cannot open: " + errno_text());
  struct stat info {};
  if (::fstat(guard.fd, &info) != 0) throw ModelFileError(path, "stat", errno_text());
  if (!S_ISREG(info.st_mode)) throw ModelFileError(path, "open", "not a regular file");
  file.size_ = static_cast<std::size_t>(info.st_size);
  if (file.size_ == 0) return file;  // NOTE: mmap of length 0 fails; an empty span is right
  void* base = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, guard.fd, 0);
  if (base == MAP_FAILED) throw ModelFileError(path, "mmap", "cannot map: " + errno_text());
  file.mapping_ = base;
  file.data_ = static_cast<const std::byte*>(base);
  return file;
}

MappedFile MappedFile::from_bytes(std::vector<std::byte> bytes, const std::filesystem::path& name) {
  MappedFile file;
  file.path_ = name;
  file.owned_ = std::move(bytes);
  file.data_ = file.owned_.data();
  file.size_ = file.owned_.size();
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept {
  *this = std::move(other);
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this == &other) return *this;
  release();
  path_ = std::move(other.path_);
  size_ = std::exchange(other.size_, 0);
  mapping_ = std::exchange(other.mapping_, nullptr);
  const bool owned = mapping_ == nullptr;
  owned_ = std::move(other.owned_);  // NOTE: moving a vector keeps its buffer address
  data_ = owned ? owned_.data() : static_cast<const std::byte*>(mapping_);
  other.data_ = nullptr;
  return *this;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() noexcept {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
  mapping_ = nullptr;
  data_ = nullptr;
  size_ = 0;
  owned_.clear();
}

}  // namespace kvsafe::engine
