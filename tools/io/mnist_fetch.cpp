// Locating MNIST (flag, environment, default folder), downloading missing files with libcurl
// from public mirrors into a temporary file that is renamed into place only once its SHA-256
// matches, and falling back to Debian's Fashion-MNIST when no mirror answers at all.
#include "tools/io/mnist_fetch.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "tools/io/idx.h"
#include "tools/io/sha256.h"

namespace ag::io {
namespace {

constexpr curl_off_t max_download_bytes = curl_off_t(256) << 20;  // the largest MNIST file is 9.9 MB

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string join_url(const std::string& base, const std::string& name) {
  return base.empty() || base.back() == '/' ? base + name : base + "/" + name;
}

// The partial download: removed unless renamed into place.
struct PartFile {
  std::string path;
  FILE* file = nullptr;
  bool kept = false;
  ~PartFile() {
    if (file) std::fclose(file);
    if (!kept && !path.empty()) ::unlink(path.c_str());
  }
};

struct Sink {
  FILE* file;
  Sha256 hash;
};

size_t write_to_sink(char* data, size_t size, size_t count, void* context) {
  auto* sink = static_cast<Sink*>(context);
  size_t bytes = size * count;
  if (std::fwrite(data, 1, bytes, sink->file) != bytes) return 0;  // curl reports a write error
  sink->hash.update(std::string_view(data, bytes));
  return bytes;
}

// Loopback requests (the tests' server) must never be routed through a proxy.
std::string no_proxy_list() {
  const char* env = std::getenv("no_proxy");
  if (!env || !*env) env = std::getenv("NO_PROXY");
  std::string list = env && *env ? std::string(env) + "," : "";
  return list + "localhost,127.0.0.1,::1";
}

std::string comma_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// A folder the user named explicitly must hold the data: falling back silently would hide a typo.
// `named_by` says where the folder came from, e.g. "--data /x" or "$AEGRAPH_DATA=/x".
void require_mnist(const std::string& dir, const std::string& named_by) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw IoError(fmt::format("{}: no such folder", named_by));
  std::vector<std::string> missing = missing_mnist_files(dir);
  if (!missing.empty()) throw IoError(fmt::format("{}: not an MNIST folder, missing {}", named_by, comma_list(missing)));
}

}  // namespace

std::vector<std::string> default_mnist_mirrors() {
  return {"https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
          "http://yann.lecun.com/exdb/mnist/"};
}

std::map<std::string, std::string> mnist_gz_sha256() {
  return {{"train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
          {"train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"},
          {"t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
          {"t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"}};
}

std::vector<std::string> missing_mnist_files(const std::string& dir) {
  std::vector<std::string> missing;
  for (const char* stem : mnist_file_stems)
    if (find_idx_file(dir, stem).empty()) missing.push_back(std::string(stem) + "[.gz]");
  return missing;
}

bool holds_mnist(const std::string& dir) { return missing_mnist_files(dir).empty(); }

void download_verified(const std::string& url, const std::string& dest, const std::string& expected_sha256,
                       const FetchOptions& options) {
  init_curl_once();
  std::filesystem::path target(dest);
  std::filesystem::path folder = target.parent_path().empty() ? "." : target.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) throw DownloadError(fmt::format("{}: cannot create folder {}: {}", url, folder.string(), ec.message()), false);

  PartFile part;
  part.path = (folder / fmt::format(".{}.part-XXXXXX", target.filename().string())).string();
  int fd = ::mkstemp(part.path.data());
  if (fd < 0) {
    part.path.clear();
    throw DownloadError(fmt::format("{}: cannot create a temporary file in {}", url, folder.string()), false);
  }
  part.file = ::fdopen(fd, "wb");
  if (!part.file) {
    ::close(fd);
    throw DownloadError(fmt::format("{}: cannot open a temporary file in {}", url, folder.string()), false);
  }

  Sink sink{part.file, {}};
  char error_text[CURL_ERROR_SIZE] = "";
  std::string no_proxy = no_proxy_list();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw DownloadError(fmt::format("{}: libcurl could not start", url), false);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_to_sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, max_download_bytes);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, no_proxy.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "aegraph");
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

  if (rc != CURLE_OK) {
    if (rc == CURLE_HTTP_RETURNED_ERROR) throw DownloadError(fmt::format("{}: HTTP {}", url, status), false);
    std::string reason = error_text[0] ? error_text : curl_easy_strerror(rc);
    throw DownloadError(fmt::format("{}: {}", url, reason), /*unreachable=*/status == 0);
  }
  bool flushed = std::fflush(part.file) == 0 && ::fsync(::fileno(part.file)) == 0;
  bool closed = std::fclose(part.file) == 0;
  part.file = nullptr;
  if (!flushed || !closed) throw DownloadError(fmt::format("{}: cannot write {}", url, part.path), false);

  std::string actual = sink.hash.hex();
  if (!expected_sha256.empty() && actual != expected_sha256)
    throw DownloadError(fmt::format("{}: SHA-256 {} does not match the expected {}; the download was discarded", url, actual,
                                    expected_sha256),
                        false);
  if (::rename(part.path.c_str(), dest.c_str()) != 0)
    throw DownloadError(fmt::format("{}: cannot rename the download to {}", url, dest), false);
  part.kept = true;
}

