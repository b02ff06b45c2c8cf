// IDX and MNIST reading: generated files read back exactly, raw or gzip; every kind of bad
// file is refused with a message naming the file and the problem; no input crashes.
#include <catch2/catch.hpp>

#include "fixtures.h"
#include "tools/io/idx.h"

using namespace ag::io;
using namespace ag::io::testing;
using Catch::Matchers::Contains;

TEST_CASE("IDX images and labels read back exactly, raw and gzip", "[idx]") {
  const std::string raw = idx_images_bytes(5, 4, 3);
  for (const std::string& bytes : {raw, gzip(raw)}) {
    IdxImages images = parse_idx_images(bytes, "mem");
    REQUIRE(images.n == 5);
    REQUIRE(images.rows == 4);
    REQUIRE(images.cols == 3);
    REQUIRE(images.pixels.size() == 60);
    for (uint32_t i = 0; i < 5; ++i)
      for (uint32_t r = 0; r < 4; ++r)
        for (uint32_t c = 0; c < 3; ++c) CHECK(images.pixels[(i * 4 + r) * 3 + c] == float(idx_pixel(i, r, c)) / 255.0f);
  }
  std::vector<uint8_t> labels = parse_idx_labels(gzip(idx_labels(12)), "mem");
  REQUIRE(labels.size() == 12);
  CHECK(labels[11] == 1);
}

TEST_CASE("pixel bytes map to [0, 1] with 0 -> 0 and 255 -> 1", "[idx]") {
  std::string bytes = idx_images_bytes(1, 1, 2);
  bytes[16] = char(0);
  bytes[17] = char(255);
  IdxImages images = parse_idx_images(bytes, "mem");
  CHECK(images.pixels[0] == 0.0f);
  CHECK(images.pixels[1] == 1.0f);
}

TEST_CASE("concatenated gzip members read as one stream", "[idx]") {
  std::string raw = idx_labels(30);
  std::string two_members = gzip(raw.substr(0, 13)) + gzip(raw.substr(13));
  CHECK(parse_idx_labels(two_members, "mem").size() == 30);
}

TEST_CASE("load_dataset pairs images with labels and applies a limit", "[idx]") {
  TempDir dir;
  write_bytes(dir.file("img"), idx_images_bytes(8, 2, 2));
  write_bytes(dir.file("lab.gz"), gzip(idx_labels(8)));
  Dataset all = load_dataset(dir.file("img"), dir.file("lab.gz"));
  CHECK(all.n == 8);
  CHECK(all.image_size() == 4);
  CHECK(all.image(3)[0] == float(idx_pixel(3, 0, 0)) / 255.0f);
  Dataset some = load_dataset(dir.file("img"), dir.file("lab.gz"), 3);
  CHECK(some.n == 3);
  CHECK(some.images.size() == 12);
  CHECK(some.labels.size() == 3);
}

TEST_CASE("bad IDX files are refused with the file and the problem named", "[idx]") {
  TempDir dir;
  const std::string path = dir.file("bad-images");
  auto error_for = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    return io_error_of([&] { load_idx_images(path); });
  };
  const std::string good = idx_images_bytes(3, 4, 4);

  SECTION("missing file") {
    CHECK_THAT(io_error_of([&] { load_idx_images(dir.file("nope")); }), Contains(dir.file("nope")) && Contains("no such file"));
  }
  SECTION("wrong magic: a labels file given as images") {
    CHECK_THAT(error_for(idx_labels(3)), Contains(path) && Contains("wrong magic number 0x00000801"));
    CHECK_THAT(error_for(gzip(idx_labels(3))), Contains(path) && Contains("wrong magic number"));
  }
  SECTION("not IDX at all") { CHECK_THAT(error_for("PK\3\4 a zip file, say"), Contains(path) && Contains("wrong magic")); }
  SECTION("empty file and truncated header, raw and gzip") {
    CHECK_THAT(error_for(""), Contains(path) && Contains("truncated header"));
    CHECK_THAT(error_for(good.substr(0, 10)), Contains(path) && Contains("truncated header"));
    CHECK_THAT(error_for(gzip(good.substr(0, 10))), Contains(path) && Contains("truncated header"));
  }
  SECTION("truncated data, raw and gzip") {
    CHECK_THAT(error_for(good.substr(0, good.size() - 5)), Contains(path) && Contains("truncated data") && Contains("43 bytes"));
    CHECK_THAT(error_for(gzip(good.substr(0, good.size() - 5))), Contains(path) && Contains("truncated data"));
  }
  SECTION("a gzip file cut short") {
    std::string compressed = gzip(good);
    CHECK_THAT(error_for(compressed.substr(0, compressed.size() - 4)), Contains(path) && Contains("truncated gzip stream"));
    CHECK_THAT(error_for(compressed.substr(0, compressed.size() / 2)), Contains(path) && Contains("truncated"));
  }
  SECTION("a corrupted gzip stream") {
    std::string compressed = gzip(good);
    compressed[compressed.size() - 6] ^= 0x55;  // inside the CRC-32 of the trailer
    CHECK_THAT(error_for(compressed), Contains(path) && Contains("corrupted gzip stream"));
    std::string garbage = gzip(good);
    garbage[3] = char(0xE0);  // reserved gzip header flag bits
    CHECK_THAT(error_for(garbage), Contains(path) && Contains("corrupted gzip stream"));
  }
  SECTION("bytes after the data") {
    CHECK_THAT(error_for(good + "xyz"), Contains(path) && Contains("3 unexpected bytes"));
    CHECK_THAT(error_for(gzip(good + "xyz")), Contains(path) && Contains("unexpected bytes"));
  }
  SECTION("a header claiming absurd sizes fails before allocating") {
    std::string huge = idx_images_bytes(0, 1, 1);
    huge[4] = char(0x80);  // 2^31 images
    CHECK_THAT(error_for(huge), Contains(path) && Contains("more than"));
    CHECK_THAT(error_for(gzip(huge)), Contains(path) && Contains("more than"));
    std::string wide = idx_images_bytes(0, 1, 1);
    wide[12] = char(0x7f);  // columns near 2^31
    CHECK_THAT(error_for(wide), Contains(path) && Contains("outside"));
    // 65536 images of 4096x4096: 2^40 bytes.
    const std::string big("\0\0\x08\x03" "\0\x01\0\0" "\0\0\x10\0" "\0\0\x10\0", 16);
    CHECK_THAT(error_for(big), Contains(path) && Contains("more than"));
  }
  SECTION("zero-sized images") {
    CHECK_THAT(error_for(idx_images_bytes(2, 0, 28)), Contains(path) && Contains("image size 0x28"));
  }
}

