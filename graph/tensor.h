// Core value types: Device, DType, Shape (rank <= 4) and Tensor, a non-owning view of
// contiguous row-major memory on one device. Ownership lives in plans, ParamStores and
// HostTensor; a Tensor is just where the numbers are.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace ag {

enum class Device : uint8_t { cpu, cuda };
enum class DType : uint8_t { f32, f64 };

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
inline const char* to_string(DType t) { return t == DType::f32 ? "f32" : "f64"; }
inline const char* to_string(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

struct Shape {
  static constexpr int max_rank = 4;
  int rank = 0;
  int64_t dim[max_rank] = {1, 1, 1, 1};

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  static Shape of(const int64_t* dims, int rank);

  int64_t operator[](int axis) const { return dim[axis]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dim[i];
    return n;
  }
  // Rows and columns when seen as a matrix: all leading axes fold into rows.
  int64_t rows() const { return rank == 0 ? 1 : numel() / dim[rank - 1]; }
  int64_t cols() const { return rank == 0 ? 1 : dim[rank - 1]; }
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[150, 784]"
};

struct Tensor {
  void* data = nullptr;
  Shape shape;
  DType dtype = DType::f32;
  Device device = Device::cpu;

  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return size_t(numel()) * dtype_size(dtype); }
  template <class T> T* ptr() const { return static_cast<T*>(data); }
};

// An owning host tensor: what users and tests hand to a plan or read back from it.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(Shape shape, DType dtype = DType::f32);
  Tensor view() const { return Tensor{const_cast<std::byte*>(bytes_.data()), shape_, dtype_, Device::cpu}; }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return shape_.numel(); }
  template <class T> T* ptr() { return reinterpret_cast<T*>(bytes_.data()); }
  template <class T> const T* ptr() const { return reinterpret_cast<const T*>(bytes_.data()); }
  double at(int64_t i) const;  // element i as double, whatever the dtype
  void set(int64_t i, double v);

 private:
  std::vector<std::byte> bytes_;
  Shape shape_;
  DType dtype_ = DType::f32;
};

}  // namespace ag
