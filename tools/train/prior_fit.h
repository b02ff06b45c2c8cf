// How an adversarial autoencoder's test codes fit its prior N(0, I) (issue 15's report): the
// mean and standard deviation per code dimension, the share of codes inside radius 1 and 2
// (0.393 and 0.865 for a 2-D N(0, I)), a scatter plot of the codes coloured by digit and a
// grid of images decoded over the prior.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/aae.h"
#include "tools/io/idx.h"

namespace ag::tools {

struct PriorFit {
  std::vector<double> mean, std;  // per code dimension (std: the population's, over all codes)
  double within1 = 0, within2 = 0;  // shares of codes with ||z|| < 1, < 2
  nlohmann::json json() const;    // {"mean": [...], "std": [...], "within_radius_1": .., "within_radius_2": ..}
};

PriorFit prior_fit(const std::vector<float>& codes, int dim);  // codes: n x dim, row-major

// The test set's codes and their fit; writes codes.png (the scatter, first two dimensions) and
// prior_grid.png (10 x 10 images decoded at the N(0, 1) deciles of the first two dimensions, the
// others 0) into `dir`, appending their names to `written`.
PriorFit write_prior_pictures(const std::string& dir, models::AdversarialAutoencoder& model, const io::Dataset& test,
                              std::vector<std::string>& written);

}  // namespace ag::tools
