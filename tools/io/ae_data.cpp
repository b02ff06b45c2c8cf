// ae-data: finds the data the way ae-train does (--data, $AEGRAPH_DATA, ./data/mnist,
// download, Fashion-MNIST fallback), loads it, checks the .gz files against MNIST's published
// SHA-256, and prints what it found. A quick way to see that a machine is ready to train.
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/io/idx.h"
#include "tools/io/mnist_fetch.h"
#include "tools/io/sha256.h"

int main(int argc, char** argv) {
  CLI::App app{"Find, download if needed, verify and load the MNIST data"};
  std::string data_dir, mirror;
  bool no_download = false;
  app.add_option("--data", data_dir, "folder holding the four MNIST files (else $AEGRAPH_DATA, else ./data/mnist)");
  app.add_option("--mirror", mirror, "base URL to download from instead of the public mirrors");
  app.add_flag("--no-download", no_download, "never download; fall back to Fashion-MNIST when MNIST is missing");
  CLI11_PARSE(app, argc, argv);

  try {
    ag::io::FetchOptions options;
    if (!mirror.empty()) options.mirrors = {mirror};
    options.allow_download = !no_download;
    ag::io::MnistLocation where = ag::io::locate_mnist(data_dir, options);
    if (!where.note.empty()) fmt::print("note: {}\n", where.note);

    int mismatches = 0;
    for (const auto& [name, expected] : ag::io::mnist_gz_sha256()) {
      std::filesystem::path file = std::filesystem::path(where.dir) / name;
      if (!std::filesystem::exists(file)) continue;  // an uncompressed copy: nothing published to compare with
      bool same = ag::io::sha256_file(file.string()) == expected;
      mismatches += !same;
      fmt::print("{:<28} {}\n", name, same ? "SHA-256 matches MNIST" : "SHA-256 differs from MNIST");
    }
    ag::io::Mnist mnist = ag::io::load_mnist(where.dir);
    fmt::print("{}: {} ({} training and {} test images of {}x{})\n", where.dir, mnist.source, mnist.train.n, mnist.test.n,
               mnist.train.rows, mnist.train.cols);
    return mnist.source == "mnist" && mismatches == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "ae-data: {}\n", e.what());
    return 1;
  }
}
