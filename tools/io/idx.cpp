// IDX parsing from memory (raw or gzip, detected by magic bytes), file loading, and the
// MNIST train/test pair. The payload is decoded in one pass: a raw file is converted straight
// from the bytes read, a gzip file is inflated chunk by chunk into a buffer that grows only as
// real data arrives, so a header that lies about its size costs nothing.
#include "tools/io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <filesystem>

#include <fmt/format.h>

#include "tools/io/atomic_file.h"
#include "tools/io/io_error.h"
#include "tools/io/sha256.h"

namespace ag::io {
namespace {

constexpr uint32_t images_magic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t labels_magic = 0x00000801;  // unsigned bytes, 1 dimension

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && uint8_t(bytes[0]) == 0x1f && uint8_t(bytes[1]) == 0x8b;
}

// The decoded bytes of an IDX file, pulled in order from either the raw bytes or a gzip
// stream (possibly several concatenated members, as gzip allows).
class IdxStream {
 public:
  IdxStream(std::string_view bytes, std::string_view origin) : input_(bytes), origin_(origin), gzip_(is_gzip(bytes)) {
    if (!gzip_) return;
    if (bytes.size() > UINT_MAX) throw IoError(fmt::format("{}: compressed file too large", origin_));
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    zs_.avail_in = uInt(bytes.size());
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) throw IoError(fmt::format("{}: zlib could not start", origin_));
    zs_open_ = true;
  }
  ~IdxStream() {
    if (zs_open_) inflateEnd(&zs_);
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  bool gzip() const { return gzip_; }

  // The next `n` decoded bytes, or fewer when the data ends. A view into the raw input, or
  // into `buffer` for gzip.
  std::string_view take(size_t n, std::string& buffer) {
    if (!gzip_) {
      std::string_view out = input_.substr(raw_pos_, n);
      raw_pos_ += out.size();
      return out;
    }
    buffer.clear();
    constexpr size_t first_chunk = size_t(1) << 20;
    while (buffer.size() < n && !ended_) {
      size_t old = buffer.size();
      size_t chunk = std::min(n - old, std::max(old, first_chunk));
      buffer.resize(old + chunk);
      size_t got = inflate_into(buffer.data() + old, chunk);
      buffer.resize(old + got);
    }
    return buffer;
  }

  // Throws unless the data ends here; for gzip this also checks each member's CRC and length.
  void expect_end() {
    if (!gzip_) {
      if (raw_pos_ < input_.size())
        throw IoError(fmt::format("{}: {} unexpected bytes after the data", origin_, input_.size() - raw_pos_));
      return;
    }
    char scratch[256];
    size_t extra = 0;
    while (!ended_) extra += inflate_into(scratch, sizeof scratch);
    if (extra) throw IoError(fmt::format("{}: unexpected bytes after the data (at least {})", origin_, extra));
    if (!stream_complete_)
      throw IoError(fmt::format("{}: truncated gzip stream (the compressed file ends before its trailer)", origin_));
  }

 private:
  size_t inflate_into(char* dest, size_t n) {
    size_t produced = 0;
    while (produced < n && !ended_) {
      zs_.next_out = reinterpret_cast<Bytef*>(dest + produced);
      zs_.avail_out = uInt(std::min<size_t>(n - produced, UINT_MAX));
      uInt out_before = zs_.avail_out, in_before = zs_.avail_in;
      int rc = ::inflate(&zs_, Z_NO_FLUSH);
      produced += out_before - zs_.avail_out;
      bool progress = zs_.avail_out != out_before || zs_.avail_in != in_before;
      if (rc == Z_STREAM_END) {
        if (zs_.avail_in == 0) {
          ended_ = true;
          stream_complete_ = true;
        } else if (inflateReset(&zs_) != Z_OK) {  // another gzip member follows
          throw IoError(fmt::format("{}: corrupted gzip stream (cannot restart after a member)", origin_));
        }
      } else if (rc == Z_OK || rc == Z_BUF_ERROR) {
        // Out of input before the stream's end: the file is truncated; the caller reports it.
        if ((zs_.avail_in == 0 && zs_.avail_out > 0) || !progress) ended_ = true;
      } else {
        throw IoError(fmt::format("{}: corrupted gzip stream ({})", origin_, zs_.msg ? zs_.msg : zError(rc)));
      }
    }
    return produced;
  }

  std::string_view input_;
  std::string_view origin_;
  bool gzip_ = false;
  size_t raw_pos_ = 0;
  z_stream zs_{};
  bool zs_open_ = false;
  bool ended_ = false;            // no more bytes will come
  bool stream_complete_ = false;  // the gzip trailer (CRC, length) was read and checked
};

uint32_t big_endian_u32(const char* p) {
  return uint32_t(uint8_t(p[0])) << 24 | uint32_t(uint8_t(p[1])) << 16 | uint32_t(uint8_t(p[2])) << 8 | uint32_t(uint8_t(p[3]));
}

// Reads the magic number and `dims` sizes; throws on a short header or the wrong magic.
std::vector<uint32_t> read_header(IdxStream& stream, std::string& buffer, uint32_t magic, int dims, std::string_view what,
                                  std::string_view origin) {
  size_t header_bytes = 4 * size_t(1 + dims);
  std::string_view header = stream.take(header_bytes, buffer);
  if (header.size() >= 4 && big_endian_u32(header.data()) != magic)
    throw IoError(fmt::format("{}: wrong magic number 0x{:08x}, expected 0x{:08x} ({}){}", origin, big_endian_u32(header.data()),
                              magic, what, stream.gzip() ? "" : " (not gzip either)"));
  if (header.size() < header_bytes)
    throw IoError(fmt::format("{}: truncated header: {} bytes, an IDX {} header has {}", origin, header.size(), what, header_bytes));
  std::vector<uint32_t> sizes;
  for (int i = 0; i < dims; ++i) sizes.push_back(big_endian_u32(header.data() + 4 * (i + 1)));
  return sizes;
}

std::string_view read_payload(IdxStream& stream, std::string& buffer, uint64_t expected, std::string_view description,
                              std::string_view origin) {
  std::string_view payload = stream.take(size_t(expected), buffer);
  if (payload.size() < expected)
    throw IoError(fmt::format("{}: truncated data: the header promises {} ({} bytes) but only {} bytes follow", origin,
                              description, expected, payload.size()));
  stream.expect_end();
  return payload;
}

const std::array<float, 256>& byte_to_unit() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) t[size_t(b)] = float(b) / 255.0f;
    return t;
  }();
  return table;
}

