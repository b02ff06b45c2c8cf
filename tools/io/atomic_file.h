// Whole-file reads and atomic writes. Every file aegraph produces (checkpoints, pictures,
// reports) goes through write_file_atomic, so a failed or interrupted write never leaves a
// half-written file under the final name and never damages the file that was there before.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace ag::io {

// Writes `bytes` to a temporary file in the same folder as `path`, flushes and fsyncs it,
// renames it over `path` and fsyncs the folder. On any error the old file at `path` (if any)
// is untouched, the temporary file is removed, and an IoError naming `path` is thrown.
void write_file_atomic(const std::string& path, std::string_view bytes);

// The whole content of a file. Throws IoError naming `path` when it is missing, unreadable,
// not a regular file, or larger than `max_bytes` (a guard against reading a device or a
// runaway file into memory).
std::string read_file(const std::string& path, size_t max_bytes = size_t(1) << 31);

}  // namespace ag::io
