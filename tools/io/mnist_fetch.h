// Finding MNIST on disk, downloading it when it is nowhere to be found, and falling back to
// Debian's Fashion-MNIST when no mirror can be reached. A download goes to a temporary file,
// is checked against its known SHA-256 and only then renamed into place, so a failed or
// corrupt download never leaves a file under the final name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "tools/io/io_error.h"

namespace ag::io {

// A failed download. `unreachable` is true when no HTTP answer came at all (no network, DNS
// failure, connection refused or timed out): only then does locate_mnist fall back.
class DownloadError : public IoError {
 public:
  DownloadError(const std::string& message, bool unreachable) : IoError(message), unreachable(unreachable) {}
  bool unreachable;
};

// Base URLs of public MNIST mirrors, tried in order (the file name is appended).
std::vector<std::string> default_mnist_mirrors();
// Published SHA-256 of the four original .gz files, keyed by file name ("train-images-idx3-ubyte.gz").
std::map<std::string, std::string> mnist_gz_sha256();

struct FetchOptions {
  std::vector<std::string> mirrors = default_mnist_mirrors();  // --mirror URL replaces the list
  std::map<std::string, std::string> expected_sha256 = mnist_gz_sha256();  // tests pass their own
  std::string env_var = "AEGRAPH_DATA";  // consulted after the flag; "" skips it
  std::string default_dir = "data/mnist";  // looked at last, and where downloads go
  std::string fallback_dir = "/usr/share/datasets/fashion-mnist";  // Debian package dataset-fashion-mnist
  bool allow_download = true;
  long connect_timeout_s = 4;  // short, so an offline machine falls back quickly
  long stall_timeout_s = 30;   // a transfer slower than 1 kB/s for this long is abandoned
};

struct MnistLocation {
  std::string dir;        // holds the four files (load_mnist tells which data set they are)
  bool fell_back = false;  // no mirror was reachable: dir is options.fallback_dir (Fashion-MNIST)
  std::string note;        // what happened, for the caller to print; "" when the data was simply found
};

// The standard files `dir` lacks, e.g. {"t10k-labels-idx1-ubyte[.gz]"}; all four when it is not a folder.
std::vector<std::string> missing_mnist_files(const std::string& dir);
// True when `dir` has all four standard files (each plain or .gz).
bool holds_mnist(const std::string& dir);

// The data folder, in this order: `flag_dir` (--data DIR), $AEGRAPH_DATA, options.default_dir.
// A folder named by the flag or the environment must hold MNIST (else IoError naming it and
// the missing files). When default_dir does not hold it, the missing files are downloaded
// into it; when every mirror is unreachable, options.fallback_dir is used and the note says
// so. A download that reaches a mirror but fails (HTTP error, wrong SHA-256) is an IoError
// listing each attempt.
MnistLocation locate_mnist(const std::string& flag_dir, const FetchOptions& options = {});

// Downloads `url` to `dest` via a temporary file beside it, checking its SHA-256 against
// `expected_sha256` (lowercase hex; "" skips the check). Throws DownloadError naming the URL.
void download_verified(const std::string& url, const std::string& dest, const std::string& expected_sha256,
                       const FetchOptions& options = {});

}  // namespace ag::io