MnistLocation locate_mnist(const std::string& flag_dir, const FetchOptions& options) {
  if (!flag_dir.empty()) {
    require_mnist(flag_dir, "--data " + flag_dir);
    return {flag_dir, false, ""};
  }
  const char* env = options.env_var.empty() ? nullptr : std::getenv(options.env_var.c_str());
  if (env && *env) {
    require_mnist(env, "$" + options.env_var + "=" + env);
    return {env, false, ""};
  }
  if (holds_mnist(options.default_dir)) return {options.default_dir, false, ""};

  auto fall_back = [&](const std::string& why) {
    if (!holds_mnist(options.fallback_dir))
      throw IoError(fmt::format("no MNIST found in {} and {}; the fallback {} does not hold Fashion-MNIST either (Debian "
                                "package dataset-fashion-mnist); put the four files in {} or pass --data DIR",
                                options.default_dir, why, options.fallback_dir, options.default_dir));
    return MnistLocation{options.fallback_dir, true,
                         fmt::format("MNIST is not in {} and {}: using Fashion-MNIST from {} instead (same format, "
                                     "clothing instead of digits)",
                                     options.default_dir, why, options.fallback_dir)};
  };
  if (!options.allow_download) return fall_back("downloading is switched off");
  if (options.mirrors.empty()) return fall_back("no download mirror is configured");

  std::set<std::string> dead_mirrors;  // unreachable once: not worth another connect timeout
  std::vector<std::string> used_mirrors;
  for (const char* stem : mnist_file_stems) {
    if (!find_idx_file(options.default_dir, stem).empty()) continue;
    std::string name = std::string(stem) + ".gz";
    auto expected = options.expected_sha256.find(name);
    std::string sha = expected == options.expected_sha256.end() ? "" : expected->second;
    std::vector<std::string> failures;
    bool any_answer = false, done = false;
    for (const std::string& mirror : options.mirrors) {
      if (dead_mirrors.count(mirror)) continue;
      try {
        download_verified(join_url(mirror, name), (std::filesystem::path(options.default_dir) / name).string(), sha, options);
        used_mirrors.push_back(mirror);
        done = true;
        break;
      } catch (const DownloadError& e) {
        failures.push_back(e.what());
        if (e.unreachable) dead_mirrors.insert(mirror);
        else any_answer = true;
      }
    }
    if (done) continue;
    if (!any_answer)
      return fall_back(fmt::format("no mirror could be reached ({})", failures.empty() ? "all unreachable" : failures.front()));
    std::string list;
    for (const std::string& f : failures) list += "\n  " + f;
    throw IoError(fmt::format("could not download {} into {}:{}", name, options.default_dir, list));
  }
  std::set<std::string> distinct(used_mirrors.begin(), used_mirrors.end());
  return {options.default_dir, false,
          fmt::format("downloaded MNIST into {} from {} (SHA-256 verified)", options.default_dir, comma_list({distinct.begin(), distinct.end()}))};
}

}  // namespace ag::io
