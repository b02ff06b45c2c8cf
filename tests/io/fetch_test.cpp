// Finding and downloading MNIST against a loopback HTTP server serving generated files:
// a good download verifies and lands; a corrupt one or a 404 is refused and leaves nothing
// under the final name; with no mirror reachable the Fashion-MNIST fallback is taken.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "fixtures.h"
#include "http_test_server.h"
#include "tools/io/idx.h"
#include "tools/io/mnist_fetch.h"
#include "tools/io/sha256.h"

using namespace ag::io;
using namespace ag::io::testing;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// The four .gz files of a small generated MNIST look-alike, by file name.
std::map<std::string, std::string> generated_mnist_files() {
  return {{"train-images-idx3-ubyte.gz", gzip(idx_images_bytes(6, 28, 28))},
          {"train-labels-idx1-ubyte.gz", gzip(idx_labels(6))},
          {"t10k-images-idx3-ubyte.gz", gzip(idx_images_bytes(3, 28, 28))},
          {"t10k-labels-idx1-ubyte.gz", gzip(idx_labels(3))}};
}

std::map<std::string, std::string> served(const std::map<std::string, std::string>& files) {
  std::map<std::string, std::string> by_path;
  for (const auto& [name, body] : files) by_path["/" + name] = body;
  return by_path;
}

std::map<std::string, std::string> hashes_of(const std::map<std::string, std::string>& files) {
  std::map<std::string, std::string> hashes;
  for (const auto& [name, body] : files) hashes[name] = sha256_hex(body);
  return hashes;
}

// Options that look nowhere outside the test's own folder.
FetchOptions test_options(const TempDir& dir, const std::map<std::string, std::string>& files) {
  FetchOptions options;
  options.env_var = "";
  options.default_dir = dir.file("data/mnist");
  options.fallback_dir = dir.file("fallback");
  options.expected_sha256 = hashes_of(files);
  options.connect_timeout_s = 2;
  return options;
}

size_t entries_in(const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return 0;
  return size_t(std::distance(fs::directory_iterator(folder), fs::directory_iterator()));
}

}  // namespace

TEST_CASE("sha256 matches the standard test vector", "[fetch]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("download_verified lands a verified file and refuses bad ones", "[fetch]") {
  TempDir dir;
  const std::string body = gzip(idx_labels(40));
  HttpTestServer server({{"/good.gz", body}, {"/corrupt.gz", body.substr(0, body.size() - 1) + "X"}});
  const std::string dest = dir.file("out/labels.gz");

  SECTION("a good file verifies and is renamed into place, leaving no temporary file") {
    download_verified(server.base_url() + "good.gz", dest, sha256_hex(body));
    CHECK(read_bytes(dest) == body);
    CHECK(entries_in(dir.file("out")) == 1);
  }
  SECTION("a corrupted file is refused and nothing is left under the final name") {
    std::string message;
    try {
      download_verified(server.base_url() + "corrupt.gz", dest, sha256_hex(body));
    } catch (const DownloadError& e) {
      message = e.what();
      CHECK_FALSE(e.unreachable);
    }
    CHECK_THAT(message, Contains(server.base_url() + "corrupt.gz") && Contains("does not match"));
    CHECK_FALSE(fs::exists(dest));
    CHECK(entries_in(dir.file("out")) == 0);
  }
  SECTION("a corrupted download never replaces a good file already there") {
    fs::create_directories(dir.file("out"));
    write_bytes(dest, "the good old file");
    CHECK_THROWS_AS(download_verified(server.base_url() + "corrupt.gz", dest, sha256_hex(body)), DownloadError);
    CHECK(read_bytes(dest) == "the good old file");
    CHECK(entries_in(dir.file("out")) == 1);
  }
  SECTION("a missing file (404) is a clear error") {
    CHECK_THAT(io_error_of([&] { download_verified(server.base_url() + "absent.gz", dest, ""); }),
               Contains(server.base_url() + "absent.gz") && Contains("HTTP 404"));
    CHECK_FALSE(fs::exists(dest));
  }
  SECTION("an unreachable server is reported as unreachable") {
    std::string url = "http://127.0.0.1:" + std::to_string(closed_loopback_port()) + "/good.gz";
    bool unreachable = false;
    try {
      download_verified(url, dest, "");
    } catch (const DownloadError& e) {
      unreachable = e.unreachable;
      CHECK_THAT(std::string(e.what()), Contains(url));
    }
    CHECK(unreachable);
    CHECK_FALSE(fs::exists(dest));
  }
}

