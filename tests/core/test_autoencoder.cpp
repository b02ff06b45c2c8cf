// The foundation's story test: a 784 -> 32 -> 784 sigmoid autoencoder with BCE and plain SGD,
// all written as graph nodes and compiled into one plan, learns generated data in 200 steps.
#include <catch2/catch.hpp>

#include "step_fixture.h"

using namespace ag;

TEST_CASE("a small autoencoder's loss falls over 200 steps", "[learn]") {
  const int64_t batch = 20;
  ag::testing::TinyAutoencoder m(batch, 20.0f);
  Executor ex(compile(m.outputs()));
  std::vector<double> losses;
  for (int s = 0; s < 200; ++s) {
    ag::testing::make_batch(ex.input(m.x).ptr<float>(), batch, 784, s * batch);
    ex.run();
    losses.push_back(ex.read_scalar(m.loss));
  }
  double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[197] + losses[198] + losses[199]) / 3;
  INFO("first " << first << " last " << last);
  CHECK(last < 0.6 * first);
  CHECK(std::isfinite(last));
}
