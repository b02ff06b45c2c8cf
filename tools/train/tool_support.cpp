// One error line per failure, CLI11 errors reworded to one line, data loading checked against
// the model's input size, and device selection: the plumbing ae-train and ae-eval share.
#include "tools/train/tool_support.h"

#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "backends/backend.h"
#include "tools/io/mnist_fetch.h"

namespace ag::tools {

int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // CLI11's own report spans two lines; one line naming the flag is easier to act on.
    std::fprintf(stderr, "%s: %s (see --help)\n", tool.c_str(), e.what());
    return 2;
  }
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", tool.c_str(), e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", tool.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool.c_str(), e.what());
    return 1;
  }
}

LoadedData load_data(const DataSource& source, int input_size, const std::string& size_origin) {
  io::FetchOptions options;
  if (!source.mirror.empty()) options.mirrors = {source.mirror};
  io::MnistLocation where = io::locate_mnist(source.dir, options);
  // Any image size loads; it must then match the model, checked here so the message names
  // both the file and the flag.
  LoadedData loaded{io::load_mnist(where.dir, source.limit, 0, 0), where.note};
  for (const io::Dataset* set : {&loaded.mnist.train, &loaded.mnist.test}) {
    const char* stem = set == &loaded.mnist.train ? io::mnist_file_stems[0] : io::mnist_file_stems[2];
    if (set->image_size() != input_size)
      throw UsageError(fmt::format("{}: images are {}x{} = {} pixels but the model's input size is {} ({})",
                                   io::find_idx_file(where.dir, stem), set->rows, set->cols, set->image_size(),
                                   input_size, size_origin));
  }
  return loaded;
}

models::DataView data_view(const io::Dataset& set) {
  return models::DataView{set.images.data(), set.n, int(set.image_size()), set.labels.data()};
}

Device select_device(const std::string& device, int threads) {
  if (threads > 0) set_num_threads(threads);
  if (device == "cpu") return Device::cpu;
  if (device != "cuda") throw UsageError(fmt::format("--device {}: expected cpu or cuda", device));
  if (!cuda_available())
    throw UsageError("--device cuda: this build has no CUDA backend or no GPU is present (use --device cpu)");
  return Device::cuda;
}

}  // namespace ag::tools