TEST_CASE("every prefix and every single-byte corruption of an IDX file is handled", "[idx]") {
  // A cheap deterministic cousin of the fuzzer: parsing either succeeds or throws IoError.
  const std::string raw = idx_images_bytes(2, 3, 3);
  for (const std::string& good : {raw, gzip(raw)}) {
    for (size_t cut = 0; cut < good.size(); ++cut) CHECK_THROWS_AS(parse_idx_images(good.substr(0, cut), "mem"), IoError);
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] ^= 0xA5;
      try {
        parse_idx_images(bad, "mem");
      } catch (const IoError&) {
      }
    }
  }
}

TEST_CASE("load_mnist reads the four files and checks them", "[idx][mnist]") {
  TempDir dir;
  const std::string folder = dir.file("mnist");
  write_mnist_folder(folder, 20, 7);

  SECTION("a good folder, with a training limit") {
    Mnist mnist = load_mnist(folder, 5);
    CHECK(mnist.train.n == 5);
    CHECK(mnist.train.labels.size() == 5);
    CHECK(mnist.train.images.size() == 5 * 784);
    CHECK(mnist.test.n == 7);
    CHECK(mnist.dir == folder);
    CHECK(mnist.source == "custom");  // generated, neither MNIST nor Fashion-MNIST
  }
  SECTION("uncompressed files are found too") {
    std::filesystem::remove(folder + "/t10k-labels-idx1-ubyte.gz");
    write_bytes(folder + "/t10k-labels-idx1-ubyte", idx_labels(7));
    CHECK(find_idx_file(folder, "t10k-labels-idx1-ubyte") == folder + "/t10k-labels-idx1-ubyte");
    CHECK(load_mnist(folder).test.labels.size() == 7);
  }
  SECTION("missing folder") {
    CHECK_THAT(io_error_of([&] { load_mnist(dir.file("absent")); }), Contains(dir.file("absent")) && Contains("no such folder"));
  }
  SECTION("missing file") {
    std::filesystem::remove(folder + "/train-labels-idx1-ubyte.gz");
    CHECK_THAT(io_error_of([&] { load_mnist(folder); }), Contains(folder) && Contains("missing train-labels-idx1-ubyte[.gz]"));
  }
  SECTION("image and label counts disagree") {
    write_bytes(folder + "/t10k-labels-idx1-ubyte.gz", gzip(idx_labels(6)));
    CHECK_THAT(io_error_of([&] { load_mnist(folder); }),
               Contains("t10k-images-idx3-ubyte.gz holds 7 images") && Contains("t10k-labels-idx1-ubyte.gz holds 6 labels"));
  }
  SECTION("wrong image size") {
    write_mnist_folder(folder, 4, 4, 32, 32);
    CHECK_THAT(io_error_of([&] { load_mnist(folder); }),
               Contains("train-images-idx3-ubyte.gz") && Contains("images are 32x32, expected 28x28"));
    CHECK(load_mnist(folder, -1, 0, 0).train.cols == 32);  // any size, when the caller allows it
  }
  SECTION("labels outside 0..9") {
    std::string labels = idx_labels(7);
    labels[8 + 4] = char(12);
    write_bytes(folder + "/t10k-labels-idx1-ubyte.gz", gzip(labels));
    CHECK_THAT(io_error_of([&] { load_mnist(folder); }), Contains("t10k-labels-idx1-ubyte.gz") && Contains("label 12 at index 4"));
  }
}
