// The factories make_model() dispatches to, one per variant file. Each takes a resolved,
// validated ModelConfig.
#pragma once
#include <memory>
#include <vector>

#include "models/model.h"

namespace ag::models {

std::unique_ptr<Model> make_autoencoder(const ModelConfig& config, Device device, DType dtype);  // autoencoder.cpp
std::unique_ptr<Model> make_denoising(const ModelConfig& config, Device device, DType dtype);    // denoising.cpp
std::unique_ptr<Model> make_contractive(const ModelConfig& config, Device device, DType dtype);  // contractive.cpp
std::unique_ptr<Model> make_sparse(const ModelConfig& config, Device device, DType dtype);       // sparse.cpp
std::unique_ptr<Model> make_stacked(const ModelConfig& config, Device device, DType dtype);      // stacked.cpp
std::unique_ptr<Model> make_deep(const ModelConfig& config, Device device, DType dtype);         // deep.cpp
std::unique_ptr<Model> make_conv(const ModelConfig& config, Device device, DType dtype);         // conv.cpp
std::unique_ptr<Model> make_upconv(const ModelConfig& config, Device device, DType dtype);       // conv.cpp
std::unique_ptr<Model> make_convdae(const ModelConfig& config, Device device, DType dtype);      // conv.cpp
std::unique_ptr<Model> make_variational(const ModelConfig& config, Device device, DType dtype);  // vae.cpp
std::unique_ptr<Model> make_wta(const ModelConfig& config, Device device, DType dtype);          // wta.cpp
std::unique_ptr<Model> make_seq2seq(const ModelConfig& config, Device device, DType dtype);      // seq2seq.cpp
std::unique_ptr<Model> make_catvae(const ModelConfig& config, Device device, DType dtype);       // catvae.cpp
std::unique_ptr<Model> make_aae(const ModelConfig& config, Device device, DType dtype);          // aae.cpp

// The phases of a dense autoencoder with a softmax head (config.classes > 0; autoencoder.cpp):
// "train", every parameter but the head's on the unsupervised objective, then "classify", the
// encoder's parameters and the head's on the labels.
std::vector<Phase> classifier_phases(const Model& model, const std::vector<int>& head, const std::vector<int>& encoder);

}  // namespace ag::models
