// Atomic whole-file writes (temp file + fsync + rename + fsync of the folder) and bounded
// whole-file reads, with errors that name the path and the system's reason.
#include "tools/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "tools/io/io_error.h"

namespace ag::io {
namespace {

std::string system_reason() { return std::strerror(errno); }

// Closes the descriptor and removes the temporary file unless the write was committed.
struct TempFile {
  std::string path;
  int fd = -1;
  bool committed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!committed && !path.empty()) ::unlink(path.c_str());
  }
};

void write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(fmt::format("{}: cannot write: {}", path, n < 0 ? system_reason() : "no progress"));
    bytes.remove_prefix(size_t(n));
  }
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  if (path.empty()) throw IoError("write_file_atomic: empty path");
  std::filesystem::path target(path);
  std::filesystem::path folder = target.parent_path();
  if (folder.empty()) folder = ".";

  TempFile temp;
  temp.path = (folder / fmt::format(".{}.tmp-XXXXXX", target.filename().string())).string();
  temp.fd = ::mkstemp(temp.path.data());
  if (temp.fd < 0) {
    std::string reason = system_reason();
    temp.path.clear();  // nothing was created
    throw IoError(fmt::format("{}: cannot create a temporary file in {}: {}", path, folder.string(), reason));
  }
  // mkstemp makes the file private (0600); give it the old file's mode, or the usual 0644.
  struct stat old_stat {};
  mode_t mode = ::stat(path.c_str(), &old_stat) == 0 ? (old_stat.st_mode & 07777) : 0644;
  if (::fchmod(temp.fd, mode) != 0) throw IoError(fmt::format("{}: cannot set permissions: {}", path, system_reason()));

  write_all(temp.fd, bytes, path);
  if (::fsync(temp.fd) != 0) throw IoError(fmt::format("{}: cannot flush to disk: {}", path, system_reason()));
  int fd = temp.fd;
  temp.fd = -1;
  if (::close(fd) != 0) throw IoError(fmt::format("{}: cannot close: {}", path, system_reason()));
  if (::rename(temp.path.c_str(), path.c_str()) != 0)
    throw IoError(fmt::format("{}: cannot replace the file: {}", path, system_reason()));
  temp.committed = true;

  // The rename is durable only once the folder's entry is on disk too.
  int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::string read_file(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw IoError(fmt::format("{}: no such file", path));
    throw IoError(fmt::format("{}: cannot open: {}", path, system_reason()));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) throw IoError(fmt::format("{}: cannot stat: {}", path, system_reason()));
  if (!S_ISREG(st.st_mode)) throw IoError(fmt::format("{}: not a regular file", path));
  if (uint64_t(st.st_size) > max_bytes)
    throw IoError(fmt::format("{}: {} bytes is more than the {} this reader accepts", path, st.st_size, max_bytes));

  std::string bytes(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(fmt::format("{}: cannot read: {}", path, system_reason()));
    if (n == 0) break;  // the file shrank while we read it
    done += size_t(n);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace ag::io
