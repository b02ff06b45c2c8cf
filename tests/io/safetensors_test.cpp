// safetensors: a round trip keeps names, dtypes, shapes, values and metadata; the header is
// what Python's safetensors expects (checked here by parsing it by hand); malformed files are
// refused with the file and the tensor named; a failed save never touches the old file.
#include <catch2/catch.hpp>

#include <cstring>

#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "tools/io/safetensors.h"

using namespace ag::io;
using namespace ag::io::testing;
using Catch::Matchers::Contains;

namespace {

std::vector<NamedTensor> sample_tensors() {
  NamedTensor weight{"encoder.weight", ag::HostTensor(ag::Shape{3, 2}, ag::DType::f32)};
  for (int i = 0; i < 6; ++i) weight.tensor.set(i, 0.5 * i - 1);
  NamedTensor bias{"encoder.bias", ag::HostTensor(ag::Shape{3}, ag::DType::f64)};
  for (int i = 0; i < 3; ++i) bias.tensor.set(i, 1.0 / 3 + i);
  NamedTensor scalar{"step", ag::HostTensor(ag::Shape{}, ag::DType::f32)};
  scalar.tensor.set(0, 42);
  std::vector<NamedTensor> tensors;
  tensors.push_back(std::move(weight));
  tensors.push_back(std::move(bias));
  tensors.push_back(std::move(scalar));
  return tensors;
}

// A file with the given JSON header and `data_bytes` bytes of data, laid out by the format.
std::string file_with_header(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[size_t(b)] = char(uint64_t(header.size()) >> (8 * b));
  return out + header + std::string(data_bytes, '\1');
}

}  // namespace

TEST_CASE("safetensors round trip keeps everything", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const auto tensors = sample_tensors();
  save_safetensors(path, tensors, {{"model", "ae"}, {"epochs", "3"}});
  TensorFile file = load_safetensors(path);
  REQUIRE(file.tensors.size() == 3);
  CHECK(file.metadata == Metadata{{"model", "ae"}, {"epochs", "3"}});
  for (size_t t = 0; t < tensors.size(); ++t) {
    const NamedTensor& got = file.tensors[t];  // file order is the order saved
    CHECK(got.name == tensors[t].name);
    CHECK(got.tensor.dtype() == tensors[t].tensor.dtype());
    CHECK(got.tensor.shape() == tensors[t].tensor.shape());
    for (int64_t i = 0; i < got.tensor.numel(); ++i) CHECK(got.tensor.at(i) == tensors[t].tensor.at(i));
  }
  REQUIRE(file.find("encoder.bias") != nullptr);
  CHECK(file.find("encoder.bias")->tensor.at(2) == 1.0 / 3 + 2);
  CHECK(file.find("absent") == nullptr);
}

TEST_CASE("the header is laid out the way Python's safetensors reads it", "[safetensors]") {
  std::string bytes = encode_safetensors(sample_tensors(), {{"format", "aegraph"}});
  uint64_t n = 0;
  for (int b = 7; b >= 0; --b) n = n << 8 | uint8_t(bytes[size_t(b)]);
  REQUIRE(n % 8 == 0);
  REQUIRE(8 + n <= bytes.size());
  std::string header_text = bytes.substr(8, n);
  CHECK(header_text.front() == '{');
  auto header = nlohmann::json::parse(header_text);
  CHECK(header["__metadata__"]["format"] == "aegraph");
  CHECK(header["encoder.weight"]["dtype"] == "F32");
  CHECK(header["encoder.weight"]["shape"] == nlohmann::json::array({3, 2}));
  CHECK(header["encoder.weight"]["data_offsets"] == nlohmann::json::array({0, 24}));
  CHECK(header["encoder.bias"]["dtype"] == "F64");
  CHECK(header["encoder.bias"]["data_offsets"] == nlohmann::json::array({24, 48}));
  CHECK(header["step"]["shape"] == nlohmann::json::array());
  CHECK(header["step"]["data_offsets"] == nlohmann::json::array({48, 52}));
  CHECK(bytes.size() == 8 + n + 52);
  float first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 4);  // little-endian F32 at the data section's start
  CHECK(first == -1.0f);
}

TEST_CASE("malformed safetensors files are refused with the file and tensor named", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto error_for = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    return io_error_of([&] { load_safetensors(path); });
  };
  const std::string t = R"("t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";

  // One row per way to be wrong: the file's bytes and what the message must say.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "truncated"},
      {std::string("\x05\0\0\0", 4), "truncated"},
      {file_with_header("{}", 0).replace(0, 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8)), "header length"},
      {file_with_header("{}", 0).replace(0, 1, "\x40"), "runs past the end"},
      {file_with_header("{\"t\": ", 8), "not valid JSON"},
      {file_with_header("[1, 2]", 0), "not a JSON object"},
      {file_with_header("{" + t + ", " + t + "}", 8), "tensor \"t\" appears twice"},
      {file_with_header(R"({"t": 3})", 0), "tensor \"t\": its header entry is not a JSON object"},
      {file_with_header(R"({"t": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})", 4), "dtype \"BF16\" is not supported"},
      {file_with_header(R"({"t": {"shape": [2], "data_offsets": [0, 8]}})", 8), "tensor \"t\": missing \"dtype\""},
      {file_with_header(R"({"t": {"dtype": "F32", "data_offsets": [0, 8]}})", 8), "missing \"shape\""},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [2]}})", 8), "missing \"data_offsets\""},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8), "not a valid dimension"},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [1,1,1,1,2], "data_offsets": [0, 8]}})", 8), "rank 5"},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8), "does not match data_offsets"},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8),
       "too many elements"},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8), "end before they begin"},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4), "run past the data section"},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12), "leaving a gap"},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 12), "the tensors cover 8"},
      {file_with_header(
           R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
           12),
       "tensor \"b\" overlaps tensor \"a\""},
      {file_with_header(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}})", 8), "unexpected field"},
      {file_with_header(R"({"__metadata__": {"k": 1}})", 0), "metadata \"k\" is not a string"},
  };
  for (const auto& [bytes, expected] : cases) {
    INFO("expected: " << expected);
    CHECK_THAT(error_for(bytes), Contains(path) && Contains(expected));
  }
}

TEST_CASE("every prefix of a safetensors file is refused cleanly", "[safetensors]") {
  const std::string good = encode_safetensors(sample_tensors(), {{"k", "v"}});
  for (size_t cut = 0; cut < good.size(); ++cut) CHECK_THROWS_AS(decode_safetensors(good.substr(0, cut), "mem"), IoError);
  CHECK(decode_safetensors(good, "mem").tensors.size() == 3);
}

TEST_CASE("a failing save leaves the existing checkpoint untouched", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, sample_tensors());
  const std::string before = read_bytes(path);

  auto tensors = sample_tensors();
  tensors.push_back({"encoder.bias", ag::HostTensor(ag::Shape{1})});
  CHECK_THAT(io_error_of([&] { save_safetensors(path, tensors); }), Contains(path) && Contains("named twice"));
  tensors.back().name = "__metadata__";
  CHECK_THAT(io_error_of([&] { save_safetensors(path, tensors); }), Contains("reserved"));
  tensors.back().name = "";
  CHECK_THAT(io_error_of([&] { save_safetensors(path, tensors); }), Contains("empty name"));
  tensors.back() = {"unset", ag::HostTensor()};
  CHECK_THAT(io_error_of([&] { save_safetensors(path, tensors); }), Contains("tensor \"unset\" has no data"));
  CHECK(read_bytes(path) == before);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);
}
