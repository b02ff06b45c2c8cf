// IDX files (the MNIST format) and the MNIST train/test pair. IDX is a big-endian header
// (magic 0x0000080N with N dimensions, then N 32-bit sizes) followed by unsigned bytes; files
// may be gzip-compressed, which is detected by the gzip magic bytes, not the file name.
// Every reader is safe on arbitrary bytes: bad input throws IoError naming the file and what
// is wrong, it never crashes or allocates what the header merely claims.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ag::io {

// Caps that make a hostile header fail cleanly before any large allocation.
inline constexpr int64_t idx_max_items = int64_t(1) << 24;       // images or labels per file
inline constexpr int idx_max_side = 1 << 12;                     // rows or columns of an image
inline constexpr int64_t idx_max_bytes = int64_t(1) << 30;       // decoded payload of one file

// Images as read from one IDX file: n images of rows x cols, row-major, values byte / 255.
struct IdxImages {
  std::vector<float> pixels;  // n * rows * cols, in [0, 1]
  int64_t n = 0;
  int rows = 0, cols = 0;
};

// A labelled set of images, e.g. MNIST's training set.
struct Dataset {
  std::vector<float> images;    // n * rows * cols, in [0, 1] (byte / 255)
  std::vector<uint8_t> labels;  // n
  int64_t n = 0;
  int rows = 0, cols = 0;

  int64_t image_size() const { return int64_t(rows) * cols; }
  const float* image(int64_t i) const { return images.data() + i * image_size(); }
};

// Both halves of MNIST (or a drop-in replacement with the same file names and layout).
struct Mnist {
  Dataset train, test;
  std::string dir;     // the folder the four files were read from
  std::string source;  // "mnist", "fashion-mnist", or "custom" (same layout, unknown content)
};

// Parsing from memory: `origin` names the bytes in error messages (usually the file path).
// Images need magic 0x00000803, labels 0x00000801; the bytes may be gzip-compressed.
IdxImages parse_idx_images(std::string_view bytes, std::string_view origin);
std::vector<uint8_t> parse_idx_labels(std::string_view bytes, std::string_view origin);

// The same, reading the whole file first (one read, one pass of decompression).
IdxImages load_idx_images(const std::string& path);
std::vector<uint8_t> load_idx_labels(const std::string& path);

// An images file and its labels file; checks the counts agree. `limit` >= 0 keeps only the
// first `limit` examples (handy for quick runs).
Dataset load_dataset(const std::string& images_path, const std::string& labels_path, int64_t limit = -1);

// The four standard files of `dir` (train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally with .gz). Checks that
// images are expected_rows x expected_cols (pass 0 to accept any size) and labels are 0..9.
// `limit_train` >= 0 keeps only that many training examples; the test set is always whole.
Mnist load_mnist(const std::string& dir, int64_t limit_train = -1, int expected_rows = 28, int expected_cols = 28);

// Names of the four files without the .gz suffix, in the order train images, train labels,
// test images, test labels.
inline constexpr const char* mnist_file_stems[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// The path of `stem` in `dir`: "<dir>/<stem>.gz" when that exists, else "<dir>/<stem>" when
// that exists, else "" (missing).
std::string find_idx_file(const std::string& dir, std::string_view stem);

}  // namespace ag::io