// SHA-256 of the uncompressed training-labels files, which tell the data sets apart.
std::string identify_source(const std::vector<uint8_t>& train_labels) {
  std::string file(8, '\0');
  uint32_t n = uint32_t(train_labels.size());
  const uint32_t fields[2] = {labels_magic, n};
  for (int f = 0; f < 2; ++f)
    for (int b = 0; b < 4; ++b) file[size_t(4 * f + b)] = char(fields[f] >> (24 - 8 * b));
  file.append(train_labels.begin(), train_labels.end());
  std::string hash = sha256_hex(file);
  if (hash == "65a50cbb" "f4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5") return "mnist";
  if (hash == "bad3541b" "69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9") return "fashion-mnist";
  return "custom";
}

}  // namespace

IdxImages parse_idx_images(std::string_view bytes, std::string_view origin) {
  IdxStream stream(bytes, origin);
  std::string buffer;
  std::vector<uint32_t> dims = read_header(stream, buffer, images_magic, 3, "IDX images: unsigned bytes, 3 dimensions", origin);
  uint32_t n = dims[0], rows = dims[1], cols = dims[2];
  if (n > uint64_t(idx_max_items))
    throw IoError(fmt::format("{}: the header claims {} images, more than the {} this reader accepts", origin, n, idx_max_items));
  if (rows == 0 || cols == 0 || rows > uint32_t(idx_max_side) || cols > uint32_t(idx_max_side))
    throw IoError(fmt::format("{}: image size {}x{} is outside 1..{} per side", origin, rows, cols, idx_max_side));
  uint64_t total = uint64_t(n) * rows * cols;
  if (total > uint64_t(idx_max_bytes))
    throw IoError(fmt::format("{}: {} images of {}x{} is more than the {} bytes this reader accepts", origin, n, rows, cols, idx_max_bytes));

  std::string_view payload =
      read_payload(stream, buffer, total, fmt::format("{} images of {}x{}", n, rows, cols), origin);
  IdxImages out;
  out.n = n;
  out.rows = int(rows);
  out.cols = int(cols);
  out.pixels.resize(size_t(total));
  const auto& table = byte_to_unit();
  for (size_t i = 0; i < payload.size(); ++i) out.pixels[i] = table[uint8_t(payload[i])];
  return out;
}