TEST_CASE("locate_mnist downloads what is missing from a mirror", "[fetch]") {
  TempDir dir;
  const auto files = generated_mnist_files();
  HttpTestServer server(served(files));
  FetchOptions options = test_options(dir, files);

  SECTION("all four files, after a mirror that does not have them") {
    HttpTestServer empty_mirror({});
    options.mirrors = {empty_mirror.base_url(), server.base_url()};
    MnistLocation where = locate_mnist("", options);
    CHECK(where.dir == options.default_dir);
    CHECK_FALSE(where.fell_back);
    CHECK_THAT(where.note, Contains("downloaded") && Contains(server.base_url()));
    CHECK(server.requests() == 4);
    CHECK(entries_in(options.default_dir) == 4);
    Mnist mnist = load_mnist(where.dir);
    CHECK(mnist.train.n == 6);
    CHECK(mnist.test.n == 3);
  }
  SECTION("only the missing files") {
    fs::create_directories(options.default_dir);
    write_bytes(options.default_dir + "/train-images-idx3-ubyte.gz", files.at("train-images-idx3-ubyte.gz"));
    write_bytes(options.default_dir + "/t10k-images-idx3-ubyte", idx_images_bytes(3, 28, 28));
    options.mirrors = {server.base_url()};
    locate_mnist("", options);
    CHECK(server.requests() == 2);
    CHECK(holds_mnist(options.default_dir));
  }
  SECTION("nothing, when the folder already holds the data") {
    write_mnist_folder(options.default_dir, 2, 2);
    options.mirrors = {server.base_url()};
    MnistLocation where = locate_mnist("", options);
    CHECK(where.note.empty());
    CHECK(server.requests() == 0);
  }
}

TEST_CASE("locate_mnist refuses bad downloads and falls back only when offline", "[fetch]") {
  TempDir dir;
  const auto files = generated_mnist_files();
  FetchOptions options = test_options(dir, files);
  const std::string unreachable = "http://127.0.0.1:" + std::to_string(closed_loopback_port()) + "/";

  SECTION("a corrupted file on the only reachable mirror is an error, with nothing left behind") {
    auto bad = files;
    bad["t10k-images-idx3-ubyte.gz"][20] ^= 1;
    HttpTestServer server(served(bad));
    options.mirrors = {unreachable, server.base_url()};
    CHECK_THAT(io_error_of([&] { locate_mnist("", options); }),
               Contains("t10k-images-idx3-ubyte.gz") && Contains("does not match"));
    CHECK_FALSE(fs::exists(options.default_dir + "/t10k-images-idx3-ubyte.gz"));
    for (const auto& entry : fs::directory_iterator(options.default_dir))
      CHECK_THAT(entry.path().filename().string(), !Contains("part"));  // no temporary file left
  }
  SECTION("a file missing on the mirror (404) is an error naming it") {
    auto partial = files;
    partial.erase("train-labels-idx1-ubyte.gz");
    HttpTestServer server(served(partial));
    options.mirrors = {server.base_url()};
    CHECK_THAT(io_error_of([&] { locate_mnist("", options); }), Contains("train-labels-idx1-ubyte.gz") && Contains("HTTP 404"));
  }
  SECTION("no mirror reachable: the fallback folder is used and the note says so") {
    write_mnist_folder(options.fallback_dir, 3, 2);
    options.mirrors = {unreachable, unreachable + "other/"};
    MnistLocation where = locate_mnist("", options);
    CHECK(where.fell_back);
    CHECK(where.dir == options.fallback_dir);
    CHECK_THAT(where.note, Contains("Fashion-MNIST") && Contains(options.fallback_dir) && Contains("no mirror could be reached"));
    CHECK_FALSE(holds_mnist(options.default_dir));
    CHECK(load_mnist(where.dir).train.n == 3);
  }
  SECTION("no mirror reachable and no fallback: an error saying what to install") {
    options.mirrors = {unreachable};
    CHECK_THAT(io_error_of([&] { locate_mnist("", options); }),
               Contains("dataset-fashion-mnist") && Contains(options.default_dir));
  }
  SECTION("downloading switched off goes straight to the fallback") {
    write_mnist_folder(options.fallback_dir, 3, 2);
    options.allow_download = false;
    CHECK(locate_mnist("", options).fell_back);
  }
}

TEST_CASE("a folder named by --data or the environment must hold MNIST", "[fetch]") {
  TempDir dir;
  FetchOptions options = test_options(dir, {});
  options.mirrors = {};
  write_mnist_folder(dir.file("good"), 2, 2);
  fs::create_directories(dir.file("half"));
  write_bytes(dir.file("half/train-images-idx3-ubyte"), idx_images_bytes(1, 28, 28));

  CHECK(locate_mnist(dir.file("good"), options).dir == dir.file("good"));
  CHECK_THAT(io_error_of([&] { locate_mnist(dir.file("absent"), options); }),
             Contains("--data " + dir.file("absent")) && Contains("no such folder"));
  CHECK_THAT(io_error_of([&] { locate_mnist(dir.file("half"), options); }),
             Contains("--data " + dir.file("half")) && Contains("t10k-labels-idx1-ubyte[.gz]") &&
                 !Contains("train-images-idx3-ubyte[.gz]"));

  options.env_var = "AEGRAPH_IO_TEST_DATA";
  ::setenv("AEGRAPH_IO_TEST_DATA", dir.file("good").c_str(), 1);
  CHECK(locate_mnist("", options).dir == dir.file("good"));
  CHECK(locate_mnist(dir.file("good"), options).dir == dir.file("good"));  // the flag wins
  ::setenv("AEGRAPH_IO_TEST_DATA", dir.file("absent").c_str(), 1);
  CHECK_THAT(io_error_of([&] { locate_mnist("", options); }), Contains("$AEGRAPH_IO_TEST_DATA=" + dir.file("absent")));
  ::unsetenv("AEGRAPH_IO_TEST_DATA");
}
