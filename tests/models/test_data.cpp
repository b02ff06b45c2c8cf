// Batch preparation: the shuffle is a reproducible permutation, rows and one-hot labels are
// gathered where they belong, and the affine corruption is reproducible, the identity when its
// ranges are zero, and zero outside the image.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

#include "models/data.h"
#include "graph/aegraph.h"

using namespace ag;
using namespace ag::models;

TEST_CASE("the shuffle is a permutation, a pure function of seed and stream", "[data]") {
  std::vector<int64_t> a(1000), b(1000), c(1000), d(1000);
  shuffled_order(a.data(), 1000, 3, 0);
  shuffled_order(b.data(), 1000, 3, 0);
  shuffled_order(c.data(), 1000, 3, 1);
  shuffled_order(d.data(), 1000, 4, 0);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a != d);
  std::vector<int64_t> sorted = a, identity(1000);
  std::sort(sorted.begin(), sorted.end());
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(sorted == identity);
  CHECK(a != identity);
  int64_t one = -1;
  shuffled_order(&one, 1, 3, 0);
  CHECK(one == 0);
}

TEST_CASE("rows and one-hot labels are gathered in batch order", "[data]") {
  const float images[8] = {0, 1, 10, 11, 20, 21, 30, 31};  // four rows of two
  const uint8_t labels[4] = {2, 0, 1, 2};
  const int64_t rows[3] = {3, 0, 2};
  float x[6], y[9];
  gather_rows(x, images, 2, rows, 3);
  CHECK(std::vector<float>(x, x + 6) == std::vector<float>{30, 31, 0, 1, 20, 21});
  gather_one_hot(y, labels, 3, rows, 3);
  CHECK(std::vector<float>(y, y + 9) == std::vector<float>{0, 0, 1, 0, 0, 1, 0, 1, 0});
  CHECK_THROWS_WITH(gather_one_hot(y, labels, 2, rows, 3), Catch::Contains("label 2"));
}

TEST_CASE("asking for huge pages leaves a data set's values and its neighbours as they were", "[data]") {
  // Best effort (the kernel may refuse), but it must never change memory: a 24 MB buffer at an
  // offset that is no page boundary, with guard values on both sides of the advised range.
  std::vector<float> buffer((24 << 20) / sizeof(float) + 7);
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = float(i % 9973) * 0.5f;
  const std::vector<float> before = buffer;
  prefer_huge_pages(buffer.data() + 3, (buffer.size() - 6) * sizeof(float));
  prefer_huge_pages(buffer.data() + 1, 1000);  // too small: nothing
  CHECK(buffer == before);
}

TEST_CASE("the affine corruption is reproducible, the identity at zero range, zero outside", "[data]") {
  const int side = 12;
  std::vector<float> image(2 * side * side, 1.0f), out(image.size()), again(image.size()), later(image.size());
  AffineRange none{0, 0, 0};
  affine_augment(image.data(), out.data(), 2, side, none, 1, 0);
  CHECK(out == image);

  AffineRange range{20, 0.2, 2};
  affine_augment(image.data(), out.data(), 2, side, range, 1, 5);
  affine_augment(image.data(), again.data(), 2, side, range, 1, 5);
  affine_augment(image.data(), later.data(), 2, side, range, 1, 6);
  CHECK(out == again);
  CHECK(out != later);
  // An all-ones image moved about loses mass at the border (zeros come in from outside) and
  // never leaves [0, 1].
  float mass = 0;
  for (float v : out) {
    CHECK((v >= 0.0f && v <= 1.0f + 1e-6f));
    mass += v;
  }
  CHECK(mass < float(image.size()) - 1.0f);
  // The two images of the batch get their own draws.
  CHECK(!std::equal(out.begin(), out.begin() + side * side, out.begin() + side * side));
}