std::vector<uint8_t> parse_idx_labels(std::string_view bytes, std::string_view origin) {
  IdxStream stream(bytes, origin);
  std::string buffer;
  std::vector<uint32_t> dims = read_header(stream, buffer, labels_magic, 1, "IDX labels: unsigned bytes, 1 dimension", origin);
  uint32_t n = dims[0];
  if (n > uint64_t(idx_max_items))
    throw IoError(fmt::format("{}: the header claims {} labels, more than the {} this reader accepts", origin, n, idx_max_items));
  std::string_view payload = read_payload(stream, buffer, n, fmt::format("{} labels", n), origin);
  return std::vector<uint8_t>(payload.begin(), payload.end());
}

IdxImages load_idx_images(const std::string& path) { return parse_idx_images(read_file(path), path); }
std::vector<uint8_t> load_idx_labels(const std::string& path) { return parse_idx_labels(read_file(path), path); }

Dataset load_dataset(const std::string& images_path, const std::string& labels_path, int64_t limit) {
  IdxImages images = load_idx_images(images_path);
  std::vector<uint8_t> labels = load_idx_labels(labels_path);
  if (int64_t(labels.size()) != images.n)
    throw IoError(fmt::format("{} holds {} images but {} holds {} labels", images_path, images.n, labels_path, labels.size()));
  Dataset set;
  set.n = limit >= 0 ? std::min(limit, images.n) : images.n;
  set.rows = images.rows;
  set.cols = images.cols;
  images.pixels.resize(size_t(set.n * set.image_size()));
  labels.resize(size_t(set.n));
  set.images = std::move(images.pixels);
  set.labels = std::move(labels);
  return set;
}

std::string find_idx_file(const std::string& dir, std::string_view stem) {
  std::error_code ec;
  for (const char* suffix : {".gz", ""}) {
    std::filesystem::path candidate = std::filesystem::path(dir) / (std::string(stem) + suffix);
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate.string();
  }
  return "";
}

Mnist load_mnist(const std::string& dir, int64_t limit_train, int expected_rows, int expected_cols) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw IoError(fmt::format("{}: no such folder (looking for MNIST)", dir));
  std::string paths[4];
  std::string missing;
  for (int i = 0; i < 4; ++i) {
    paths[i] = find_idx_file(dir, mnist_file_stems[i]);
    if (paths[i].empty()) missing += fmt::format("{}{}[.gz]", missing.empty() ? "" : ", ", mnist_file_stems[i]);
  }
  if (!missing.empty()) throw IoError(fmt::format("{}: missing {}", dir, missing));

  Mnist mnist;
  mnist.dir = dir;
  mnist.train = load_dataset(paths[0], paths[1]);
  mnist.test = load_dataset(paths[2], paths[3]);
  mnist.source = identify_source(mnist.train.labels);
  const Dataset* sets[2] = {&mnist.train, &mnist.test};
  for (int s = 0; s < 2; ++s) {
    const Dataset& set = *sets[s];
    const std::string& images_path = paths[2 * s];
    if ((expected_rows > 0 && set.rows != expected_rows) || (expected_cols > 0 && set.cols != expected_cols))
      throw IoError(fmt::format("{}: images are {}x{}, expected {}x{}", images_path, set.rows, set.cols, expected_rows, expected_cols));
    auto bad = std::find_if(set.labels.begin(), set.labels.end(), [](uint8_t label) { return label > 9; });
    if (bad != set.labels.end())
      throw IoError(fmt::format("{}: label {} at index {} is outside 0..9", paths[2 * s + 1], *bad, bad - set.labels.begin()));
  }
  if (limit_train >= 0 && limit_train < mnist.train.n) {
    mnist.train.n = limit_train;
    mnist.train.images.resize(size_t(limit_train * mnist.train.image_size()));
    mnist.train.images.shrink_to_fit();  // a quick run should not keep 188 MB it will not use
    mnist.train.labels.resize(size_t(limit_train));
  }
  return mnist;
}

}  // namespace ag::io
